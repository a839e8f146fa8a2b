"""CrossGuard policies for the mlops platform (see policies/README.md)."""
