"""Model serving, pure layer: config models and the Kubernetes objects one deployment renders.

One `ModelDeploymentConfig` describes a model served by the platform's model server
(`mlops_platform/model_server`) in up to two tracks: `stable` and an optional `canary`. Each
track is its own Deployment (a different model URI, the same image and settings); one Service
selects both, and Istio splits traffic between them by weight (DestinationRule subsets keyed on
the `track` label, VirtualService weights). Everything here is plain data in, plain dicts out:
every object validates against the pinned Kubernetes version or its upstream CRD, and is
table-tested without Pulumi.

The server reads its settings from `MLOPS_SERVE_*` variables; their names, defaults and checks
come from the server's own registry (`mlops_platform.model_server.settings.REGISTRY`), so a
renamed or re-typed setting breaks here, at `pulumi preview`, not in a crash-looping pod.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, PositiveInt, field_validator, model_validator

from mlops_platform.components import kube
from mlops_platform.components.base import StrictModel
from mlops_platform.components.kafka.model import KafkaClientWiring
from mlops_platform.components.kube import (
    DNS_1035_LABEL,
    DNS_LABEL,
    ContainerResourcesConfig,
    check_dns_label,
    check_limit_covers_request,
    check_pinned_image,
    check_quantity,
    container_resources,
)
from mlops_platform.components.mlflow.model import (
    client_credentials_mount,
    client_credentials_volume,
)
from mlops_platform.components.monitoring.tracing import TracingWiring
from mlops_platform.components.serving import delivery
from mlops_platform.components.serving.delivery import ProgressiveConfig
from mlops_platform.components.versions import MODEL_SERVER_EXPLAIN_IMAGE, MODEL_SERVER_IMAGE
from mlops_platform.model_server.settings import (
    FILE_SUFFIX,
    REGISTRY,
    EnvVar,
    KafkaSaslMechanism,
    PredictionSink,
    SettingsError,
)

Track = Literal["stable", "canary"]
TRACKS: tuple[Track, ...] = ("stable", "canary")

# The image built from mlops_platform/model_server/Dockerfile, published beside the platform
# image (mlops_platform/pipelines/components/image.py). Pin by digest in the stack once it is pushed.
DEFAULT_IMAGE = MODEL_SERVER_IMAGE
# The same server plus shap (per-request attributions): the default where `explain` is on, so the
# deployments without attributions do not carry shap, numba and llvmlite (~190 MB).
EXPLAIN_IMAGE = MODEL_SERVER_EXPLAIN_IMAGE
CONTAINER_NAME = "model-server"
APP_NAME = "model-server"
TRACK_LABEL = "track"
# The image's user and group (Dockerfile: `useradd --uid 10001`, `USER 10001:10001`).
RUN_AS_USER = 10001
TMP_MOUNT = "/tmp"  # TMPDIR and HOME of the image: downloaded model, file sink, caches
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
# Istio's pilot-agent serves the merged (Envoy + application) metrics here; the port is never
# intercepted, so Prometheus scrapes it in plain text even under STRICT mTLS.
ISTIO_MERGED_METRICS_PORT = 15020
ISTIO_MERGED_METRICS_PATH = "/stats/prometheus"
MANAGED_BY = kube.MANAGED_BY
# Leave room for the `-canary` / `-stable` suffix within the 63-character name limit.
_MAX_NAME = 63 - len("-canary")

_VARS: dict[str, EnvVar] = {var.field: var for var in REGISTRY}
# Settings this component owns (from first-class fields or fixed by the pod's design); every
# other registry setting may be passed through `server_settings`.
MANAGED_SETTINGS = frozenset(
    {
        "model_uri",
        "model_name",
        "host",
        "port",
        "drain_seconds",
        "prediction_sink",
        "kafka_bootstrap_servers",
        "kafka_topic",
        "example_endpoint",
        "feast_url",
    }
)

# With a platform Kafka client (`KafkaClientWiring`) these settings come from the wiring.
KAFKA_WIRING_SETTINGS = frozenset(
    {
        "kafka_security_protocol",
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_ca_file",
        "kafka_aws_region",
    }
)
# The model server's name of each auth method the Kafka component hands out.
SERVER_SASL_MECHANISMS: dict[str, KafkaSaslMechanism] = {
    "aws-iam": "OAUTHBEARER-AWS-MSK-IAM",
    "gcp-iam": "OAUTHBEARER-GCP-IAM",
    "scram-sha-512": "SCRAM-SHA-512",
}
KAFKA_CA_VOLUME = "kafka-ca"
KAFKA_CA_MOUNT = "/etc/kafka-ca"
KAFKA_CA_VOLUME_MOUNT = {"name": KAFKA_CA_VOLUME, "mountPath": KAFKA_CA_MOUNT, "readOnly": True}


# The SCRAM password (a key of the client's Secret), mounted read-only: the platform's Kafka
# clients read it through `<NAME>_FILE` (mlops_platform.model_server.settings).
KAFKA_PASSWORD_VOLUME = "kafka-password"
KAFKA_PASSWORD_VOLUME_MOUNT = kube.secret_volume_mount(KAFKA_PASSWORD_VOLUME)


def kafka_password_volume(password: Any) -> dict[str, Any]:
    """The pod volume of a Kafka client's password Secret key (a `KeyRef`)."""
    return kube.secret_volume(KAFKA_PASSWORD_VOLUME, password.name, [password.key])


def kafka_password_file(password: Any) -> str:
    return f"{kube.secret_dir(KAFKA_PASSWORD_VOLUME)}/{password.key}"


def kafka_ca_volume(ca: Any) -> dict[str, Any]:
    """The pod volume of a Kafka client's CA ConfigMap (a `KeyRef`), mounted read-only at
    KAFKA_CA_MOUNT by every Kafka client pod of the platform."""
    return {
        "name": KAFKA_CA_VOLUME,
        "configMap": {"name": ca.name, "items": [{"key": ca.key, "path": ca.key}]},
    }


_HOST = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$")
_DURATION = re.compile(r"^[1-9][0-9]*(s|m)$")
# `models:/<name>@<alias>`, `models:/<name>/<version or stage>`: the server's own shape.
_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(@[^/]+|/[^/]+)?/?$")
# URIs MLflow resolves through the tracking server.
_TRACKING_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


# --- config -----------------------------------------------------------------------------------


