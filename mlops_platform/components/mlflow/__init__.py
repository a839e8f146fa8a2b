"""MLflow tracking server and model registry on PostgreSQL, artifacts in the object store."""

from mlops_platform.components.mlflow.model import (
    AuthConfig,
    ClientConfig,
    CloudSqlConfig,
    DatabaseConfig,
    MlflowConfig,
    PostgresConfig,
    RdsConfig,
    ResourcesConfig,
    config_problems,
    tracking_uri,
)
from mlops_platform.components.mlflow.resources import (
    TrackingServer,
    TrackingServerArgs,
)

__all__ = [
    "AuthConfig",
    "ClientConfig",
    "CloudSqlConfig",
    "DatabaseConfig",
    "MlflowConfig",
    "PostgresConfig",
    "RdsConfig",
    "ResourcesConfig",
    "TrackingServer",
    "TrackingServerArgs",
    "config_problems",
    "tracking_uri",
]
