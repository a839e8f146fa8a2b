"""The retrain receiver, pure layer: config model and every Kubernetes object it needs.

`mlops_platform/pipelines/loop/receiver.py` runs in the platform image; Alertmanager
(mlops_platform/components/monitoring) posts the drift alerts to its Service with a generated
bearer token, and it starts drift-pipeline runs through the KFP API.
Everything here is plain data in, plain data out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, PositiveFloat, field_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.drift_monitor.model import DriftMonitorConfig
from mlops_platform.components.kube import (
    DNS_LABEL_MAX,
    ContainerResourcesConfig,
    app_labels,
    app_selector,
    check_namespace,
    check_pinned_image,
    container_resources,
    probe,
    restricted_container_security,
    restricted_pod_security,
    secret_dir,
    secret_volume,
    secret_volume_mount,
)
from mlops_platform.components.loop.consumer import ConsumerConfig
from mlops_platform.components.mlflow.model import (
    client_credentials_mount,
    client_credentials_volume,
)
from mlops_platform.components.serving.delivery import release_config_map_name
from mlops_platform.pipelines.components.image import BASE_IMAGE
from mlops_platform.pipelines.loop.receiver_settings import MODEL_NAME, MODEL_PLACEHOLDER

APP = "retrain-receiver"
COMPONENT = "receiver"
SERVICE = "retrain-receiver"
SERVICE_ACCOUNT = "retrain-receiver"
TOKEN_SECRET = "retrain-receiver-token"
TOKEN_KEY = "token"
TOKEN_LENGTH = 48
# The token, mounted read-only; the receiver reads it through MLOPS_RECEIVER_TOKEN_FILE.
TOKEN_VOLUME = "token"
TOKEN_FILE = f"{secret_dir(TOKEN_VOLUME)}/{TOKEN_KEY}"
PORT = 8080
PATH = "/alerts"
# The platform image's user (mlops_platform/pipelines/Dockerfile).
USER = 10001
# Pods of kube-prometheus-stack's Alertmanager carry this label (operator-managed StatefulSet).
ALERTMANAGER_POD_LABELS = {"app.kubernetes.io/name": "alertmanager"}
# Flagger's pods (its chart's `flagger.name`), which call the release webhooks.
FLAGGER_POD_LABELS = {"app.kubernetes.io/name": "flagger"}
RELEASE_ROLE = "retrain-receiver-releases"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# The drift check's parameters of the drift pipelines: set from `drift_monitor.settings` only.
DRIFT_PARAMETERS = frozenset(
    {
        "hours",
        "reference_alias",
        "drift_config",
        "psi_threshold",
        "pvalue_threshold",
        "min_drifted_features",
        "season_days",
    }
)


class ReceiverResources(ContainerResourcesConfig):
    cpu_request: str = Field(
        default="50m",
        description="CPU request of the retrain receiver (Kubernetes quantity, e.g. 250m = a "
        "quarter core).",
    )
    memory_request: str = Field(
        default="256Mi",
        description="Memory request of the retrain receiver (Kubernetes quantity, e.g. 512Mi).",
    )
    memory_limit: str = Field(
        default="512Mi",
        description="Memory limit of the retrain receiver; the container is OOM-killed above it.",
    )


class LoopConfig(StrictModel):
    """The platform's retrain receiver: drift alerts start the drift/retrain pipeline."""

    namespace: str = Field(default="mlops-loop", description="Namespace of the receiver.")
    image: str = Field(default=BASE_IMAGE, description="The platform image (pinned).")
    bucket: str = Field(
        default="datasets",
        description="Key of `storage.buckets` holding the drift pipeline's input data.",
    )
    data_path: str = Field(
        default=f"drift/{MODEL_PLACEHOLDER}/recent.parquet",
        description="Recent labelled window in `bucket`; `{model}` is the alert's model.",
    )
    reference_path: str = Field(
        default="",
        description="Reference data of the drift check in `bucket` (`{model}` as above); empty: "
        "the champion's training data, found through its lineage in MLflow (the register step "
        "logs a sample with every version).",
    )
    retrain_interval_hours: PositiveFloat = Field(
        default=6, description="At most one retrain per model in this period."
    )
    models: list[str] = Field(
        default_factory=list,
        description="Models that may be retrained; empty: any model a drift alert names.",
    )
    pipeline_arguments: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Further drift_pipeline parameters (search_iterations, ...); the drift "
        "check's own come from `drift_monitor.settings`.",
    )
    experiment: str = Field(default="drift-retrain", description="KFP experiment of the runs.")
    resources: ReceiverResources = Field(
        default_factory=ReceiverResources,
        description="Requests and memory limit of the retrain receiver pod.",
    )
    consumer: ConsumerConfig = Field(
        default_factory=ConsumerConfig,
        description="The prediction-log consumer (created when a serving deployment logs to "
        "the platform's Kafka): `predictions` and `labels` into windows in `bucket`.",
    )
    drift_monitor: DriftMonitorConfig = Field(
        default_factory=DriftMonitorConfig,
        description="The drift alert's source (created with the consumer): the drift "
        "pipeline's detector on the prediction log's recent window; its `settings` are passed "
        "to the drift pipeline runs the alert starts too.",
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_namespace(value, "namespace")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        return check_pinned_image(value)

    @field_validator("data_path", "reference_path")
    @classmethod
    def _path(cls, value: str, info) -> str:
        if not value and info.field_name == "reference_path":
            return value
        if not re.match(r"^[A-Za-z0-9_.{}/-]+$", value) or value.startswith("/") or ".." in value:
            raise ValueError(
                f"{info.field_name} {value!r} must be a relative object path (letters, digits, "
                "_ . - / and {model})"
            )
        return value

    @field_validator("models")
    @classmethod
    def _models(cls, value: list[str]) -> list[str]:
        for model in value:
            if not MODEL_NAME.match(model):
                raise ValueError(f"models: {model!r} is not a model name")
        return value

    @field_validator("pipeline_arguments")
    @classmethod
    def _pipeline_arguments(cls, value: dict) -> dict:
        owned = sorted(set(value) & DRIFT_PARAMETERS)
        if owned:
            raise ValueError(
                f"pipeline_arguments: {', '.join(owned)} belong to the drift check, whose "
                "settings are drift_monitor.settings (one config for the alert and the pipeline)"
            )
        return value

    @field_validator("experiment")
    @classmethod
    def _experiment(cls, value: str) -> str:
        if not value or len(value) > DNS_LABEL_MAX or not re.match(r"^[A-Za-z0-9_.-]+$", value):
            raise ValueError(f"experiment {value!r} must be a short name (letters, digits, _ . -)")
        return value


@dataclass(frozen=True)
class Release:
    """A progressive serving deployment whose releases the service drives (derived from the
    `serving` config by the program): its registered model, namespace, name and port."""

    model: str
    namespace: str
    name: str
    port: int = 8080

    @property
    def config_map(self) -> str:
        return release_config_map_name(self.name)


@dataclass(frozen=True)
class ReleaseWiring:
    """What driving releases needs: the deployments, the MLflow client Secret in the loop's
    namespace (aliases and tags are written with it), and Flagger's namespace (admitted)."""

    releases: tuple[Release, ...]
    mlflow_credentials_secret: str
    flagger_namespace: str


def release_roles(config: LoopConfig, wiring: ReleaseWiring) -> list[dict[str, Any]]:
    """Per serving namespace: get and patch only the release ConfigMaps of its deployments."""
    by_namespace: dict[str, list[str]] = {}
    for release in wiring.releases:
        by_namespace.setdefault(release.namespace, []).append(release.config_map)
    roles = []
    for namespace, names in sorted(by_namespace.items()):
        roles.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": _meta(RELEASE_ROLE, namespace),
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "resourceNames": sorted(names),
                        "verbs": ["get", "patch"],
                    }
                ],
            }
        )
    return roles


