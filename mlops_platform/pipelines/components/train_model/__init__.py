"""`train_model`: a small hyperparameter search and a refit, imbalance-aware."""
