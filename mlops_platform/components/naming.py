"""The names default physical names (buckets, databases, caches) start from."""

from __future__ import annotations

import pulumi

# The platform's name: the Pulumi project's name when the platform was a single project.
PLATFORM = "mlops"


def environment() -> tuple[str, str]:
    """(platform, environment): `mlops` and the stack name.

    Not `pulumi.get_project()`: each layer is its own project (mlops-infra, mlops-platform,
    mlops-ml), and a bucket's or database's name must neither depend on the layer that creates
    it nor change from the single-project days (a new name replaces the resource)."""
    return PLATFORM, pulumi.get_stack()
