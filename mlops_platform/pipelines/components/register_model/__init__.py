"""`register_model`: an MLflow model version with lineage, alias `challenger` and a model card."""
