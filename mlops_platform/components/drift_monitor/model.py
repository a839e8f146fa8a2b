"""The drift monitor, pure layer: its config and every Kubernetes object it needs.

`mlops_platform/pipelines/loop/monitor.py` runs in the platform image next to the prediction-log consumer
(the loop's namespace): every `settings.interval_minutes` it checks the last
`settings.window_hours` of the prediction log's windows against the champion's training sample
with the drift pipeline's detector, and exports the verdicts that the platform's drift alert
(mlops_platform/components/monitoring `drift_alerts`) fires on. `settings` is the one `DriftSettings` the
monitor and the drift pipeline the alert starts share (the receiver passes
`settings.pipeline_arguments()` to it, mlops_platform/components/loop).

It reads the bucket as the consumer's service account (its workload identity has read_write on
the loop's bucket; locally the MinIO user's Secret, mounted as the AWS SDKs' files) and the
registry as the loop's MLflow client (its Secret's MLflow credentials file, mounted): no secret
is in its environment.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.identity.model import secret_credential_files
from mlops_platform.components.kube import (
    ContainerResourcesConfig,
    app_labels,
    app_selector,
    container_resources,
    probe,
    restricted_container_security,
    restricted_pod_security,
)
from mlops_platform.components.mlflow.model import (
    client_credentials_mount,
    client_credentials_volume,
)
from mlops_platform.pipelines.lib.drift import DriftSettings
from mlops_platform.pipelines.loop.receiver_settings import MODEL_NAME

APP = "drift-monitor"
COMPONENT = "drift-monitor"
METRICS_PORT = 9401
USER = 10001  # the platform image's user (mlops_platform/pipelines/Dockerfile)


class DriftMonitorResources(ContainerResourcesConfig):
    # A check holds a week of one model's prediction log and a 50,000-row reference in pandas.
    cpu_request: str = Field(
        default="200m",
        description="CPU request of the drift monitor (Kubernetes quantity, e.g. 250m = a quarter "
        "core).",
    )
    memory_request: str = Field(
        default="1Gi",
        description="Memory request of the drift monitor (Kubernetes quantity, e.g. 512Mi).",
    )
    memory_limit: str = Field(
        default="2Gi",
        description="Memory limit of the drift monitor; the container is OOM-killed above it (a "
        "week of one model's prediction log and the reference are held in memory).",
    )


class DriftMonitorConfig(StrictModel):
    """The serving-side drift check (created with the loop's prediction-log consumer)."""

    enabled: bool = Field(
        default=True,
        description="Run the drift monitor when the loop's consumer writes the prediction log "
        "(without it the drift alert has no source).",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Registered models to check; empty: every served model that logs to the "
        "platform's Kafka.",
    )
    settings: DriftSettings = Field(
        default_factory=DriftSettings,
        description="Window, interval, reference alias and the detector's thresholds, floors "
        "and seasonal key (mlops_platform/pipelines/lib/drift.py `DriftSettings`); the drift pipeline "
        "an alert starts gets the same.",
    )
    resources: DriftMonitorResources = Field(
        default_factory=DriftMonitorResources,
        description="Requests and memory limit of the drift monitor pod.",
    )

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        for model in value:
            if not MODEL_NAME.match(model):
                raise ValueError(f"models: {model!r} is not a model name")
        return value


def labels() -> dict[str, str]:
    return app_labels(APP, COMPONENT)


def _meta(namespace: str) -> dict[str, Any]:
    return {"name": APP, "namespace": namespace, "labels": labels()}


def settings_env(
    config: DriftMonitorConfig,
    bucket_uri: Any,
    tracking_uri: Any,
    models: list[str],
    reference_uri: Any = "",
) -> list[dict[str, Any]]:
    """The monitor's MLOPS_DRIFT_MONITOR_* variables (mlops_platform/pipelines/loop/monitor_settings.py).
    The URIs may be `pulumi.Output`s; `reference_uri` empty: the champion's training sample."""
    if not models:
        raise ValueError("drift monitor: no models to check (loop.drift_monitor.models)")
    return [
        {"name": "MLOPS_DRIFT_MONITOR_BUCKET_URI", "value": bucket_uri},
        {"name": "MLOPS_DRIFT_MONITOR_TRACKING_URI", "value": tracking_uri},
        {"name": "MLOPS_DRIFT_MONITOR_REFERENCE_URI", "value": reference_uri},
        {"name": "MLOPS_DRIFT_MONITOR_MODELS", "value": ",".join(models)},
        {
            "name": "MLOPS_DRIFT_MONITOR_SETTINGS",
            "value": json.dumps(config.settings.model_dump(mode="json"), sort_keys=True),
        },
        {"name": "MLOPS_DRIFT_MONITOR_METRICS_HOST", "value": "0.0.0.0"},
        {"name": "MLOPS_DRIFT_MONITOR_METRICS_PORT", "value": str(METRICS_PORT)},
        {"name": "HOME", "value": "/tmp"},
    ]


def deployment(
    config: DriftMonitorConfig,
    *,
    namespace: str,
    image: str,
    service_account: str,
    bucket_uri: Any,
    tracking_uri: Any,
    models: list[str],
    mlflow_credentials_secret: str | None = None,
    object_store_secret: str | None = None,
    reference_uri: Any = "",
) -> dict[str, Any]:
    """`mlflow_credentials_secret`: the loop's MLflow client Secret (its MLflow credentials
    file is mounted under HOME); `object_store_secret`: locally, the MinIO user's Secret of the
    consumer's workload identity (its AWS SDK files are mounted)."""
    metrics = {"httpGet": {"path": "/metrics", "port": "metrics"}}
    container: dict[str, Any] = {
        "name": "monitor",
        "image": image,
        "command": ["python", "-m", "mlops_platform.pipelines.loop.monitor"],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "env": settings_env(config, bucket_uri, tracking_uri, models, reference_uri),
        "resources": container_resources(
            config.resources.cpu_request,
            config.resources.memory_request,
            config.resources.memory_limit,
        ),
        "securityContext": restricted_container_security(USER),
        "readinessProbe": probe(metrics, period=10, failures=3),
        "livenessProbe": probe(metrics, period=30, failures=3),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    # The reference is downloaded to /tmp (a few MB per model version).
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}}]
    if mlflow_credentials_secret is not None:
        container["volumeMounts"].append(client_credentials_mount("/tmp"))  # HOME is /tmp
        volumes.append(client_credentials_volume(mlflow_credentials_secret))
    if object_store_secret is not None:
        files = secret_credential_files(object_store_secret)
        container["env"] += files.env
        container["volumeMounts"].append(files.mount)
        volumes.append(files.volume)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(namespace),
        "spec": {
            # One checker: a second would only export the same verdicts twice.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": app_selector(APP, COMPONENT)},
            "template": {
                "metadata": {"labels": labels()},
                "spec": {
                    "serviceAccountName": service_account,
                    "automountServiceAccountToken": False,
                    "securityContext": restricted_pod_security(USER),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def pod_monitor(config: DriftMonitorConfig, namespace: str) -> dict[str, Any]:
    """Prometheus scrapes the verdicts (the platform's Prometheus selects every PodMonitor).
    Every minute is plenty: the verdicts change once per interval."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _meta(namespace),
        "spec": {
            "selector": {"matchLabels": app_selector(APP, COMPONENT)},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "60s"}],
        },
    }


def network_policy(namespace: str, prometheus_namespace: str) -> dict[str, Any]:
    """Only the platform's Prometheus reaches the metrics port; the monitor serves nothing else."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(namespace),
        "spec": {
            "podSelector": {"matchLabels": app_selector(APP, COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": prometheus_namespace}
                            },
                            "podSelector": {
                                "matchLabels": {"app.kubernetes.io/name": "prometheus"}
                            },
                        }
                    ],
                    "ports": [{"port": METRICS_PORT, "protocol": "TCP"}],
                }
            ],
        },
    }


def monitored_models(config: DriftMonitorConfig, served: list[str]) -> list[str]:
    """`config.models`, or every served model that logs to the platform's Kafka."""
    return sorted(set(config.models or served))
