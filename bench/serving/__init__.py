"""Serving benchmark (`python -m bench.serving`)."""
