"""Monitoring: Prometheus, Alertmanager and Grafana (kube-prometheus-stack) plus model alerts."""

from components.monitoring.model import (
    AlertingConfig,
    AlertsConfig,
    GrafanaConfig,
    MonitoringConfig,
    ResourcesConfig,
)
from components.monitoring.resources import Observability, ObservabilityArgs, RetrainWebhook

__all__ = [
    "AlertingConfig",
    "AlertsConfig",
    "GrafanaConfig",
    "MonitoringConfig",
    "Observability",
    "ObservabilityArgs",
    "ResourcesConfig",
    "RetrainWebhook",
]
