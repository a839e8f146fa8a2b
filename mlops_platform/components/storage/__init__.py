"""Object storage: a map of buckets on S3, GCS or MinIO."""

from mlops_platform.components.storage.model import (
    BucketConfig,
    GcsConfig,
    LifecycleConfig,
    MinioConfig,
    S3Config,
    StorageConfig,
)
from mlops_platform.components.storage.resources import ObjectStore, ObjectStoreArgs

__all__ = [
    "BucketConfig",
    "GcsConfig",
    "LifecycleConfig",
    "MinioConfig",
    "ObjectStore",
    "ObjectStoreArgs",
    "S3Config",
    "StorageConfig",
]