class TrackConfig(StrictModel):
    """One track: which model version it serves and how many pods serve it."""

    model_uri: str = Field(
        description="MLflow model: `models:/<name>@<alias>`, `models:/<name>/<version>`, "
        "`runs:/<run>/<path>` or an artifact URI (`s3://...`, `gs://...`)."
    )
    replicas: int = Field(
        default=2, ge=1, le=100, description="Pods of this track (ignored when autoscaled)."
    )

    @field_validator("model_uri")
    @classmethod
    def _model_uri(cls, value: str) -> str:
        if value.startswith("models:/"):
            if not _REGISTRY_URI.match(value):
                raise ValueError(
                    f"model_uri {value!r} must look like models:/<name>@<alias> or "
                    "models:/<name>/<version>"
                )
        elif not value.startswith("runs:/") and "://" not in value:
            raise ValueError(
                f"model_uri {value!r} must be a models:/, runs:/ or artifact URI (s3://, "
                "gs://, ...): a local path does not exist inside the pod"
            )
        return value


class CanaryConfig(TrackConfig):
    """The canary track and the share of requests it gets."""

    replicas: int = Field(default=1, ge=1, le=100, description="Pods of the canary track.")
    weight: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Percent of requests routed to the canary (0 deploys it without traffic; "
        "100 sends it everything, the last step before promotion).",
    )


class ResourcesConfig(ContainerResourcesConfig):
    """Requests and limits of the model-server container (both tracks)."""

    cpu_request: str = Field(default="500m", description="CPU request.")
    memory_request: str = Field(default="512Mi", description="Memory request.")
    memory_limit: str = Field(default="1Gi", description="Memory limit (at least the request).")
    cpu_limit: str | None = Field(
        default=None,
        description="CPU limit. Default none: CFS throttling adds tail latency, and the request "
        "already guarantees the share.",
    )
    tmp_size_limit: str = Field(
        default="2Gi",
        description="Size limit of the `/tmp` emptyDir that holds the downloaded model.",
    )

    @field_validator("cpu_limit", "tmp_size_limit")
    @classmethod
    def _optional_quantity(cls, value: str | None, info) -> str | None:
        return value if value is None else check_quantity(value, info.field_name)

    @model_validator(mode="after")
    def _cpu_limit_covers_request(self) -> ResourcesConfig:
        if self.cpu_limit is not None:
            check_limit_covers_request("cpu", self.cpu_request, self.cpu_limit)
        return self

    def values(self) -> dict[str, Any]:
        return container_resources(
            self.cpu_request, self.memory_request, self.memory_limit, self.cpu_limit
        )


class AutoscalingConfig(StrictModel):
    """A HorizontalPodAutoscaler for the stable track, on CPU utilisation of the request."""

    min_replicas: int = Field(default=2, ge=1, description="Fewest stable pods.")
    max_replicas: int = Field(default=10, ge=1, le=1000, description="Most stable pods.")
    target_cpu_utilization: int = Field(
        default=70, ge=10, le=100, description="Average CPU, percent of the request."
    )

    @model_validator(mode="after")
    def _ordered(self) -> AutoscalingConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})"
            )
        return self


ServerSettingValue = bool | int | float | str


