"""The churn pipelines: `training_pipeline` and `drift_pipeline` (see kfp_pipelines/README.md)."""
