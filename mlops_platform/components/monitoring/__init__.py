"""Monitoring: Prometheus, Alertmanager and Grafana (kube-prometheus-stack) plus model alerts,
and the optional trace backend (Jaeger v2, `tracing`)."""

from mlops_platform.components.monitoring.alerts import ModelAlerts, ModelAlertsArgs
from mlops_platform.components.monitoring.model import (
    AlertingConfig,
    AlertsConfig,
    GrafanaConfig,
    MonitoringConfig,
    ResourcesConfig,
    prometheus_url,
)
from mlops_platform.components.monitoring.resources import (
    Observability,
    ObservabilityArgs,
    RetrainWebhook,
)
from mlops_platform.components.monitoring.tracing import TracingConfig, TracingWiring
from mlops_platform.components.monitoring.tracing import wiring as tracing_wiring

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
    "TracingConfig",
    "TracingWiring",
    "prometheus_url",
    "tracing_wiring",
]