def release_role_binding(config: LoopConfig, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(RELEASE_ROLE, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE_ROLE},
        "subjects": [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": config.namespace}
        ],
    }


def peer_authentication(config: LoopConfig) -> dict[str, Any]:
    """With releases the pod has an Istio sidecar (the model services take mTLS only); its own
    port stays reachable in plain text for Alertmanager and Flagger, which have none."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": _meta(APP, config.namespace),
        "spec": {
            "selector": {"matchLabels": app_selector(APP, COMPONENT)},
            "mtls": {"mode": "STRICT"},
            "portLevelMtls": {str(PORT): {"mode": "PERMISSIVE"}},
        },
    }


def config_problems(config: LoopConfig, bucket_keys: set[str]) -> list[tuple[str, str]]:
    if config.bucket not in bucket_keys:
        return [
            (
                "loop.bucket",
                f"unknown bucket {config.bucket!r}; storage.buckets has {sorted(bucket_keys)}",
            )
        ]
    return []


def service_url(namespace: str) -> str:
    """The service's base URL (Flagger's release webhooks are under it)."""
    return f"http://{SERVICE}.{namespace}.svc.cluster.local:{PORT}"


def receiver_url(namespace: str) -> str:
    """Where Alertmanager posts the drift alerts."""
    return f"http://{SERVICE}.{namespace}.svc.cluster.local:{PORT}{PATH}"


def labels() -> dict[str, str]:
    return app_labels(APP, COMPONENT)


def _meta(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels()}


def service_account(config: LoopConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(SERVICE_ACCOUNT, config.namespace),
        # It calls the KFP API over HTTP, never the Kubernetes API.
        "automountServiceAccountToken": False,
    }


def token_secret(config: LoopConfig) -> dict[str, Any]:
    """The envelope; the resource layer fills the generated token as a secret Output."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(TOKEN_SECRET, config.namespace),
        "type": "Opaque",
        "stringData": {TOKEN_KEY: "[secret]"},
    }


