"""Tracing overhead benchmark (`python -m bench.tracing`)."""
