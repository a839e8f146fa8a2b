"""`check_drift`: per-feature PSI and KS / chi² of a recent window against the reference window."""
