"""Synthetic data for the pipelines: the e-commerce churn generator (`churn`)."""
