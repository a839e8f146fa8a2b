"""Progressive delivery: Flagger (Istio provider) and its load tester."""

from components.delivery.model import DeliveryConfig, load_tester_url
from components.delivery.resources import ProgressiveDelivery, ProgressiveDeliveryArgs

__all__ = [
    "DeliveryConfig",
    "ProgressiveDelivery",
    "ProgressiveDeliveryArgs",
    "load_tester_url",
]
