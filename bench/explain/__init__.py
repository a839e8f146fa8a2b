"""Latency cost of per-request attributions (`python -m bench.explain`)."""
