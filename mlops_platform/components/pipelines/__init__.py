"""Kubeflow Pipelines (standalone, KFP 2.x backend) with artifacts in the platform's bucket."""

from mlops_platform.components.pipelines.model import (
    NAMESPACE,
    RUNNER_SERVICE_ACCOUNT,
    PipelinesConfig,
    api_endpoint,
    pipelines_problems,
)
from mlops_platform.components.pipelines.resources import KubeflowPipelines, KubeflowPipelinesArgs

__all__ = [
    "NAMESPACE",
    "RUNNER_SERVICE_ACCOUNT",
    "KubeflowPipelines",
    "KubeflowPipelinesArgs",
    "PipelinesConfig",
    "api_endpoint",
    "pipelines_problems",
]
