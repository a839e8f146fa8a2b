"""What each component relies on in the cluster, what provides it, and the check between them."""

from mlops_platform.components.capabilities.catalog import LOCAL_BASELINES, ClusterBaseline
from mlops_platform.components.capabilities.model import (
    Capability,
    Problem,
    check,
    objects_inventory,
)
from mlops_platform.components.capabilities.plan import plan_inventory, resource_inventory, unmet

__all__ = [
    "LOCAL_BASELINES",
    "Capability",
    "ClusterBaseline",
    "Problem",
    "check",
    "objects_inventory",
    "plan_inventory",
    "resource_inventory",
    "unmet",
]