class JwtAuthenticationConfig(StrictModel):
    """End-user authentication at the model's sidecar: Istio validates a JWT from `issuer`
    against the keys at `jwks_uri` (RequestAuthentication), and an AuthorizationPolicy refuses
    requests from the gateway and the client namespaces that carry no valid token."""

    issuer: str = Field(description="The token's `iss` claim, e.g. https://login.example.com/.")
    jwks_uri: str = Field(description="https:// URL of the issuer's JSON Web Key Set.")
    audiences: list[str] = Field(
        default_factory=list,
        description="Accepted `aud` values; empty accepts any audience of the issuer.",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        if not value.strip() or any(c.isspace() for c in value):
            raise ValueError(f"issuer {value!r} must be a non-empty value without spaces")
        return value

    @field_validator("jwks_uri")
    @classmethod
    def _jwks_uri(cls, value: str) -> str:
        if not re.match(r"^https://[^/\s]+(/\S*)?$", value):
            raise ValueError(f"jwks_uri {value!r} must be an https:// URL")
        return value


class ModelDeploymentConfig(StrictModel):
    """One served model (the map key under `serving` names it and its Kubernetes objects)."""

    namespace: str = Field(default="serving", description="Namespace of every object.")
    model_name: str | None = Field(
        default=None,
        description="Name the model is served under (`/v2/models/<name>`), the same on both "
        "tracks. Default: the registered name in `stable.model_uri`.",
    )
    stable: TrackConfig = Field(description="The track that gets the rest of the traffic.")
    canary: CanaryConfig | None = Field(
        default=None, description="Optional second track; `null` routes 100 % to stable."
    )
    progressive: ProgressiveConfig | None = Field(
        default=None,
        description="Progressive delivery by Flagger: `stable.model_uri` is the first release, "
        "every later release (a new model version in the `<name>-model` ConfigMap) is analysed "
        "on live traffic and promoted or rolled back automatically. Excludes `canary` (the "
        "split is Flagger's).",
    )
    image: str = Field(
        default=DEFAULT_IMAGE,
        description="Model-server image, pinned by tag (not `latest`) or digest. Unset: the "
        "project's model server, or its `-explain` variant (with shap) where "
        "`server_settings.explain` is on.",
    )
    port: int = Field(
        default=_VARS["port"].default,
        ge=1024,
        le=65535,
        description="Container and Service port (unprivileged: the server is not root).",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking server; required for models:/, runs:/ and "
        "mlflow-artifacts:/ URIs.",
    )
    prediction_sink: PredictionSink = Field(
        default="none",
        description="Prediction log: `none`, `kafka`, or `file` (a JSON-lines file in the "
        "pod's /tmp emptyDir, lost with the pod).",
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="`host:port,...`; required when prediction_sink is kafka."
    )
    kafka_topic: str = Field(
        default=_VARS["kafka_topic"].default, description="Topic of the prediction log."
    )
    online_features: bool = Field(
        default=False,
        description="A v2 request that carries only the entity key gets its features from the "
        "platform's Feast feature server (`/get-online-features`). What is fetched and the key's "
        "name are the server settings `feast_features` (default the `churn_model` feature "
        "service) and `feast_entity_key` (default `customer_id`). The namespace must be one of "
        "`feast.client_namespaces`.",
    )
    feature_server_url: str | None = Field(
        default=None,
        description="Feast feature server for `online_features`. Default: the platform's "
        "(`http://feast-feature-server.<feast namespace>.svc.cluster.local:6566`).",
    )
    server_settings: dict[str, ServerSettingValue] = Field(
        default_factory=dict,
        description="Other model-server settings by registry field name (`max_batch_rows`, "
        "`log_level`, ...); each value is checked by the server's own parser.",
    )
    drain_seconds: float = Field(
        default=_VARS["drain_seconds"].default,
        ge=0,
        le=600,
        description="On SIGTERM, time the server has to finish in-flight requests and flush "
        "the prediction log; the pod's grace period is derived from it.",
    )
    pre_stop_seconds: int = Field(
        default=5,
        ge=0,
        le=60,
        description="Sleep before SIGTERM, so the pod leaves the Service endpoints (and the "
        "mesh) before the listener closes.",
    )
    startup_timeout_seconds: int = Field(
        default=300,
        ge=10,
        le=3600,
        description="How long the server may take to start listening before the pod is "
        "restarted. Loading the model is not bounded by a probe: until its model is loaded (on "
        "a fresh platform, until the alias exists) a pod is live but not ready, gets no "
        "traffic, and the ModelServerNotReady alert reports it.",
    )
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig,
        description="Requests and limits of the model-server container, on both tracks.",
    )
    autoscaling: AutoscalingConfig | None = Field(
        default=None,
        description="HorizontalPodAutoscaler for the stable track (replaces stable.replicas).",
    )
    service_account: str | None = Field(
        default=None,
        description="Existing service account of the pods (e.g. a workload identity's, to read "
        "model artifacts from the bucket). Default: the namespace's `default`. Its API token "
        "is never mounted: the server does not call the Kubernetes API.",
    )
    credentials_secret: str | None = Field(
        default=None,
        description="Existing Secret with the model's MLflow client credentials: its key "
        "`credentials` (MLflow's credentials file) is mounted read-only at "
        "`$HOME/.mlflow/credentials`. Default: the namespace's platform MLflow client Secret.",
    )
    istio_sidecar: bool = Field(
        default=True,
        description="Inject the Istio sidecar (mTLS, telemetry, weighted routing from the pod "
        "side); metrics are then scraped from Istio's merged endpoint.",
    )
    gateway: str | None = Field(
        default=None,
        description="Istio Gateway (`<namespace>/<name>`) that also exposes the model on "
        "`hosts`. Default: in-mesh only.",
    )
    hosts: list[str] = Field(
        default_factory=list, description="External host names served through `gateway`."
    )
    request_timeout_seconds: PositiveInt = Field(
        default=30, le=3600, description="Istio route timeout of one request."
    )
    scrape_interval: str = Field(default="30s", description="Prometheus scrape interval.")
    monitor_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Extra labels of the PodMonitor, to match the Prometheus' "
        "podMonitorSelector (e.g. `release: kube-prometheus-stack`).",
    )
    client_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose workloads call the model. The platform's own callers "
        "are derived (the `gateway`'s namespace, Flagger's load tester and the loop with "
        "`progressive`, Prometheus on the metrics port); every other caller is refused by the "
        "NetworkPolicy and, with the sidecar, the Istio AuthorizationPolicy.",
    )
    authentication: JwtAuthenticationConfig | None = Field(
        default=None,
        description="Require a valid JWT on requests from the gateway and `client_namespaces` "
        "(Istio RequestAuthentication + AuthorizationPolicy; needs `istio_sidecar`). Default: "
        "callers are authenticated by namespace (mTLS identity) only.",
    )

    @field_validator("client_namespaces")
    @classmethod
    def _client_namespaces(cls, values: list[str]) -> list[str]:
        for value in values:
            check_dns_label(value, "client_namespaces")
        if len(set(values)) != len(values):
            raise ValueError("client_namespaces: each namespace may appear once")
        return values

    @field_validator("namespace", "service_account", "credentials_secret")
    @classmethod
    def _dns_label(cls, value: str | None, info) -> str | None:
        if value is not None:
            check_dns_label(value, info.field_name)
        return value

    @field_validator("model_name")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", value):
            raise ValueError(
                f"model_name {value!r} must be letters, digits, '.', '_' or '-' (it is a URL "
                "path segment)"
            )
        return value

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        return check_pinned_image(value)

    @field_validator("server_settings")
    @classmethod
    def _server_settings(cls, values: dict[str, ServerSettingValue]) -> dict[str, Any]:
        for key, value in values.items():
            if key in MANAGED_SETTINGS:
                raise ValueError(f"{key} is set by the component (use its own field)")
            if key in _VARS and _VARS[key].secret:
                raise ValueError(
                    f"{key} is a secret: it cannot be a plain value in the stack; mount it "
                    "from a Secret"
                )
            if key not in _VARS:
                known = ", ".join(
                    sorted(
                        k
                        for k, var in _VARS.items()
                        if k not in MANAGED_SETTINGS and not var.secret
                    )
                )
                raise ValueError(f"unknown model-server setting {key!r}; known: {known}")
            try:
                _VARS[key].parse(_env_text(value))
            except SettingsError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return values

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        if value is not None:
            namespace, slash, gateway = value.partition("/")
            if not slash or not DNS_LABEL.match(namespace) or not DNS_LABEL.match(gateway):
                raise ValueError(f"gateway {value!r} must be <namespace>/<name>")
        return value

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        for host in values:
            if len(host) > 253 or not _HOST.match(host):
                raise ValueError(f"hosts: {host!r} is not a DNS name (e.g. churn.example.com)")
        if len(set(values)) != len(values):
            raise ValueError("hosts: each host may appear once")
        return values

    @field_validator("scrape_interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"scrape_interval {value!r} must be seconds or minutes, e.g. 30s")
        return value

    @property
    def explain(self) -> bool:
        """Whether the server answers with attributions (`server_settings.explain`)."""
        value = self.server_settings.get("explain", False)
        return bool(_VARS["explain"].parse(_env_text(value)))

    @property
    def deployed_image(self) -> str:
        """The image the pods run: `image` when the stack sets it, else the project's model
        server, in its `-explain` variant when attributions are on (only it carries shap)."""
        if "image" in self.model_fields_set:
            return self.image
        return EXPLAIN_IMAGE if self.explain else DEFAULT_IMAGE

    @model_validator(mode="after")
    def _consistent(self) -> ModelDeploymentConfig:
        own = _repository(DEFAULT_IMAGE)
        if self.explain and "image" in self.model_fields_set and _repository(self.image) == own:
            raise ValueError(
                f"image {self.image!r} has no shap, which server_settings.explain needs: use "
                f"{_repository(EXPLAIN_IMAGE)} (the default when `image` is unset)"
            )
        for track, uri in track_uris(self).items():
            if uri.startswith(_TRACKING_SCHEMES) and not self.mlflow_tracking_uri:
                raise ValueError(
                    f"mlflow_tracking_uri is required: {track}.model_uri {uri!r} is resolved "
                    "through the MLflow tracking server"
                )
        if bool(self.gateway) != bool(self.hosts):
            raise ValueError("gateway and hosts go together: set both, or neither")
        if self.authentication is not None and not self.istio_sidecar:
            raise ValueError("authentication needs istio_sidecar: the sidecar validates the tokens")
        if self.progressive is not None:
            if self.canary is not None:
                raise ValueError(
                    "canary and progressive exclude each other: with progressive delivery "
                    "Flagger runs the canary (a new release in the <name>-model ConfigMap) and "
                    "sets its weight"
                )
            if not self.istio_sidecar:
                raise ValueError(
                    "progressive delivery needs istio_sidecar: Flagger shifts traffic with "
                    "Istio routes"
                )
        served_model_name(self)  # raises when the tracks would serve under different names
        return self


def _check_keys(deployments: dict[str, ModelDeploymentConfig]) -> dict[str, ModelDeploymentConfig]:
    for key in deployments:
        check_deployment_name(key)
    return deployments


ServingDeployments = Annotated[dict[str, ModelDeploymentConfig], AfterValidator(_check_keys)]
"""The root config's `serving` type: deployments keyed by name (the key names every object)."""


def check_deployment_name(name: str) -> str:
    """The name becomes the Service (DNS-1035) and `<name>-canary`: at most 56 characters."""
    if len(name) > _MAX_NAME or not DNS_1035_LABEL.match(name):
        raise ValueError(
            f"serving.{name}: a deployment name is 1-{_MAX_NAME} lowercase letters, digits or "
            "'-', starting with a letter and ending with a letter or digit"
        )
    return name


def check_kafka(name: str, config: ModelDeploymentConfig, kafka: KafkaClientWiring | None) -> None:
    """The prediction log's brokers come from exactly one place: the stack's
    `kafka_bootstrap_servers` (no security settings beyond `server_settings`) or a platform
    Kafka client (`ModelDeploymentArgs.kafka`), whose wiring must fit this deployment."""
    where = f"serving.{name}"
    if config.prediction_sink != "kafka":
        if kafka is not None:
            raise ValueError(
                f"{where}.prediction_sink: a Kafka client is wired (ModelDeploymentArgs.kafka) "
                f"but prediction_sink is {config.prediction_sink!r}"
            )
        return
    if kafka is None:
        if not config.kafka_bootstrap_servers:
            raise ValueError(
                f"{where}.kafka_bootstrap_servers: required when prediction_sink is kafka and "
                "no platform Kafka client is wired (ModelDeploymentArgs.kafka)"
            )
        return
    if config.kafka_bootstrap_servers:
        raise ValueError(
            f"{where}.kafka_bootstrap_servers: set, but the platform Kafka client wired in "
            "ModelDeploymentArgs.kafka brings the brokers; drop one"
        )
    if kafka.namespace != config.namespace:
        raise ValueError(
            f"{where}.namespace: the Kafka client's credentials are in namespace "
            f"{kafka.namespace!r}, the pods run in {config.namespace!r}"
        )
    if config.kafka_topic not in kafka.write_topics:
        raise ValueError(
            f"{where}.kafka_topic: {config.kafka_topic!r} is not a write topic of the Kafka "
            f"client ({', '.join(kafka.write_topics) or 'none'})"
        )
    overlap = sorted(KAFKA_WIRING_SETTINGS & set(config.server_settings))
    if overlap:
        raise ValueError(
            f"{where}.server_settings: {', '.join(overlap)} come from the platform Kafka client"
        )


def track_uris(config: ModelDeploymentConfig) -> dict[str, str]:
    uris = {"stable": config.stable.model_uri}
    if config.canary is not None:
        uris["canary"] = config.canary.model_uri
    return uris


def served_model_name(config: ModelDeploymentConfig) -> str:
    """The one name both tracks serve under, so a client's `/v2/models/<name>` hits either."""
    if config.model_name is not None:
        return config.model_name
    names = {}
    for track, uri in track_uris(config).items():
        match = _REGISTRY_URI.match(uri)
        if match is None:
            raise ValueError(
                f"model_name is required: {track}.model_uri {uri!r} is not a registry URI to "
                "take the name from"
            )
        names[track] = match["name"]
    if len(set(names.values())) > 1:
        raise ValueError(
            f"model_name is required: stable serves {names['stable']!r} and canary "
            f"{names['canary']!r}; clients need one name for both"
        )
    return names["stable"]


def canary_weight(config: ModelDeploymentConfig) -> int:
    return config.canary.weight if config.canary is not None else 0


def route_weights(config: ModelDeploymentConfig) -> dict[Track, int]:
    """Percent of requests per track; always both, so adding a canary changes only numbers."""
    weight = canary_weight(config)
    return {"stable": 100 - weight, "canary": weight}


def termination_grace_seconds(config: ModelDeploymentConfig) -> int:
    """preStop sleep + the server's drain budget + 5 s for the process to exit."""
    return config.pre_stop_seconds + math.ceil(config.drain_seconds) + 5


def service_host(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.svc.cluster.local"


def service_url(name: str, namespace: str, port: int) -> str:
    return f"http://{service_host(name, namespace)}:{port}"


# --- labels -----------------------------------------------------------------------------------


def selector_labels(name: str) -> dict[str, str]:
    """Both tracks' pods: what the Service, the PodMonitor and the DestinationRule host see."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": name}


def track_selector(name: str, track: Track) -> dict[str, str]:
    """One track's pods (a Deployment's immutable selector, a DestinationRule subset)."""
    return {**selector_labels(name), TRACK_LABEL: track}


def object_labels(name: str) -> dict[str, str]:
    return {
        **selector_labels(name),
        "app.kubernetes.io/component": "serving",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def pod_labels(name: str, track: Track, config: ModelDeploymentConfig) -> dict[str, str]:
    return {
        **object_labels(name),
        TRACK_LABEL: track,
        # Istio's telemetry reads `app` and `version`: request metrics per track for free.
        "app": name,
        "version": track,
        "sidecar.istio.io/inject": "true" if config.istio_sidecar else "false",
    }


def _metadata(name: str, config: ModelDeploymentConfig, object_name: str) -> dict[str, Any]:
    return {"name": object_name, "namespace": config.namespace, "labels": object_labels(name)}


def track_object_name(name: str, track: Track) -> str:
    return f"{name}-{track}"


# --- pod --------------------------------------------------------------------------------------


def _repository(image: str) -> str:
    """`registry/path` of an image reference, without tag or digest."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _env_text(value: ServerSettingValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _env(name: str, value: ServerSettingValue) -> dict[str, str]:
    return {"name": name, "value": _env_text(value)}


def kafka_security_env(kafka: KafkaClientWiring) -> list[dict[str, Any]]:
    """TLS + SASL of the prediction log from a platform Kafka client; the password and the CA
    as mounted files (`kafka_volumes`)."""
    env: list[dict[str, Any]] = [
        _env(_VARS["kafka_security_protocol"].name, kafka.security_protocol),
        _env(_VARS["kafka_sasl_mechanism"].name, SERVER_SASL_MECHANISMS[kafka.auth_method]),
    ]
    if kafka.username is not None:
        env.append(_env(_VARS["kafka_sasl_username"].name, kafka.username))
    if kafka.password_secret is not None:
        env.append(
            _env(
                _VARS["kafka_sasl_password"].name + FILE_SUFFIX,
                kafka_password_file(kafka.password_secret),
            )
        )
    if kafka.ca_config_map is not None:
        env.append(_env(_VARS["kafka_ca_file"].name, kafka_ca_file(kafka)))
    if kafka.aws_region is not None:
        env.append(_env(_VARS["kafka_aws_region"].name, kafka.aws_region))
    return env


def kafka_ca_file(kafka: KafkaClientWiring) -> str:
    assert kafka.ca_config_map is not None
    return f"{KAFKA_CA_MOUNT}/{kafka.ca_config_map.key}"


def server_env(
    config: ModelDeploymentConfig, track: Track, kafka: KafkaClientWiring | None = None
) -> list[dict[str, Any]]:
    """The container's environment: every `MLOPS_SERVE_*` name comes from the registry."""
    uri = config.stable.model_uri if track == "stable" else _canary(config).model_uri
    env = [
        _env(_VARS["model_uri"].name, uri),
        _env(_VARS["model_name"].name, served_model_name(config)),
        _env(_VARS["host"].name, "0.0.0.0"),  # every pod interface: Service and probes reach it
        _env(_VARS["port"].name, config.port),
        _env(_VARS["drain_seconds"].name, config.drain_seconds),
        _env(_VARS["prediction_sink"].name, config.prediction_sink),
    ]
    if config.prediction_sink == "kafka":
        bootstrap = kafka.bootstrap_servers if kafka else config.kafka_bootstrap_servers
        env += [
            {"name": _VARS["kafka_bootstrap_servers"].name, "value": bootstrap or ""},
            _env(_VARS["kafka_topic"].name, config.kafka_topic),
        ]
        if kafka is not None:
            env += kafka_security_env(kafka)
    if config.online_features:
        if not config.feature_server_url:
            raise ValueError(
                "online_features needs feature_server_url (the platform fills it in from feast)"
            )
        env.append(_env(_VARS["feast_url"].name, config.feature_server_url))
    env += [_env(_VARS[key].name, value) for key, value in sorted(config.server_settings.items())]
    if config.mlflow_tracking_uri:
        env.append(_env("MLFLOW_TRACKING_URI", config.mlflow_tracking_uri))
    return env


def tracing_env(name: str, config: ModelDeploymentConfig, tracing: TracingWiring) -> list[Any]:
    """The OpenTelemetry SDK's standard variables that turn the server's spans on
    (mlops_platform/model_server/tracing.py): OTLP/HTTP to the platform's backend, following
    the sidecar's sampling decision and sampling at the platform's ratio what comes without one.
    The service name is Istio's own for the workload (`<app>.<namespace>`), so the sidecar's
    spans and the server's sit under one service."""
    return [
        _env("OTEL_EXPORTER_OTLP_ENDPOINT", tracing.otlp_http_endpoint),
        _env("OTEL_SERVICE_NAME", f"{name}.{config.namespace}"),
        _env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        _env("OTEL_TRACES_SAMPLER_ARG", f"{tracing.sampling_ratio:g}"),
    ]


def _with_tracing(
    name: str, config: ModelDeploymentConfig, obj: dict[str, Any], tracing: TracingWiring | None
) -> dict[str, Any]:
    if tracing is not None:
        for spec in obj["spec"]["template"]["spec"]["containers"]:
            if spec["name"] == CONTAINER_NAME:
                spec["env"] = [*spec["env"], *tracing_env(name, config, tracing)]
    return obj


def _canary(config: ModelDeploymentConfig) -> CanaryConfig:
    if config.canary is None:
        raise ValueError("canary: this deployment has no canary track")
    return config.canary


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def container(
    config: ModelDeploymentConfig, track: Track, kafka: KafkaClientWiring | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": config.deployed_image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": config.port, "protocol": "TCP"}],
        "env": server_env(config, track, kafka),
        "resources": config.resources.values(),
        # The server binds at once, stays live while it waits for and loads its model, and is
        # ready only after warm-up: a pod whose model is not registered yet is not restarted.
        "startupProbe": _probe(LIVE_PATH, 5, math.ceil(config.startup_timeout_seconds / 5)),
        "livenessProbe": _probe(LIVE_PATH, 10, 3),
        "readinessProbe": _probe(READY_PATH, 5, 2),
        "lifecycle": {"preStop": {"sleep": {"seconds": config.pre_stop_seconds}}},
        "securityContext": kube.restricted_container_security(RUN_AS_USER),
        "volumeMounts": [{"name": "tmp", "mountPath": TMP_MOUNT}],
    }
    if _kafka_ca(config, kafka) is not None:
        spec["volumeMounts"].append(dict(KAFKA_CA_VOLUME_MOUNT))
    if _kafka_password(config, kafka) is not None:
        spec["volumeMounts"].append(dict(KAFKA_PASSWORD_VOLUME_MOUNT))
    if config.credentials_secret is not None:
        # MLflow's client reads `$HOME/.mlflow/credentials`; HOME is the writable /tmp.
        spec["volumeMounts"].append(client_credentials_mount(TMP_MOUNT))
        spec["env"].append(_env("HOME", TMP_MOUNT))
    if config.pre_stop_seconds == 0:
        del spec["lifecycle"]  # no sleep at all, rather than a zero-second sleep action
    return spec


