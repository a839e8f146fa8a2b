"""The platform's loop: the retrain receiver that turns drift alerts into pipeline runs."""

from mlops_platform.components.loop.model import (
    TOKEN_LENGTH,
    LoopConfig,
    Release,
    ReleaseWiring,
    config_problems,
    receiver_url,
    service_url,
)
from mlops_platform.components.loop.resources import (
    PredictionLogConsumer,
    PredictionLogConsumerArgs,
    RetrainReceiver,
    RetrainReceiverArgs,
)

__all__ = [
    "TOKEN_LENGTH",
    "LoopConfig",
    "PredictionLogConsumer",
    "PredictionLogConsumerArgs",
    "Release",
    "ReleaseWiring",
    "RetrainReceiver",
    "RetrainReceiverArgs",
    "config_problems",
    "receiver_url",
    "service_url",
]