def drift_arguments(config: LoopConfig, windows: bool) -> dict[str, str | int]:
    """The drift check's settings for the pipeline a drift alert starts: the drift monitor's
    own, so the run decides as the alert did (`drift_pipeline` reads a file, not `hours`)."""
    arguments = config.drift_monitor.settings.pipeline_arguments()
    if not windows:
        arguments.pop("hours")
    return arguments


def settings_env(
    config: LoopConfig,
    bucket_uri: str,
    tracking_uri: str,
    kfp_host: str,
    releases: ReleaseWiring | None = None,
    windows: bool = False,
) -> list[dict[str, Any]]:
    """The receiver's MLOPS_RECEIVER_* variables (mlops_platform/pipelines/loop/receiver_settings.py).
    With `windows` (the loop's consumer writes the prediction log to `bucket_uri`), a drift
    alert retrains on those windows instead of the file at `data_path`."""
    base = bucket_uri.rstrip("/")
    plain = {
        "MLOPS_RECEIVER_HOST": "0.0.0.0",
        "MLOPS_RECEIVER_PORT": str(PORT),
        "MLOPS_RECEIVER_BACKEND": "kfp",
        "MLOPS_RECEIVER_KFP_HOST": kfp_host,
        "MLOPS_RECEIVER_EXPERIMENT": config.experiment,
        "MLOPS_RECEIVER_PIPELINE": "windows_drift" if windows else "drift",
        "MLOPS_RECEIVER_DATA_URI": base if windows else f"{base}/{config.data_path}",
        "MLOPS_RECEIVER_REFERENCE_URI": f"{base}/{config.reference_path}"
        if config.reference_path
        else "",
        "MLOPS_RECEIVER_TRACKING_URI": tracking_uri,
        "MLOPS_RECEIVER_PIPELINE_ARGUMENTS": json.dumps(
            {**drift_arguments(config, windows), **config.pipeline_arguments}, sort_keys=True
        ),
        "MLOPS_RECEIVER_RETRAIN_INTERVAL_SECONDS": f"{config.retrain_interval_hours * 3600:g}",
        "MLOPS_RECEIVER_MODELS": ",".join(config.models),
        "HOME": "/tmp",
    }
    if releases is not None:
        plain["MLOPS_RECEIVER_RELEASES"] = json.dumps(
            [
                {"model": r.model, "namespace": r.namespace, "name": r.name, "port": r.port}
                for r in releases.releases
            ],
            sort_keys=True,
        )
    plain["MLOPS_RECEIVER_TOKEN_FILE"] = TOKEN_FILE
    return [{"name": name, "value": value} for name, value in plain.items()]