def pod_annotations(config: ModelDeploymentConfig) -> dict[str, str]:
    annotations = {"kubectl.kubernetes.io/default-container": CONTAINER_NAME}
    if config.istio_sidecar:
        annotations.update(
            {
                # The model download goes through the proxy: start it first.
                "proxy.istio.io/config": '{"holdApplicationUntilProxyStarts": true}',
                # Istio merges the application's metrics (found through these) into its own
                # endpoint on port 15020, which the PodMonitor scrapes.
                "prometheus.io/scrape": "true",
                "prometheus.io/port": str(config.port),
                "prometheus.io/path": METRICS_PATH,
            }
        )
    return annotations


def _kafka_ca(config: ModelDeploymentConfig, kafka: KafkaClientWiring | None):
    if config.prediction_sink != "kafka" or kafka is None:
        return None
    return kafka.ca_config_map


def _kafka_password(config: ModelDeploymentConfig, kafka: KafkaClientWiring | None):
    if config.prediction_sink != "kafka" or kafka is None:
        return None
    return kafka.password_secret


def pod_spec(
    name: str, config: ModelDeploymentConfig, track: Track, kafka: KafkaClientWiring | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": termination_grace_seconds(config),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            # Secret volumes are root-owned 0440: the server reads them through this group.
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(config, track, kafka)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": config.resources.tmp_size_limit}}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                # Prefer spreading; never leave a pod pending for it (single-zone and
                # single-node clusters must still run).
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": track_selector(name, track)},
                # Spread each rollout's pods on their own, not together with the old ones.
                "matchLabelKeys": ["pod-template-hash"],
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
    }
    ca = _kafka_ca(config, kafka)
    if ca is not None:
        spec["volumes"].append(kafka_ca_volume(ca))
    password = _kafka_password(config, kafka)
    if password is not None:
        spec["volumes"].append(kafka_password_volume(password))
    if config.credentials_secret is not None:
        spec["volumes"].append(client_credentials_volume(config.credentials_secret))
    if config.service_account is not None:
        spec["serviceAccountName"] = config.service_account
    return spec


