"""`split_data`: a training set and a later, held-out golden set."""
