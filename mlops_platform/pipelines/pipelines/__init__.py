"""The churn pipelines: `training_pipeline` and `drift_pipeline` (see mlops_platform/pipelines/README.md)."""