# --- objects ----------------------------------------------------------------------------------


def deployment(
    name: str, config: ModelDeploymentConfig, track: Track, kafka: KafkaClientWiring | None = None
) -> dict[str, Any]:
    replicas = config.stable.replicas if track == "stable" else _canary(config).replicas
    spec: dict[str, Any] = {
        "selector": {"matchLabels": track_selector(name, track)},
        "strategy": {
            "type": "RollingUpdate",
            # Never below the desired count: a new pod must be ready before an old one goes.
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "revisionHistoryLimit": 5,
        # Rollouts wait for model download and warm-up; give them more than the startup budget.
        "progressDeadlineSeconds": max(600, config.startup_timeout_seconds + 120),
        "template": {
            "metadata": {
                "labels": pod_labels(name, track, config),
                "annotations": pod_annotations(config),
            },
            "spec": pod_spec(name, config, track, kafka),
        },
    }
    autoscaled = track == "stable" and config.autoscaling is not None
    if not autoscaled:  # with an HPA, the HPA owns the replica count
        spec = {"replicas": replicas, **spec}
    metadata = _metadata(name, config, track_object_name(name, track))
    if track == "stable":
        # `pulumi up` must complete on a fresh platform, before any model is registered: the
        # stable pods wait for their alias (live, not ready). A hand-set canary is still awaited,
        # so its weight moves only once its pods serve.
        metadata["annotations"] = dict(SKIP_AWAIT)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def service(name: str, config: ModelDeploymentConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, config, name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [
                {
                    "name": "http",
                    "port": config.port,
                    "targetPort": "http",
                    "protocol": "TCP",
                    "appProtocol": "http",  # Istio: HTTP routing, not opaque TCP
                }
            ],
        },
    }


