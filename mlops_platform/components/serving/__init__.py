"""Model serving: the model server on Kubernetes, stable and canary tracks split by Istio."""

from mlops_platform.components.serving.delivery import (
    FlaggerWiring,
    ProgressiveConfig,
    release_config_map_name,
)
from mlops_platform.components.serving.model import (
    AutoscalingConfig,
    CanaryConfig,
    ModelDeploymentConfig,
    ResourcesConfig,
    ServingDeployments,
    TrackConfig,
    served_model_name,
)
from mlops_platform.components.serving.resources import ModelDeployment, ModelDeploymentArgs

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
    "served_model_name",
]
