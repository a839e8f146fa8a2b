"""Progressive delivery: Flagger (Istio provider) and its load tester."""

from components.delivery.model import DeliveryConfig
from components.delivery.resources import ProgressiveDelivery, ProgressiveDeliveryArgs

__all__ = ["DeliveryConfig", "ProgressiveDelivery", "ProgressiveDeliveryArgs"]