def pod_disruption_budget(name: str, config: ModelDeploymentConfig, track: Track) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name, config, track_object_name(name, track)),
        "spec": {
            # One pod of a track at a time; with a single replica a drain still proceeds.
            "maxUnavailable": 1,
            "selector": {"matchLabels": track_selector(name, track)},
            # A pod that is not ready serves nothing: evicting it must not block node drains.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def traffic_policy(config: ModelDeploymentConfig) -> dict[str, Any]:
    policy: dict[str, Any] = {
        # Take a pod that keeps failing out of rotation for a while.
        "outlierDetection": {
            "consecutive5xxErrors": 5,
            "interval": "10s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 50,
        },
    }
    if config.istio_sidecar:
        policy["tls"] = {"mode": "ISTIO_MUTUAL"}
    return policy


# Only failures where the request never reached the server are retried.
RETRIES = {"attempts": 2, "retryOn": "connect-failure,refused-stream"}


def destination_rule(name: str, config: ModelDeploymentConfig) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": _metadata(name, config, name),
        "spec": {
            "host": service_host(name, config.namespace),
            "trafficPolicy": traffic_policy(config),
            "subsets": [{"name": track, "labels": {TRACK_LABEL: track}} for track in TRACKS],
        },
    }


def virtual_service(name: str, config: ModelDeploymentConfig) -> dict[str, Any]:
    host = service_host(name, config.namespace)
    weights = route_weights(config)
    spec: dict[str, Any] = {
        "hosts": [host, *config.hosts],
        "http": [
            {
                "name": "tracks",
                "route": [
                    {
                        "destination": {
                            "host": host,
                            "subset": track,
                            "port": {"number": config.port},
                        },
                        "weight": weights[track],
                    }
                    for track in TRACKS
                ],
                "timeout": f"{config.request_timeout_seconds}s",
                "retries": RETRIES,
            }
        ],
    }
    if config.gateway is not None:
        spec["gateways"] = ["mesh", config.gateway]
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _metadata(name, config, name),
        "spec": spec,
    }


def pod_monitor(name: str, config: ModelDeploymentConfig) -> dict[str, Any]:
    if config.istio_sidecar:
        endpoint: dict[str, Any] = {
            "portNumber": ISTIO_MERGED_METRICS_PORT,
            "path": ISTIO_MERGED_METRICS_PATH,
        }
    else:
        endpoint = {"port": "http", "path": METRICS_PATH}
    metadata = _metadata(name, config, name)
    metadata["labels"] = {**config.monitor_labels, **metadata["labels"]}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector_labels(name)},
            # job="model-server" for every deployment (not `<namespace>/<name>`): the platform's
            # alert rules (mlops_platform/components/monitoring) select the model servers by this job.
            "jobLabel": "app.kubernetes.io/name",
            # Every series carries the track, so canary and stable compare side by side.
            "podTargetLabels": [TRACK_LABEL],
            "podMetricsEndpoints": [{**endpoint, "interval": config.scrape_interval}],
        },
    }


# --- who may call the model -------------------------------------------------------------------


@dataclass(frozen=True)
class Callers:
    """The namespaces whose workloads may reach one deployment's pods."""

    # Platform workloads in the mesh (Flagger's load tester, the loop's release gate): their
    # mTLS identity is their authentication; they send no end-user token.
    platform: tuple[str, ...]
    # The Istio ingress gateway's and the configured clients': end-user traffic, which must carry
    # a valid JWT when `authentication` is on.
    edge: tuple[str, ...]
    # Prometheus, scraping the metrics port.
    prometheus: str | None


def service_namespace(url: str) -> str:
    """The namespace of an in-cluster service URL (`http://<service>.<namespace>[.svc...]`).

    The Flagger wiring carries URLs (what Flagger calls); the callers' namespaces are read from
    them rather than passed twice."""
    parts = (urlsplit(url).hostname or "").split(".")
    if len(parts) < 2 or not kube.is_dns_label(parts[1]):
        raise ValueError(f"{url!r} is not an in-cluster service URL (<service>.<namespace>...)")
    return parts[1]


