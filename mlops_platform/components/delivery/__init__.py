"""Progressive delivery: Flagger (Istio provider) and its load tester."""

from mlops_platform.components.delivery.model import DeliveryConfig, load_tester_url
from mlops_platform.components.delivery.resources import (
    ProgressiveDelivery,
    ProgressiveDeliveryArgs,
)

__all__ = [
    "DeliveryConfig",
    "ProgressiveDelivery",
    "ProgressiveDeliveryArgs",
    "load_tester_url",
]
