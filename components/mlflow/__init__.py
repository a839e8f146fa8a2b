"""MLflow tracking server and model registry on PostgreSQL, artifacts in the object store."""

from components.mlflow.model import (
    AuthConfig,
    ClientConfig,
    DatabaseConfig,
    MlflowConfig,
    ResourcesConfig,
)
from components.mlflow.resources import (
    AwsDatabaseNetwork,
    GcpDatabaseNetwork,
    TrackingServer,
    TrackingServerArgs,
)

__all__ = [
    "AuthConfig",
    "AwsDatabaseNetwork",
    "ClientConfig",
    "DatabaseConfig",
    "GcpDatabaseNetwork",
    "MlflowConfig",
    "ResourcesConfig",
    "TrackingServer",
    "TrackingServerArgs",
]
