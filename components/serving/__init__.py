"""Model serving: the model server on Kubernetes, stable and canary tracks split by Istio."""

from components.serving.delivery import (
    FlaggerWiring,
    ProgressiveConfig,
    release_config_map_name,
)
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
    "FlaggerWiring",
    "ModelDeployment",
    "ModelDeploymentArgs",
    "ModelDeploymentConfig",
    "ProgressiveConfig",
    "ResourcesConfig",
    "ServingDeployments",
    "TrackConfig",
    "release_config_map_name",
]
