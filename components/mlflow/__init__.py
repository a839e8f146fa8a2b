"""MLflow tracking server and model registry on PostgreSQL, artifacts in the object store."""

from components.mlflow.model import (
    AuthConfig,
    ClientConfig,
    CloudSqlConfig,
    DatabaseConfig,
    MlflowConfig,
    PostgresConfig,
    RdsConfig,
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
    "CloudSqlConfig",
    "DatabaseConfig",
    "GcpDatabaseNetwork",
    "MlflowConfig",
    "PostgresConfig",
    "RdsConfig",
    "ResourcesConfig",
    "TrackingServer",
    "TrackingServerArgs",
]
