"""Feast feature store: registry and offline Parquet in the object store, Redis online store,
the feature server in the cluster."""

from mlops_platform.components.feast.model import (
    ElastiCacheConfig,
    FeastConfig,
    MemorystoreConfig,
    OfflineStoreConfig,
    OnlineStoreConfig,
    RedisConfig,
    RegistryConfig,
    ServerConfig,
    config_problems,
    feature_server_url,
    registry_uri,
)
from mlops_platform.components.feast.resources import FeatureStore, FeatureStoreArgs

__all__ = [
    "ElastiCacheConfig",
    "FeastConfig",
    "FeatureStore",
    "FeatureStoreArgs",
    "MemorystoreConfig",
    "OfflineStoreConfig",
    "OnlineStoreConfig",
    "RedisConfig",
    "RegistryConfig",
    "ServerConfig",
    "config_problems",
    "feature_server_url",
    "registry_uri",
]
