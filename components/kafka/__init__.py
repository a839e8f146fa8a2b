"""Kafka: Amazon MSK, Google Cloud Managed Kafka or Strimzi, with the platform's topics."""

from components.kafka.model import (
    KafkaConfig,
    ManagedKafkaConfig,
    MskConfig,
    StrimziConfig,
    TopicConfig,
)
from components.kafka.resources import AwsKafkaNetwork, KafkaCluster, KafkaClusterArgs

__all__ = [
    "AwsKafkaNetwork",
    "KafkaCluster",
    "KafkaClusterArgs",
    "KafkaConfig",
    "ManagedKafkaConfig",
    "MskConfig",
    "StrimziConfig",
    "TopicConfig",
]
