"""metrics-server (the `metrics.k8s.io` API) where the stack has HPAs and the cluster has none."""

from mlops_platform.components.metrics_server.model import (
    Decision,
    decide,
    helm_values,
    hpa_sources,
)
from mlops_platform.components.metrics_server.resources import MetricsServer, MetricsServerArgs

__all__ = ["Decision", "MetricsServer", "MetricsServerArgs", "decide", "helm_values", "hpa_sources"]
