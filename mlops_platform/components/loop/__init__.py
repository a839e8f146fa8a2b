"""The platform's loop: the retrain receiver that turns drift alerts into pipeline runs."""

from mlops_platform.components.loop.model import LoopConfig, config_problems
from mlops_platform.components.loop.resources import (
    PredictionLogConsumer,
    PredictionLogConsumerArgs,
    RetrainReceiver,
    RetrainReceiverArgs,
)

__all__ = [
    "LoopConfig",
    "PredictionLogConsumer",
    "PredictionLogConsumerArgs",
    "RetrainReceiver",
    "RetrainReceiverArgs",
    "config_problems",
]
