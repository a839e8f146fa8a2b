"""`read_windows`: a time range of the prediction log's Parquet windows as pipeline datasets."""
