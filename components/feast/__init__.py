"""Feast feature store: registry and offline Parquet in the object store, Redis online store,
the feature server in the cluster."""

from components.feast.model import (
    FeastConfig,
    OfflineStoreConfig,
    OnlineStoreConfig,
    RegistryConfig,
    ServerConfig,
)
from components.feast.resources import FeatureStore, FeatureStoreArgs

__all__ = [
    "FeastConfig",
    "FeatureStore",
    "FeatureStoreArgs",
    "OfflineStoreConfig",
    "OnlineStoreConfig",
    "RegistryConfig",
    "ServerConfig",
]
