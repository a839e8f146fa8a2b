"""Every setting of the prediction-log consumer, read through one typed registry of environment
variables (the model server's `EnvVar` pattern: name, type, default, doc; the README table is
generated from `REGISTRY` and a test fails when it is stale).

The Kafka security variables are the model server's own (`mlops_platform.model_server.settings`)
under this prefix, and they are checked by the model server's code, so the consumer speaks to
MSK IAM, GCP Managed Kafka and Strimzi SCRAM exactly as the producer does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from mlops_platform.model_server import settings as serving
from mlops_platform.model_server.settings import EnvVar, SettingsError, markdown_table

PREFIX = "MLOPS_CONSUMER_"
NO_LABELS = "none"

_SECURITY_FIELDS = (
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ca_file",
    "kafka_aws_region",
)


def _renamed(name: str) -> str:
    return name.replace(serving.PREFIX, PREFIX, 1)


def _security_var(var: EnvVar) -> EnvVar:
    return dataclasses.replace(
        var,
        name=_renamed(var.name),
        description=var.description.replace("the `kafka` sink", "the consumer"),
    )


_SECURITY_VARS = tuple(_security_var(v) for v in serving.REGISTRY if v.field in _SECURITY_FIELDS)

REGISTRY: tuple[EnvVar, ...] = (
    EnvVar(
        "MLOPS_CONSUMER_BUCKET_URI",
        "bucket_uri",
        str,
        "",
        "Where the windows are written: the datasets bucket (`s3://<bucket>`, `gs://<bucket>`, "
        "optionally with a prefix) or a local folder. MinIO: `s3://<bucket>` with the endpoint "
        "in `AWS_ENDPOINT_URL` or the AWS config file's `endpoint_url` (the workload identity's "
        "mounted Secret provides it). Required.",
    ),
    EnvVar(
        "MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS",
        "kafka_bootstrap_servers",
        str,
        "",
        "Kafka bootstrap servers (`host:port,...`). Required.",
    ),
    EnvVar(
        "MLOPS_CONSUMER_PREDICTIONS_TOPIC",
        "predictions_topic",
        str,
        "predictions",
        "Topic of the model servers' prediction log (`MLOPS_SERVE_KAFKA_TOPIC`).",
    ),
    EnvVar(
        "MLOPS_CONSUMER_LABELS_TOPIC",
        "labels_topic",
        str,
        "labels",
        "Topic of ground-truth labels (JSON `request_id`, `row`, `label`, `timestamp`); `none` "
        "= predictions only.",
    ),
    EnvVar(
        "MLOPS_CONSUMER_GROUP_ID",
        "group_id",
        str,
        "mlops-prediction-windows",
        "Kafka consumer group; its committed offsets are the consumer's progress.",
    ),
    EnvVar(
        "MLOPS_CONSUMER_FLUSH_ROWS",
        "flush_rows",
        int,
        50_000,
        "Write the windows (and then commit offsets) once this many rows are buffered.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_CONSUMER_FLUSH_SECONDS",
        "flush_seconds",
        float,
        300.0,
        "Write the windows at the latest this long after the first unwritten record, so a "
        "quiet topic still lands in the bucket.",
        minimum=0.1,
    ),
    EnvVar(
        "MLOPS_CONSUMER_WRITE_ATTEMPTS",
        "write_attempts",
        int,
        3,
        "Attempts to write a flush (backing off 1 s, 2 s, ...) before the process exits 1 and "
        "restarts from the last committed offsets.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_CONSUMER_METRICS_HOST",
        "metrics_host",
        str,
        "127.0.0.1",
        "Address of the Prometheus `/metrics` listener (`0.0.0.0` in a pod, so it can be scraped).",
    ),
    EnvVar(
        "MLOPS_CONSUMER_METRICS_PORT",
        "metrics_port",
        int,
        9400,
        "Port of the Prometheus `/metrics` listener; 0 = no listener.",
        minimum=0,
    ),
    *_SECURITY_VARS,
    EnvVar(
        "MLOPS_CONSUMER_LOG_LEVEL",
        "log_level",
        str,
        "info",
        "Log level of the consumer.",
        choices=("debug", "info", "warning", "error"),
    ),
)


@dataclass(frozen=True)
class ConsumerSettings:
    """Resolved settings; build with `ConsumerSettings.from_env` (defaults from `REGISTRY`)."""

    bucket_uri: str
    kafka_bootstrap_servers: str
    predictions_topic: str
    labels_topic: str
    group_id: str
    flush_rows: int
    flush_seconds: float
    write_attempts: int
    metrics_host: str
    metrics_port: int
    kafka_security_protocol: serving.KafkaSecurityProtocol
    kafka_sasl_mechanism: serving.KafkaSaslMechanism
    kafka_sasl_username: str
    kafka_sasl_password: str = field(repr=False)
    kafka_ca_file: str
    kafka_aws_region: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsumerSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var in REGISTRY:
            if (text := var.raw(env)).strip() != "":
                values[var.field] = var.parse(text)
            elif var.fallback and env.get(var.fallback, "").strip() != "":
                values[var.field] = var.parse(env[var.fallback])
            else:
                values[var.field] = var.default
        settings = cls(**values)
        for name, value in (
            ("MLOPS_CONSUMER_BUCKET_URI", settings.bucket_uri),
            ("MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers),
            ("MLOPS_CONSUMER_PREDICTIONS_TOPIC", settings.predictions_topic),
        ):
            if not value:
                raise SettingsError(f"{name} must be set")
        if settings.labels_topic == settings.predictions_topic:
            raise SettingsError(
                "MLOPS_CONSUMER_LABELS_TOPIC must differ from MLOPS_CONSUMER_PREDICTIONS_TOPIC "
                f"(both {settings.predictions_topic!r})"
            )
        settings.kafka_security()  # inconsistent security settings stop the start-up
        return settings

    @property
    def topics(self) -> list[str]:
        if self.labels_topic == NO_LABELS:
            return [self.predictions_topic]
        return [self.predictions_topic, self.labels_topic]

    def kafka_security(self) -> serving.Settings:
        """The security settings as the model server's `Settings`, validated by its checks
        (errors name this consumer's variables), for `kafka_security.security_config`."""
        env = {
            var.name: str(getattr(self, var.field))
            for var in serving.REGISTRY
            if var.field in _SECURITY_FIELDS
        }
        try:
            return serving.Settings.from_env(env)
        except SettingsError as exc:
            raise SettingsError(str(exc).replace(serving.PREFIX, PREFIX)) from None


def _check_registry_matches_dataclass() -> None:
    registry_fields = [v.field for v in REGISTRY]
    dataclass_fields = [f.name for f in fields(ConsumerSettings)]
    if registry_fields != dataclass_fields:
        raise RuntimeError(f"REGISTRY {registry_fields} != ConsumerSettings {dataclass_fields}")


_check_registry_matches_dataclass()


def settings_table() -> str:
    """The README's settings table (the model server's generator, this registry)."""
    return markdown_table(REGISTRY)