def callers(
    config: ModelDeploymentConfig,
    flagger: delivery.FlaggerWiring | None = None,
    prometheus_namespace: str | None = None,
) -> Callers:
    """Who calls the model, from the wiring: the gateway's namespace and `client_namespaces`
    (end users); with progressive delivery, Flagger's load tester (golden-set traffic during the
    analysis) and the loop (its golden-set gate calls both sides); Prometheus on the metrics
    port."""
    platform: set[str] = set()
    if config.progressive is not None and flagger is not None:
        if config.progressive.load_test.enabled:
            platform.add(service_namespace(flagger.load_tester_url))
        if flagger.loop_url is not None:
            platform.add(service_namespace(flagger.loop_url))
    edge = set(config.client_namespaces)
    if config.gateway is not None:
        edge.add(config.gateway.partition("/")[0])
    return Callers(tuple(sorted(platform)), tuple(sorted(edge)), prometheus_namespace)


def metrics_port(config: ModelDeploymentConfig) -> int:
    return ISTIO_MERGED_METRICS_PORT if config.istio_sidecar else config.port


def _namespaces_peer(namespaces: list[str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}
            ]
        }
    }


def network_policies(
    name: str, config: ModelDeploymentConfig, who: Callers
) -> dict[str, dict[str, Any]]:
    """NetworkPolicies over both tracks' pods (and Flagger's primary and canary, which keep the
    selector labels): the callers reach the serving port, Prometheus the metrics port; being
    selected, the pods refuse every other ingress. Kubelet probes come from the node, which
    NetworkPolicy implementations allow."""
    pods = selector_labels(name)
    found: dict[str, dict[str, Any]] = {}
    namespaces = sorted({*who.platform, *who.edge})
    if namespaces:
        found["callers"] = kube.ingress_network_policy(
            _metadata(name, config, f"{name}-callers"),
            pods,
            [_namespaces_peer(namespaces)],
            config.port,
        )
    if who.prometheus is not None:
        found["metrics"] = kube.ingress_network_policy(
            _metadata(name, config, f"{name}-metrics"),
            pods,
            [_namespaces_peer([who.prometheus])],
            metrics_port(config),
        )
    if not found:
        # Nobody is wired to call the model: refuse all ingress (a rule with no `from` would
        # allow everyone instead).
        found["deny"] = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _metadata(name, config, f"{name}-deny-ingress"),
            "spec": {"podSelector": {"matchLabels": pods}, "policyTypes": ["Ingress"]},
        }
    return found


def request_principal(config: ModelDeploymentConfig) -> str | None:
    """The requestPrincipals value of any token from the configured issuer."""
    return f"{config.authentication.issuer}/*" if config.authentication is not None else None


def authorization_policy(name: str, config: ModelDeploymentConfig, who: Callers) -> dict[str, Any]:
    """The sidecar's ALLOW list, by the callers' mTLS identities (their namespaces): platform
    callers, then end-user callers (with a valid JWT when `authentication` is on). Anything
    else is refused with 403; with no caller at all the policy matches nothing and every request
    is refused. Prometheus scrapes Istio's merged-metrics port, which the proxy does not
    intercept."""
    ports = [str(config.port)]
    rules: list[dict[str, Any]] = []
    if who.platform:
        rules.append(
            {
                "from": [{"source": {"namespaces": list(who.platform)}}],
                "to": [{"operation": {"ports": ports}}],
            }
        )
    if who.edge:
        source: dict[str, Any] = {"namespaces": list(who.edge)}
        principal = request_principal(config)
        if principal is not None:
            source["requestPrincipals"] = [principal]
        rules.append({"from": [{"source": source}], "to": [{"operation": {"ports": ports}}]})
    spec: dict[str, Any] = {"selector": {"matchLabels": selector_labels(name)}, "action": "ALLOW"}
    if rules:
        spec["rules"] = rules
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": _metadata(name, config, name),
        "spec": spec,
    }


def request_authentication(name: str, config: ModelDeploymentConfig) -> dict[str, Any] | None:
    """Istio validates the bearer token of each request against the issuer's keys; a request
    with an invalid token is refused, one without a token is left to the AuthorizationPolicy."""
    auth = config.authentication
    if auth is None:
        return None
    rule: dict[str, Any] = {
        "issuer": auth.issuer,
        "jwksUri": auth.jwks_uri,
        # The model server does not read the token: do not pass it on.
        "forwardOriginalToken": False,
    }
    if auth.audiences:
        rule["audiences"] = list(auth.audiences)
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "RequestAuthentication",
        "metadata": _metadata(name, config, name),
        "spec": {"selector": {"matchLabels": selector_labels(name)}, "jwtRules": [rule]},
    }


def horizontal_pod_autoscaler(name: str, config: ModelDeploymentConfig) -> dict[str, Any] | None:
    autoscaling = config.autoscaling
    if autoscaling is None:
        return None
    target = track_object_name(name, "stable")
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(name, config, target),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": autoscaling.target_cpu_utilization,
                        },
                    },
                }
            ],
        },
    }


# --- progressive delivery (Flagger) -------------------------------------------------------------

# Pulumi does not wait for the analysed Deployment: Flagger scales it to zero once the primary
# runs, and on a fresh platform its model may not be registered yet (the server waits for it).
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


def flagger_selector(name: str) -> dict[str, str]:
    """Flagger's selector label: the primary's pods get `app: <name>-primary`."""
    return {"app": name}


def progressive_deployment(
    name: str, config: ModelDeploymentConfig, kafka: KafkaClientWiring | None = None
) -> dict[str, Any]:
    """Flagger's target: one Deployment `<name>` whose model comes from the release ConfigMap.
    No `replicas`: its HorizontalPodAutoscaler (and Flagger's copy for the primary) owns them."""
    obj = deployment(name, config, "stable", kafka)
    spec = obj["spec"]
    spec.pop("replicas", None)
    spec["selector"] = {"matchLabels": flagger_selector(name)}
    template = spec["template"]
    labels = template["metadata"]["labels"]
    del labels[TRACK_LABEL], labels["version"]
    pod = template["spec"]
    for constraint in pod["topologySpreadConstraints"]:
        constraint["labelSelector"] = {"matchLabels": flagger_selector(name)}
    env = pod["containers"][0]["env"]
    if config.progressive is not None and config.progressive.load_test.enabled:
        # Flagger's load tester fetches the golden-set request from each side.
        env.append(_env(_VARS["example_endpoint"].name, True))
    model_uri = _VARS["model_uri"].name
    env[[var["name"] for var in env].index(model_uri)] = {
        "name": model_uri,
        "valueFrom": {
            "configMapKeyRef": {"name": delivery.release_config_map_name(name), "key": "model_uri"}
        },
    }
    obj["metadata"] = {**_metadata(name, config, name), "annotations": dict(SKIP_AWAIT)}
    return obj


