"""The prediction-log consumer, pure layer: the Deployment that turns the `predictions` and
`labels` topics into the hourly Parquet windows the drift pipeline reads
(`mlops_platform/pipelines/loop/consumer.py`, settings in `consumer_settings.py`).

It runs in the platform image as the loop's `service_account`, whose workload identity writes
the datasets bucket (IRSA, GKE Workload Identity, or locally the MinIO user's Secret, mounted as
the AWS SDKs' files) and carries the Kafka grant on the clouds; locally its SCRAM user's password
(a mounted file) and the cluster CA come from the platform Kafka client in its namespace, as for
the model server.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveFloat, PositiveInt

from mlops_platform.components.base import StrictModel
from mlops_platform.components.identity.model import secret_credential_files
from mlops_platform.components.kafka.model import KafkaClientWiring
from mlops_platform.components.kube import (
    ContainerResourcesConfig,
    app_labels,
    app_selector,
    container_resources,
    restricted_container_security,
    restricted_pod_security,
)
from mlops_platform.components.serving.model import (
    KAFKA_CA_VOLUME_MOUNT,
    KAFKA_PASSWORD_VOLUME_MOUNT,
    kafka_ca_volume,
    kafka_password_volume,
    kafka_security_env,
)
from mlops_platform.model_server import settings as server_settings
from mlops_platform.pipelines.loop import consumer_settings

APP = "prediction-log-consumer"
COMPONENT = "consumer"
METRICS_PORT = 9400
USER = 10001  # the platform image's user (mlops_platform/pipelines/Dockerfile)
GROUP_ID = "mlops-prediction-windows"
# Defaults are the consumer's own (its settings registry), so they are stated once.
_DEFAULTS = {var.field: var.default for var in consumer_settings.REGISTRY}


class ConsumerResources(ContainerResourcesConfig):
    cpu_request: str = Field(
        default="100m",
        description="CPU request of the prediction-log consumer (Kubernetes quantity, e.g. 250m = "
        "a quarter core).",
    )
    memory_request: str = Field(
        default="512Mi",
        description="Memory request of the prediction-log consumer (Kubernetes quantity, e.g. "
        "512Mi).",
    )
    memory_limit: str = Field(
        default="1Gi",
        description="Memory limit of the prediction-log consumer; the container is OOM-killed "
        "above it (it buffers up to `flush_rows` rows).",
    )


class ConsumerConfig(StrictModel):
    """The prediction-log consumer: `predictions` and `labels` into Parquet windows."""

    service_account: str = Field(
        default="prediction-log",
        description="Service account of the pods; a `workload_identities` entry in the loop's "
        "namespace must give it `read_write` on the loop's bucket.",
    )
    labels_topic: str = Field(
        default="labels", description="Topic of the ground-truth labels (a `kafka.topics` key)."
    )
    flush_rows: PositiveInt = Field(
        default=_DEFAULTS["flush_rows"], description="Rows buffered before a window is written."
    )
    flush_seconds: PositiveFloat = Field(
        default=_DEFAULTS["flush_seconds"],
        description="Longest a row waits before its window is written.",
    )
    resources: ConsumerResources = Field(
        default_factory=ConsumerResources,
        description="Requests and memory limit of the consumer pod.",
    )


def _env(name: str, value: Any) -> dict[str, str]:
    return {"name": name, "value": str(value)}


def _consumer_name(server_name: str) -> str:
    """The consumer's variable of a model-server Kafka setting (the same registry entry)."""
    return server_name.replace(server_settings.PREFIX, consumer_settings.PREFIX, 1)


def settings_env(
    config: ConsumerConfig, bucket_uri: Any, predictions_topic: str, kafka: KafkaClientWiring
) -> list[dict[str, Any]]:
    env = [
        # Both may be `pulumi.Output`s (known once the bucket and the brokers exist).
        {"name": "MLOPS_CONSUMER_BUCKET_URI", "value": bucket_uri},
        {"name": "MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS", "value": kafka.bootstrap_servers},
        _env("MLOPS_CONSUMER_PREDICTIONS_TOPIC", predictions_topic),
        _env("MLOPS_CONSUMER_LABELS_TOPIC", config.labels_topic),
        _env("MLOPS_CONSUMER_GROUP_ID", GROUP_ID),
        _env("MLOPS_CONSUMER_FLUSH_ROWS", config.flush_rows),
        _env("MLOPS_CONSUMER_FLUSH_SECONDS", config.flush_seconds),
        _env("MLOPS_CONSUMER_METRICS_HOST", "0.0.0.0"),
        _env("MLOPS_CONSUMER_METRICS_PORT", METRICS_PORT),
        _env("HOME", "/tmp"),
    ]
    # TLS and SASL exactly as the model server gets them, under the consumer's names.
    for var in kafka_security_env(kafka):
        env.append({**var, "name": _consumer_name(var["name"])})
    return env


def deployment(
    config: ConsumerConfig,
    namespace: str,
    image: str,
    bucket_uri: Any,
    predictions_topic: str,
    kafka: KafkaClientWiring,
    credentials_secret: str | None,
) -> dict[str, Any]:
    """`credentials_secret`: locally, the MinIO user's Secret of the workload identity."""
    container: dict[str, Any] = {
        "name": "consumer",
        "image": image,
        "command": ["python", "-m", "mlops_platform.pipelines.loop.consumer"],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "env": settings_env(config, bucket_uri, predictions_topic, kafka),
        "resources": container_resources(
            config.resources.cpu_request,
            config.resources.memory_request,
            config.resources.memory_limit,
        ),
        "securityContext": restricted_container_security(USER),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
    if kafka.ca_config_map is not None:
        container["volumeMounts"].append(dict(KAFKA_CA_VOLUME_MOUNT))
        volumes.append(kafka_ca_volume(kafka.ca_config_map))
    if kafka.password_secret is not None:
        container["volumeMounts"].append(dict(KAFKA_PASSWORD_VOLUME_MOUNT))
        volumes.append(kafka_password_volume(kafka.password_secret))
    if credentials_secret is not None:
        # pyarrow's S3 reads the keys from the shared credentials file; the endpoint from the
        # config file is resolved through botocore (mlops_platform/pipelines/loop/windows.py).
        files = secret_credential_files(credentials_secret)
        container["env"] += files.env
        container["volumeMounts"].append(files.mount)
        volumes.append(files.volume)
    labels = app_labels(APP, COMPONENT)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": namespace, "labels": labels},
        "spec": {
            # One consumer group member; Kafka rebalances a second one in, but windows are
            # written per flush either way, so more replicas only add files.
            "replicas": 1,
            "selector": {"matchLabels": app_selector(APP, COMPONENT)},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": config.service_account,
                    "automountServiceAccountToken": False,
                    "securityContext": restricted_pod_security(USER),
                    # SIGTERM flushes the buffered rows and commits (mlops_platform/pipelines/loop/README).
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }
