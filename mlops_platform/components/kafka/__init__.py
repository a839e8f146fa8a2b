"""Kafka: Amazon MSK, Google Cloud Managed Kafka or Strimzi, with the platform's topics."""

from mlops_platform.components.kafka.model import (
    KafkaClientWiring,
    KafkaConfig,
    KeyRef,
    ManagedKafkaConfig,
    MskConfig,
    StrimziConfig,
    TopicConfig,
    cloud_problems,
    msk_client_subnets,
)
from mlops_platform.components.kafka.resources import (
    KafkaClient,
    KafkaClientArgs,
    KafkaCluster,
    KafkaClusterArgs,
    StrimziOperator,
    StrimziOperatorArgs,
)

__all__ = [
    "KafkaClient",
    "KafkaClientArgs",
    "KafkaClientWiring",
    "KafkaCluster",
    "KafkaClusterArgs",
    "KafkaConfig",
    "KeyRef",
    "ManagedKafkaConfig",
    "MskConfig",
    "StrimziConfig",
    "StrimziOperator",
    "StrimziOperatorArgs",
    "TopicConfig",
    "cloud_problems",
    "msk_client_subnets",
]