def deployment(
    config: LoopConfig,
    bucket_uri: str,
    tracking_uri: str,
    kfp_host: str,
    releases: ReleaseWiring | None = None,
    windows: bool = False,
) -> dict[str, Any]:
    health = {"httpGet": {"path": "/healthz", "port": "http"}}
    container: dict[str, Any] = {
        "name": "receiver",
        "image": config.image,
        "command": ["python", "-m", "mlops_platform.pipelines.loop.receiver"],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": settings_env(config, bucket_uri, tracking_uri, kfp_host, releases, windows),
        "resources": container_resources(
            config.resources.cpu_request,
            config.resources.memory_request,
            config.resources.memory_limit,
        ),
        "securityContext": restricted_container_security(USER),
        "readinessProbe": probe(health, period=10, failures=3),
        "livenessProbe": probe(health, period=20, failures=3),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            secret_volume_mount(TOKEN_VOLUME),
        ],
    }
    pod_labels = labels()
    pod: dict[str, Any] = {
        "serviceAccountName": SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "securityContext": restricted_pod_security(USER),
        "containers": [container],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            secret_volume(TOKEN_VOLUME, TOKEN_SECRET, [TOKEN_KEY]),
        ],
    }
    if releases is not None:
        # Releases: the Kubernetes API (the release ConfigMaps), MLflow as a client that may
        # move aliases, and the model services, which take mTLS only (a sidecar).
        pod["automountServiceAccountToken"] = True
        # MLflow's client reads `$HOME/.mlflow/credentials` (HOME is /tmp).
        container["volumeMounts"].append(client_credentials_mount("/tmp"))
        pod["volumes"].append(client_credentials_volume(releases.mlflow_credentials_secret))
        pod_labels = {**pod_labels, "sidecar.istio.io/inject": "true"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(APP, config.namespace),
        "spec": {
            # One replica, replaced (not rolled): the per-process lock makes a decision and the
            # run it starts atomic; two receivers could both start a run for one alert.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": app_selector(APP, COMPONENT)},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
        },
    }


def service(config: LoopConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(SERVICE, config.namespace),
        "spec": {
            "type": "ClusterIP",
            "selector": app_selector(APP, COMPONENT),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def network_policy(
    config: LoopConfig, alertmanager_namespace: str, flagger_namespace: str | None = None
) -> dict[str, Any]:
    """Only Alertmanager's pods may reach the receiver (the token is the second fence), and
    Flagger's when the service drives releases (its webhooks carry no credentials)."""
    callers = [(alertmanager_namespace, ALERTMANAGER_POD_LABELS)]
    if flagger_namespace is not None:
        callers.append((flagger_namespace, FLAGGER_POD_LABELS))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(APP, config.namespace),
        "spec": {
            "podSelector": {"matchLabels": app_selector(APP, COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
                            "podSelector": {"matchLabels": dict(pod_labels)},
                        }
                        for namespace, pod_labels in callers
                    ],
                    "ports": [{"port": PORT, "protocol": "TCP"}],
                }
            ],
        },
    }
