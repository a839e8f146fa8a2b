"""`evaluate_model`: golden-set metrics, per segment, compared with the registry's champion."""
