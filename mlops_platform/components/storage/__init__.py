"""Object storage: a map of buckets on S3, GCS or MinIO."""

from mlops_platform.components.storage.model import (
    BucketConfig,
    LifecycleConfig,
    MinioConfig,
    StorageConfig,
)
from mlops_platform.components.storage.resources import ObjectStore, ObjectStoreArgs

__all__ = [
    "BucketConfig",
    "LifecycleConfig",
    "MinioConfig",
    "ObjectStore",
    "ObjectStoreArgs",
    "StorageConfig",
]
