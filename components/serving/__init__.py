"""Model serving: the model server on Kubernetes, stable and canary tracks split by Istio."""

from components.serving.model import (
    AutoscalingConfig,
    CanaryConfig,
    ModelDeploymentConfig,
    ResourcesConfig,
    ServingDeployments,
    TrackConfig,
)
from components.serving.resources import ModelDeployment, ModelDeploymentArgs

__all__ = [
    "AutoscalingConfig",
    "CanaryConfig",
    "ModelDeployment",
    "ModelDeploymentArgs",
    "ModelDeploymentConfig",
    "ResourcesConfig",
    "ServingDeployments",
    "TrackConfig",
]
