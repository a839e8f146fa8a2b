"""Monitoring: Prometheus, Alertmanager and Grafana (kube-prometheus-stack) plus model alerts."""

from components.monitoring.alerts import ModelAlerts, ModelAlertsArgs
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
    "ModelAlerts",
    "ModelAlertsArgs",
    "MonitoringConfig",
    "Observability",
    "ObservabilityArgs",
    "ResourcesConfig",
    "RetrainWebhook",
]
