"""Monitoring: Prometheus, Alertmanager and Grafana (kube-prometheus-stack) plus model alerts."""

from components.monitoring.model import (
    AlertsConfig,
    GrafanaConfig,
    MonitoringConfig,
    ResourcesConfig,
)
from components.monitoring.resources import Observability, ObservabilityArgs

__all__ = [
    "AlertsConfig",
    "GrafanaConfig",
    "MonitoringConfig",
    "Observability",
    "ObservabilityArgs",
    "ResourcesConfig",
]
