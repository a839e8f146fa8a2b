"""`validate_data`: stop the run with a readable report when a dataset is not fit for training."""
