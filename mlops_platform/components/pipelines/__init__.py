"""Kubeflow Pipelines (standalone, KFP 2.x backend) with artifacts in the platform's bucket."""

from mlops_platform.components.pipelines.model import PipelinesConfig, pipelines_problems
from mlops_platform.components.pipelines.resources import KubeflowPipelines, KubeflowPipelinesArgs

__all__ = ["KubeflowPipelines", "KubeflowPipelinesArgs", "PipelinesConfig", "pipelines_problems"]