def release_config_map(name: str, config: ModelDeploymentConfig) -> dict[str, Any]:
    """The release: the model version the Deployment serves (Flagger tracks it)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(name, config, delivery.release_config_map_name(name)),
        "data": {"model_uri": config.stable.model_uri},
    }


def progressive_autoscaler(name: str, config: ModelDeploymentConfig) -> dict[str, Any]:
    """Without `autoscaling`, min = max = `stable.replicas`: a fixed count that Flagger copies
    to the primary, and that nobody else writes into the Deployment."""
    hpa = horizontal_pod_autoscaler(name, config)
    if hpa is None:
        fixed = AutoscalingConfig(
            min_replicas=config.stable.replicas, max_replicas=config.stable.replicas
        )
        hpa = horizontal_pod_autoscaler(name, config.model_copy(update={"autoscaling": fixed}))
    assert hpa is not None
    hpa["metadata"]["name"] = name
    hpa["spec"]["scaleTargetRef"]["name"] = name
    return hpa


def progressive_pod_disruption_budget(name: str, config: ModelDeploymentConfig) -> dict[str, Any]:
    pdb = pod_disruption_budget(name, config, "stable")
    pdb["metadata"]["name"] = name
    # Primary and canary pods share these labels (Flagger rewrites only `app`).
    pdb["spec"]["selector"] = {"matchLabels": selector_labels(name)}
    return pdb


def flagger_canary(
    name: str, config: ModelDeploymentConfig, flagger: delivery.FlaggerWiring
) -> dict[str, Any]:
    progressive = config.progressive
    assert progressive is not None
    service: dict[str, Any] = {
        "timeout": f"{config.request_timeout_seconds}s",
        "retries": RETRIES,
        "trafficPolicy": traffic_policy(config),
    }
    if config.hosts:
        service["hosts"] = list(config.hosts)
    if config.gateway is not None:
        service["gateways"] = ["mesh", config.gateway]
    return delivery.canary(
        name,
        config.namespace,
        object_labels(name),
        port=config.port,
        model_name=served_model_name(config),
        config=progressive,
        load_tester_url=flagger.load_tester_url,
        loop_url=flagger.loop_url,
        service=service,
        autoscaler=name,
        progress_deadline_seconds=max(600, config.startup_timeout_seconds + 120),
    )


@dataclass(frozen=True)
class Rendered:
    """Every object of one deployment, as the API server would receive it.

    Without `progressive`: a Deployment per track, the Service and the Istio routes. With it:
    Flagger's target Deployment (key `release`), the release ConfigMap, the `Canary` and its
    `MetricTemplate`s; Flagger creates the Services and the Istio routes itself."""

    deployments: dict[str, dict[str, Any]]  # track (or "release") -> Deployment
    pod_disruption_budgets: dict[str, dict[str, Any]]  # track -> PodDisruptionBudget
    service: dict[str, Any] | None
    destination_rule: dict[str, Any] | None
    virtual_service: dict[str, Any] | None
    pod_monitor: dict[str, Any]
    horizontal_pod_autoscaler: dict[str, Any] | None
    release_config_map: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    metric_templates: dict[delivery.Check, dict[str, Any]] | None = None
    # Who may call the pods: NetworkPolicies (key: callers | metrics | deny) and, with the
    # sidecar, an Istio AuthorizationPolicy; a RequestAuthentication with `authentication`.
    network_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorization_policy: dict[str, Any] | None = None
    request_authentication: dict[str, Any] | None = None

    def objects(self) -> list[dict[str, Any]]:
        found = [*self.deployments.values(), *self.pod_disruption_budgets.values()]
        found += [
            obj
            for obj in (
                self.release_config_map,
                self.service,
                self.destination_rule,
                self.virtual_service,
                self.pod_monitor,
                self.horizontal_pod_autoscaler,
                self.canary,
            )
            if obj is not None
        ]
        found += list((self.metric_templates or {}).values())
        found += list(self.network_policies.values())
        found += [
            obj
            for obj in (self.authorization_policy, self.request_authentication)
            if obj is not None
        ]
        return found


def render(
    name: str,
    config: ModelDeploymentConfig,
    kafka: KafkaClientWiring | None = None,
    flagger: delivery.FlaggerWiring | None = None,
    prometheus_namespace: str | None = None,
    tracing: TracingWiring | None = None,
) -> Rendered:
    """Every object of the deployment; `kafka` is the platform Kafka client of its prediction
    log (its `bootstrap_servers` may be a `pulumi.Output`, carried into the env as is);
    `flagger` is where Flagger's checks and hooks go (required with `progressive`);
    `prometheus_namespace` is where the platform's Prometheus scrapes it from; `tracing`
    where the server sends its spans (None: tracing off)."""
    check_deployment_name(name)
    check_kafka(name, config, kafka)
    who = callers(config, flagger, prometheus_namespace)
    access: dict[str, Any] = {
        "network_policies": network_policies(name, config, who),
        "authorization_policy": authorization_policy(name, config, who)
        if config.istio_sidecar
        else None,
        "request_authentication": request_authentication(name, config),
    }
    if config.progressive is not None:
        if flagger is None:
            raise ValueError(
                f"serving.{name}.progressive: Flagger must be installed (delivery.enabled) and "
                "wired in (ModelDeploymentArgs.flagger)"
            )
        pod_monitor_obj = pod_monitor(name, config)
        del pod_monitor_obj["spec"]["podTargetLabels"]  # primary and canary differ by pod name
        return Rendered(
            deployments={
                "release": _with_tracing(
                    name, config, progressive_deployment(name, config, kafka), tracing
                )
            },
            pod_disruption_budgets={"release": progressive_pod_disruption_budget(name, config)},
            service=None,
            destination_rule=None,
            virtual_service=None,
            pod_monitor=pod_monitor_obj,
            horizontal_pod_autoscaler=progressive_autoscaler(name, config),
            release_config_map=release_config_map(name, config),
            canary=flagger_canary(name, config, flagger),
            metric_templates=dict(
                delivery.metric_templates(
                    name,
                    config.namespace,
                    config.progressive,
                    flagger.prometheus_url,
                    object_labels(name),
                )
            ),
            **access,
        )
    tracks: list[Track] = ["stable"] if config.canary is None else ["stable", "canary"]
    return Rendered(
        deployments={
            track: _with_tracing(name, config, deployment(name, config, track, kafka), tracing)
            for track in tracks
        },
        pod_disruption_budgets={
            track: pod_disruption_budget(name, config, track) for track in tracks
        },
        service=service(name, config),
        destination_rule=destination_rule(name, config),
        virtual_service=virtual_service(name, config),
        pod_monitor=pod_monitor(name, config),
        horizontal_pod_autoscaler=horizontal_pod_autoscaler(name, config),
        **access,
    )
