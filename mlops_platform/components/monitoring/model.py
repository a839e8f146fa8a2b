"""Monitoring, pure layer: config model, kube-prometheus-stack Helm values, the model alerts.

Everything here is plain data in, plain data out, and table-tested without Pulumi. The alert
expressions use the model server's own metric names and labels
(`mlops_platform/model_server/metrics.py`); a test renders the server's real exposition and
checks every series and label an expression names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, PositiveFloat, PositiveInt, field_validator, model_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.kube import ContainerResourcesConfig, check_dns_label
from mlops_platform.components.monitoring.tracing import TracingConfig, grafana_datasource
from mlops_platform.components.secret_config import ConfigSecret, SecretValue

# kube-prometheus-stack object names are `<fullname>-<part>`; pinning the fullname (instead of
# letting Helm derive it from the release name) makes the service names and URLs below exact.
RELEASE_NAME = "monitoring"
FULLNAME = "monitoring"
GRAFANA_FULLNAME = f"{FULLNAME}-grafana"
PROMETHEUS_SERVICE = f"{FULLNAME}-prometheus"
ALERTMANAGER_SERVICE = f"{FULLNAME}-alertmanager"
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
GRAFANA_PORT = 80

GRAFANA_ADMIN_SECRET = "grafana-admin-credentials"
GRAFANA_ADMIN_USER = "admin"
GRAFANA_USER_KEY = "admin-user"
GRAFANA_PASSWORD_KEY = "admin-password"
DATASOURCE_UID = "prometheus"
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"

RULE_NAME = "model-server-alerts"
DASHBOARD_CONFIGMAP = "model-server-dashboard"
DASHBOARDS_DIR = Path(__file__).parent / "dashboards"

# Endpoints whose requests are predictions (the server also counts health, metadata, metrics).
PREDICT_ENDPOINTS = "infer|invocations"
# Largest finite bucket of `model_server_request_duration_seconds` (metrics.LATENCY_BUCKETS);
# histogram_quantile cannot report a quantile beyond it, so a larger SLO could never fire.
LATENCY_MAX_BUCKET_SECONDS = 5.0
# The GPU node pools label every node with this (mlops_platform/components/gpu); kube-state-metrics exports it
# as `label_nvidia_com_gpu_present` once allow-listed.
GPU_NODE_LABEL = "nvidia.com/gpu.present"


class ResourcesConfig(ContainerResourcesConfig):
    """Requests and a memory limit for one workload (no CPU limit: throttling hurts latency)."""

    # Not checked here so far: a limit below the request is refused by the API server instead.
    check_memory_limit: ClassVar[bool] = False

    cpu_request: str = Field(description="CPU request, e.g. 250m.")
    memory_request: str = Field(description="Memory request, e.g. 512Mi.")
    memory_limit: str = Field(description="Memory limit, e.g. 1Gi.")


# Per workload, so a stack can change one number and keep the other defaults.
class PrometheusResources(ResourcesConfig):
    cpu_request: str = Field(
        default="250m",
        description="CPU request of the Prometheus server (Kubernetes quantity, e.g. 250m = a "
        "quarter core).",
    )
    memory_request: str = Field(
        default="1Gi",
        description="Memory request of the Prometheus server (Kubernetes quantity, e.g. 512Mi).",
    )
    memory_limit: str = Field(
        default="4Gi",
        description="Memory limit of the Prometheus server; the container is OOM-killed above it.",
    )


class AlertmanagerResources(ResourcesConfig):
    cpu_request: str = Field(
        default="50m",
        description="CPU request of each Alertmanager pod (Kubernetes quantity, e.g. 250m = a "
        "quarter core).",
    )
    memory_request: str = Field(
        default="64Mi",
        description="Memory request of each Alertmanager pod (Kubernetes quantity, e.g. 512Mi).",
    )
    memory_limit: str = Field(
        default="256Mi",
        description="Memory limit of each Alertmanager pod; the container is OOM-killed above it.",
    )


class OperatorResources(ResourcesConfig):
    cpu_request: str = Field(
        default="100m",
        description="CPU request of the prometheus-operator (Kubernetes quantity, e.g. 250m = a "
        "quarter core).",
    )
    memory_request: str = Field(
        default="128Mi",
        description="Memory request of the prometheus-operator (Kubernetes quantity, e.g. 512Mi).",
    )
    memory_limit: str = Field(
        default="512Mi",
        description="Memory limit of the prometheus-operator; the container is OOM-killed above "
        "it.",
    )


class GrafanaResources(ResourcesConfig):
    cpu_request: str = Field(
        default="100m",
        description="CPU request of Grafana (Kubernetes quantity, e.g. 250m = a quarter core).",
    )
    memory_request: str = Field(
        default="256Mi", description="Memory request of Grafana (Kubernetes quantity, e.g. 512Mi)."
    )
    memory_limit: str = Field(
        default="512Mi",
        description="Memory limit of Grafana; the container is OOM-killed above it.",
    )


class GrafanaConfig(StrictModel):
    """Grafana. The admin password is always generated and kept in a Secret, never in config."""

    resources: GrafanaResources = Field(
        default_factory=GrafanaResources, description="Requests and memory limit of Grafana."
    )
    storage_gb: PositiveInt | None = Field(
        default=None,
        description="Persistent volume for Grafana's database (users, UI-made dashboards). "
        "null: none; dashboards and data sources are provisioned from ConfigMaps anyway.",
    )
    default_dashboards: bool = Field(
        default=True, description="Install the chart's Kubernetes and node dashboards."
    )


class AlertsConfig(StrictModel):
    """Thresholds of the model alerts. `*_for_minutes`: how long a condition must hold."""

    drift_for_minutes: PositiveFloat = Field(
        default=15,
        description="Minutes the drift monitor's verdict must stay `drift` before the alert "
        "fires; fractions are rendered in seconds (0.05 -> 3s). The verdict itself is the "
        "drift pipeline's detector with the platform's `DriftSettings` (mlops_platform/pipelines/lib/"
        "drift.py, `loop.drift_monitor.settings`), not a threshold set here.",
    )
    drift_inconclusive_for_minutes: PositiveFloat = Field(
        default=360,
        description="Minutes the verdict may stay `inconclusive` (too few same-season "
        "reference rows) before an informational alert says drift is not being watched.",
    )
    drift_check_failing_minutes: PositiveInt = Field(
        default=60,
        description="Alert when the drift monitor's checks of a model failed within this "
        "many minutes (no reference in the registry, unreadable windows, MLflow down).",
    )
    p99_latency_ms: float = Field(
        default=10.0,
        gt=0,
        le=LATENCY_MAX_BUCKET_SECONDS * 1000,
        description="Latency SLO: p99 of prediction requests, in milliseconds.",
    )
    latency_for_minutes: PositiveInt = Field(
        default=10,
        description="Minutes the p99 latency must stay above `p99_latency_ms` (at more than "
        "`latency_min_request_rate` requests/s) before ModelServerHighLatency fires.",
    )
    latency_min_request_rate: float = Field(
        default=1.0,
        ge=0,
        description="Requests/s below which the p99 is not judged (a few slow requests at "
        "night are not an SLO breach).",
    )
    error_ratio: float = Field(
        default=0.01, gt=0, lt=1, description="Share of prediction requests answered 5xx."
    )
    error_for_minutes: PositiveInt = Field(
        default=5,
        description="Minutes the 5xx share must stay above `error_ratio` before "
        "ModelServerHighErrorRatio fires.",
    )
    prediction_log_drop_ratio: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Share of prediction records dropped instead of logged (the drift and "
        "retraining data).",
    )
    prediction_log_for_minutes: PositiveInt = Field(
        default=10,
        description="Minutes the dropped share of prediction records must stay above "
        "`prediction_log_drop_ratio` before ModelPredictionLogDropping fires.",
    )
    not_ready_for_minutes: PositiveInt = Field(
        default=10, description="A server up but not ready (model not loaded) this long."
    )
    down_for_minutes: PositiveInt = Field(
        default=5,
        description="Minutes a model server's scrape target must report down (`up == 0`) "
        "before ModelServerDown fires.",
    )
    model_server_job: str = Field(
        default=".*model-server.*",
        description="Regex on the `job` label of the model server's scrape target (a "
        "PodMonitor's job is `<namespace>/<name>`, a ServiceMonitor's the Service name).",
    )
    gpu_alerts: bool = Field(
        default=True,
        description="Alert when a GPU node advertises no `nvidia.com/gpu` (device plugin "
        "not running).",
    )

    @field_validator("model_server_job")
    @classmethod
    def _regex(cls, value: str) -> str:
        if not value or '"' in value or "\\" in value:
            raise ValueError(
                f"model_server_job {value!r} must be a non-empty regex without quotes or "
                "backslashes"
            )
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"model_server_job {value!r} is not a regex: {exc}") from None
        return value


# --- Alertmanager receivers and routes ----------------------------------------------------------

# The one alert the platform's own retrain receiver acts on.
DRIFT_ALERT = "ModelFeatureDrift"
NULL_RECEIVER = "null"
RETRAIN_RECEIVER = "platform-retrain"
RESERVED_RECEIVERS = frozenset({NULL_RECEIVER, RETRAIN_RECEIVER})
# One Secret in the monitoring namespace holds every receiver credential; the chart mounts it
# into Alertmanager (`alertmanagerSpec.secrets`) at SECRETS_DIR/<secret>/<key>, and the config
# names only those files (`*_file` fields), so no credential is in Helm values or the state.
RECEIVER_SECRET = "alertmanager-receiver-credentials"
SECRETS_DIR = "/etc/alertmanager/secrets"
RETRAIN_TOKEN_KEY = "platform-retrain-token"
# The chart's own config mounts templates from here; kept so `templateFiles` still work.
TEMPLATES = ["/etc/alertmanager/config/*.tmpl"]
# Label values a route may match: plain names, so they are safe inside a regex matcher.
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_.:-]+$")
_RECEIVER_KEY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# A refused credential must not be echoed by pydantic's own error text either.
_HIDE_INPUT = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class _Receiver(StrictModel):
    model_config = _HIDE_INPUT

    send_resolved: bool = Field(default=True, description="Also notify when alerts resolve.")

    def secrets(self, key: str) -> dict[str, ConfigSecret]:
        """Secret key -> value this receiver needs in RECEIVER_SECRET."""
        raise NotImplementedError

    def render(self, key: str, secrets_dir: str) -> dict[str, Any]:
        raise NotImplementedError


def _secret_file(secrets_dir: str, key: str) -> str:
    return f"{secrets_dir}/{RECEIVER_SECRET}/{key}"


class WebhookReceiver(_Receiver):
    """Any HTTP endpoint speaking Alertmanager's webhook format (version 4)."""

    type: Literal["webhook"] = Field(
        description="`webhook`: notify an HTTP endpoint that receives Alertmanager's JSON payload."
    )
    url: str = Field(description="http(s) URL the alerts are POSTed to (not a secret).")
    bearer_token: SecretValue | None = Field(
        default=None, description="Sent as `Authorization: Bearer`; a Pulumi secret."
    )
    max_alerts: int = Field(
        default=0, ge=0, description="Alerts per message; 0 sends all of the group."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/@]+(/\S*)?$", value):
            raise ValueError(
                f"url {value!r} must be an http(s) URL without credentials (use bearer_token)"
            )
        return value

    def secrets(self, key: str) -> dict[str, ConfigSecret]:
        return {f"{key}-bearer-token": self.bearer_token} if self.bearer_token else {}

    def render(self, key: str, secrets_dir: str) -> dict[str, Any]:
        return {
            "webhook_configs": [
                _webhook(
                    self.url,
                    _secret_file(secrets_dir, f"{key}-bearer-token") if self.bearer_token else None,
                    self.send_resolved,
                    self.max_alerts,
                )
            ]
        }


class SlackReceiver(_Receiver):
    """A Slack incoming webhook; its URL is the credential."""

    type: Literal["slack"] = Field(description="`slack`: notify a Slack incoming webhook.")
    api_url: SecretValue = Field(description="The incoming-webhook URL; a Pulumi secret.")
    channel: str = Field(description="Channel, e.g. `#ml-alerts`.")

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not re.match(r"^[#@]?[a-z0-9][a-z0-9._-]{0,79}$", value):
            raise ValueError(f"channel {value!r} must be a Slack channel name like #ml-alerts")
        return value

    def secrets(self, key: str) -> dict[str, ConfigSecret]:
        return {f"{key}-api-url": self.api_url}

    def render(self, key: str, secrets_dir: str) -> dict[str, Any]:
        return {
            "slack_configs": [
                {
                    "api_url_file": _secret_file(secrets_dir, f"{key}-api-url"),
                    "channel": self.channel,
                    "send_resolved": self.send_resolved,
                    "title": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
                    "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n"
                    "{{ .Annotations.description }}\n{{ end }}",
                }
            ]
        }


class PagerDutyReceiver(_Receiver):
    """PagerDuty Events API v2; the integration's routing key is the credential."""

    type: Literal["pagerduty"] = Field(
        description="`pagerduty`: notify a PagerDuty Events API v2 service."
    )
    routing_key: SecretValue = Field(description="Events API v2 routing key; a Pulumi secret.")

    def secrets(self, key: str) -> dict[str, ConfigSecret]:
        return {f"{key}-routing-key": self.routing_key}

    def render(self, key: str, secrets_dir: str) -> dict[str, Any]:
        return {
            "pagerduty_configs": [
                {
                    "routing_key_file": _secret_file(secrets_dir, f"{key}-routing-key"),
                    "send_resolved": self.send_resolved,
                    "severity": "{{ if .CommonLabels.severity }}{{ .CommonLabels.severity }}"
                    "{{ else }}error{{ end }}",
                }
            ]
        }


Receiver = Annotated[
    WebhookReceiver | SlackReceiver | PagerDutyReceiver, Field(discriminator="type")
]


def _label_values(values: list[str], field: str) -> list[str]:
    for value in values:
        if not _LABEL_VALUE.match(value):
            raise ValueError(
                f"{field}: {value!r} must be a plain label value (letters, digits, _ . : -)"
            )
    return values


class AlertRoute(StrictModel):
    """Alerts matching every given list (any value of each) go to `receiver`."""

    receiver: str = Field(description="Key of `alerting.receivers`.")
    severities: list[str] = Field(default_factory=list, description="`severity` label values.")
    alertnames: list[str] = Field(default_factory=list, description="Alert names.")
    models: list[str] = Field(default_factory=list, description="`model` label values.")
    continue_matching: bool = Field(
        default=False, description="Also try the routes after this one."
    )

    @field_validator("severities", "alertnames", "models")
    @classmethod
    def _values(cls, value: list[str], info) -> list[str]:
        return _label_values(value, info.field_name)

    def matchers(self) -> list[str]:
        found = []
        for label, values in (
            ("severity", self.severities),
            ("alertname", self.alertnames),
            ("model", self.models),
        ):
            if len(values) == 1:
                found.append(f'{label}="{values[0]}"')
            elif values:
                found.append(f'{label}=~"{"|".join(re.escape(v) for v in values)}"')
        return found


class AlertingConfig(StrictModel):
    """Where alerts go. Credentials only through Pulumi secret config."""

    model_config = _HIDE_INPUT

    receivers: dict[str, Receiver] = Field(
        default_factory=dict,
        description="Notification targets keyed by name (the Alertmanager receiver name).",
    )
    routes: list[AlertRoute] = Field(
        default_factory=list,
        description="Tried in order (Alertmanager's routing tree is ordered); the first match "
        "wins unless it sets continue_matching.",
    )
    default_receiver: str | None = Field(
        default=None,
        description="Receiver of alerts no route matches; null: the only receiver when there "
        "is exactly one, else the `null` receiver (alerts stay visible in Alertmanager only).",
    )
    notify_drift: bool = Field(
        default=False,
        description="Drift alerts go to the platform's retrain receiver; true also sends them "
        "down the routes above.",
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname", "namespace", "model"],
        description="Labels one notification groups by.",
    )
    group_wait_seconds: PositiveInt = Field(
        default=30, description="Wait this long to batch the first alerts of a new group."
    )
    group_interval_seconds: PositiveInt = Field(
        default=300, description="Wait this long before notifying about new alerts of a group."
    )
    repeat_interval_minutes: PositiveInt = Field(
        default=240, description="Re-send a still-firing group after this long."
    )

    @field_validator("receivers")
    @classmethod
    def _receiver_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in RESERVED_RECEIVERS:
                raise ValueError(f"receivers.{key}: the name is reserved by the platform")
            if len(key) > 40 or not _RECEIVER_KEY.match(key):
                raise ValueError(
                    f"receivers.{key}: a receiver name is a DNS label of at most 40 characters"
                )
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        for label in value:
            if label != "..." and not re.match(r"^[a-zA-Z_][a-zA-Z0-9_]*$", label):
                raise ValueError(f"group_by: {label!r} is not a label name")
        return value

    @model_validator(mode="after")
    def _known_receivers(self) -> AlertingConfig:
        for index, route in enumerate(self.routes):
            if route.receiver not in self.receivers:
                raise ValueError(
                    f"routes[{index}].receiver: unknown receiver {route.receiver!r}; "
                    f"receivers has {sorted(self.receivers) or 'none'}"
                )
        if self.default_receiver is not None and self.default_receiver not in self.receivers:
            raise ValueError(
                f"default_receiver: unknown receiver {self.default_receiver!r}; "
                f"receivers has {sorted(self.receivers) or 'none'}"
            )
        return self

    def fallback_receiver(self) -> str:
        if self.default_receiver is not None:
            return self.default_receiver
        if len(self.receivers) == 1:
            return next(iter(self.receivers))
        return NULL_RECEIVER


class MonitoringConfig(StrictModel):
    """Prometheus, Alertmanager and Grafana (kube-prometheus-stack) plus the model alerts."""

    model_config = _HIDE_INPUT

    namespace: str = Field(default="monitoring", description="Namespace of the stack.")
    retention_days: PositiveInt = Field(default=15, description="Prometheus data retention.")
    storage_gb: PositiveInt = Field(default=50, description="Prometheus persistent volume.")
    storage_class: str | None = Field(
        default=None, description="StorageClass of every volume; null uses the cluster default."
    )
    alertmanager_storage_gb: PositiveInt = Field(
        default=2, description="Alertmanager volume (silences and notification log)."
    )
    prometheus: PrometheusResources = Field(
        default_factory=PrometheusResources,
        description="Requests and memory limit of the Prometheus server (grows with series "
        "and `retention_days`).",
    )
    alertmanager: AlertmanagerResources = Field(
        default_factory=AlertmanagerResources,
        description="Requests and memory limit of each Alertmanager pod.",
    )
    operator: OperatorResources = Field(
        default_factory=OperatorResources, description="prometheus-operator."
    )
    grafana: GrafanaConfig = Field(
        default_factory=GrafanaConfig,
        description="Grafana: resources, volume and the bundled dashboards (the admin password "
        "is generated into a Secret).",
    )
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig,
        description="Thresholds and hold times of the platform's model alerts (drift, "
        "latency, errors, prediction log, readiness, GPUs).",
    )
    alerting: AlertingConfig = Field(
        default_factory=AlertingConfig,
        description="Alertmanager receivers (webhook, Slack, PagerDuty) and routes.",
    )
    tracing: TracingConfig = Field(
        default_factory=TracingConfig,
        description="Distributed tracing (off by default): a Jaeger v2 backend here, fed by "
        "Istio's sidecars and the model servers over OTLP (mlops_platform/components/monitoring/tracing.py).",
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_dns_label(value, "namespace", explain=False)


# --- Helm values ------------------------------------------------------------------------------


def retention_size(storage_gb: int) -> str:
    """Prometheus deletes old blocks past 85 % of the volume, so a burst never fills the disk
    (time-based retention alone does not look at free space)."""
    return f"{storage_gb * 1024 * 85 // 100}MB"


def _volume_claim(size_gb: int, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{size_gb}Gi"}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"volumeClaimTemplate": {"spec": spec}}


def helm_values(config: MonitoringConfig, retrain_url: str | None = None) -> dict[str, Any]:
    """kube-prometheus-stack values; every key exists in the pinned chart's values.yaml.

    `retrain_url`: the platform's retrain receiver, which gets the drift alerts."""
    grafana = config.grafana
    persistence: dict[str, Any] = {"enabled": grafana.storage_gb is not None}
    if grafana.storage_gb is not None:
        persistence["size"] = f"{grafana.storage_gb}Gi"
        if config.storage_class is not None:
            persistence["storageClassName"] = config.storage_class
    # nil-uses-Helm-values would only select objects labelled `release: <release>`; false turns
    # the empty selectors into "everything", so rules and monitors from any namespace count.
    select_everything = {
        f"{kind}SelectorNilUsesHelmValues": False
        for kind in ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig")
    }
    return {
        "fullnameOverride": FULLNAME,
        "crds": {"enabled": True},
        "defaultRules": {"create": True},
        "prometheusOperator": {"resources": config.operator.values()},
        "prometheus": {
            "prometheusSpec": {
                "retention": f"{config.retention_days}d",
                "retentionSize": retention_size(config.storage_gb),
                "storageSpec": _volume_claim(config.storage_gb, config.storage_class),
                "resources": config.prometheus.values(),
                **select_everything,
                "ruleNamespaceSelector": {},
                "serviceMonitorNamespaceSelector": {},
                "podMonitorNamespaceSelector": {},
            }
        },
        "alertmanager": {
            "config": alertmanager_config(config.alerting, retrain_url),
            "alertmanagerSpec": {
                "storage": _volume_claim(config.alertmanager_storage_gb, config.storage_class),
                "resources": config.alertmanager.values(),
                **(
                    {"secrets": [RECEIVER_SECRET]}
                    if receiver_secret_keys(config.alerting, retrain_url is not None)
                    else {}
                ),
            },
        },
        "grafana": {
            "fullnameOverride": GRAFANA_FULLNAME,
            "defaultDashboardsEnabled": grafana.default_dashboards,
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": GRAFANA_USER_KEY,
                "passwordKey": GRAFANA_PASSWORD_KEY,
            },
            "resources": grafana.resources.values(),
            "persistence": persistence,
            **(
                {"additionalDataSources": [grafana_datasource(config.namespace)]}
                if config.tracing.enabled
                else {}
            ),
            "grafana.ini": {"analytics": {"check_for_updates": False, "reporting_enabled": False}},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": DASHBOARD_LABEL_VALUE,
                    "searchNamespace": "ALL",
                },
                "datasources": {"uid": DATASOURCE_UID},
            },
        },
        # Node labels are not exported unless allow-listed; the GPU alert needs this one.
        "kube-state-metrics": {"metricLabelsAllowlist": [f"nodes=[{GPU_NODE_LABEL}]"]},
    }


def prometheus_url(namespace: str) -> str:
    return f"http://{PROMETHEUS_SERVICE}.{namespace}.svc.cluster.local:{PROMETHEUS_PORT}"


def alertmanager_url(namespace: str) -> str:
    return f"http://{ALERTMANAGER_SERVICE}.{namespace}.svc.cluster.local:{ALERTMANAGER_PORT}"


def _webhook(
    url: str, token_file: str | None, send_resolved: bool, max_alerts: int = 0
) -> dict[str, Any]:
    config: dict[str, Any] = {"url": url, "send_resolved": send_resolved}
    if max_alerts:
        config["max_alerts"] = max_alerts
    if token_file is not None:
        config["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": token_file}
        }
    return config


def _seconds(value: int) -> str:
    return f"{value}s"


def alertmanager_config(
    alerting: AlertingConfig, retrain_url: str | None, secrets_dir: str = SECRETS_DIR
) -> dict[str, Any]:
    """The whole `alertmanager.yaml`: the chart's `alertmanager.config` value.

    Every top-level key the chart sets by default is set here (Helm merges maps but replaces
    lists), so what Alertmanager loads is exactly this. `retrain_url`: the platform's retrain
    receiver (mlops_platform/components/loop), which gets the drift alerts; its bearer token is the file
    RETRAIN_TOKEN_KEY of RECEIVER_SECRET. `secrets_dir` is where the chart mounts Secrets (a
    test points it at a folder of its own).
    """
    timing = {
        "group_wait": _seconds(alerting.group_wait_seconds),
        "group_interval": _seconds(alerting.group_interval_seconds),
        "repeat_interval": _minutes(alerting.repeat_interval_minutes),
    }
    # The chart's always-firing Watchdog (a dead man's switch for an external monitor) and
    # InfoInhibitor must not page anyone.
    routes: list[dict[str, Any]] = [
        {"receiver": NULL_RECEIVER, "matchers": ['alertname=~"Watchdog|InfoInhibitor"']}
    ]
    receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    if retrain_url is not None:
        routes.append(
            {
                "receiver": RETRAIN_RECEIVER,
                "matchers": [f'alertname="{DRIFT_ALERT}"'],
                # One notification per model: the receiver starts one retrain per group.
                "group_by": ["alertname", "namespace", "model"],
                "continue": alerting.notify_drift,
            }
        )
        receivers.append(
            {
                "name": RETRAIN_RECEIVER,
                "webhook_configs": [
                    _webhook(retrain_url, _secret_file(secrets_dir, RETRAIN_TOKEN_KEY), True)
                ],
            }
        )
    for route in alerting.routes:
        entry: dict[str, Any] = {"receiver": route.receiver, "matchers": route.matchers()}
        if route.continue_matching:
            entry["continue"] = True
        routes.append(entry)
    receivers += [
        {"name": key, **receiver.render(key, secrets_dir)}
        for key, receiver in alerting.receivers.items()
    ]
    return {
        "global": {"resolve_timeout": "5m"},
        # The chart's defaults: a critical alert silences the warning of the same alert and
        # namespace; `info` alerts only show while something else fires.
        "inhibit_rules": [
            {
                "source_matchers": ["severity = critical"],
                "target_matchers": ["severity =~ warning|info"],
                "equal": ["namespace", "alertname"],
            },
            {
                "source_matchers": ["severity = warning"],
                "target_matchers": ["severity = info"],
                "equal": ["namespace", "alertname"],
            },
            {
                "source_matchers": ["alertname = InfoInhibitor"],
                "target_matchers": ["severity = info"],
                "equal": ["namespace"],
            },
            {"target_matchers": ["alertname = InfoInhibitor"]},
        ],
        "route": {
            "receiver": alerting.fallback_receiver(),
            "group_by": list(alerting.group_by),
            **timing,
            "routes": routes,
        },
        "receivers": receivers,
        "templates": list(TEMPLATES),
    }


def receiver_secret_keys(alerting: AlertingConfig, retrain: bool) -> list[str]:
    """Keys of RECEIVER_SECRET, in a stable order."""
    keys = [RETRAIN_TOKEN_KEY] if retrain else []
    for key, receiver in alerting.receivers.items():
        keys += list(receiver.secrets(key))
    return keys


def receiver_secrets(alerting: AlertingConfig) -> dict[str, ConfigSecret]:
    """Secret key -> value of the configured receivers (the retrain token comes separately)."""
    found: dict[str, ConfigSecret] = {}
    for key, receiver in alerting.receivers.items():
        found.update(receiver.secrets(key))
    return found


def receiver_secret(namespace: str, keys: list[str]) -> dict[str, Any]:
    """RECEIVER_SECRET's envelope with placeholder values; the resource layer fills
    `stringData` from secret Outputs."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": RECEIVER_SECRET,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
        },
        "type": "Opaque",
        "stringData": dict.fromkeys(keys, "[secret]"),
    }


# --- alert rules ------------------------------------------------------------------------------

# Series are summed over pods: an alert is per model version, not per replica.
_BY = "namespace, model, version"


def _minutes(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value)}m"
    return f"{max(1, round(value * 60))}s"


def _alert(
    name: str, expr: str, minutes: float, severity: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": _minutes(minutes),
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def _fmt(value: float) -> str:
    """A number as PromQL reads it (`0.2`, `0.01`, `500`), without float noise."""
    return f"{value:g}"


def drift_alerts(alerts: AlertsConfig) -> list[dict[str, Any]]:
    """Drift from the drift monitor's verdicts (mlops_platform/pipelines/loop/monitor.py): the pipeline's
    detector and settings applied to the prediction log's recent window, never a PSI threshold.

    `ModelFeatureDrift` (the retrain receiver's alert) fires per drifted feature while the
    model's verdict is `drift`; `inconclusive` (no same-season reference can be built) is its
    own informational alert and never starts a retrain; failing checks are a warning.
    """
    drifted = (
        "max by (model, version, feature) (mlops_drift_feature_drifted == 1)\n"
        "and on (model, version)\n"
        'max by (model, version) (mlops_drift_verdict{verdict="drift"} == 1)'
    )
    return [
        _alert(
            DRIFT_ALERT,
            drifted,
            alerts.drift_for_minutes,
            "warning",
            "Feature {{ $labels.feature }} of model {{ $labels.model }} has drifted",
            "The drift monitor's check of the prediction log's recent window against the "
            "training data of {{ $labels.model }} version {{ $labels.version }} (same-season "
            "reference, Holm-corrected tests, effect floors: the drift pipeline's own detector "
            "and settings) says drift, and {{ $labels.feature }} is one of the drifted features; "
            f"held for {_fmt(alerts.drift_for_minutes)} minutes. See mlops_drift_feature_effect "
            "and the drift pipeline run this alert starts.",
        ),
        _alert(
            "ModelDriftInconclusive",
            'max by (model, version) (mlops_drift_verdict{verdict="inconclusive"}) == 1',
            alerts.drift_inconclusive_for_minutes,
            "info",
            "Drift of model {{ $labels.model }} cannot be judged",
            "The training data of {{ $labels.model }} version {{ $labels.version }} has too "
            "few rows in the current season to build a same-season reference, so the drift "
            "check withholds its verdict (it never compares with the whole year silently). "
            "Log a larger training sample, or set season_fallback in the drift settings.",
        ),
        _alert(
            "ModelDriftCheckFailing",
            f"sum by (model, reason) (increase(mlops_drift_check_failures_total"
            f"[{alerts.drift_check_failing_minutes}m])) > 0",
            0,
            "warning",
            "The drift check of model {{ $labels.model }} fails ({{ $labels.reason }})",
            "The drift monitor could not check {{ $labels.model }} in the last "
            f"{alerts.drift_check_failing_minutes} minutes ({{{{ $labels.reason }}}}): drift "
            "is not being watched. Its log names the cause (no champion or no logged training "
            "sample, unreadable prediction-log windows, MLflow unreachable).",
        ),
    ]


def model_server_alerts(alerts: AlertsConfig) -> list[dict[str, Any]]:
    """Errors, latency, prediction-log loss and availability of the model server."""
    requests = f'model_server_requests_total{{endpoint=~"{PREDICT_ENDPOINTS}"}}'
    errors = f'model_server_requests_total{{endpoint=~"{PREDICT_ENDPOINTS}",code=~"5.."}}'
    buckets = f'model_server_request_duration_seconds_bucket{{endpoint=~"{PREDICT_ENDPOINTS}"}}'
    count = f'model_server_request_duration_seconds_count{{endpoint=~"{PREDICT_ENDPOINTS}"}}'
    dropped = f"sum by ({_BY}) (rate(model_server_prediction_log_dropped_total[10m]))"
    written = f"sum by ({_BY}) (rate(model_server_prediction_log_written_total[10m]))"
    p99 = alerts.p99_latency_ms / 1000
    return [
        _alert(
            "ModelServerHighErrorRatio",
            f"sum by ({_BY}) (rate({errors}[5m]))\n"
            f"/\n"
            f"sum by ({_BY}) (rate({requests}[5m]))\n"
            f"> {_fmt(alerts.error_ratio)}",
            alerts.error_for_minutes,
            "critical",
            "Model {{ $labels.model }} v{{ $labels.version }} answers too many 5xx",
            "{{ $value | humanizePercentage }} of prediction requests failed with 5xx (SLO "
            f"{_fmt(alerts.error_ratio * 100)} %) in namespace {{{{ $labels.namespace }}}}.",
        ),
        _alert(
            "ModelServerHighLatency",
            f"histogram_quantile(0.99, sum by ({_BY}, le) (rate({buckets}[5m])))\n"
            f"> {_fmt(p99)}\n"
            f"and on ({_BY})\n"
            f"sum by ({_BY}) (rate({count}[5m])) >= {_fmt(alerts.latency_min_request_rate)}",
            alerts.latency_for_minutes,
            "warning",
            "Model {{ $labels.model }} v{{ $labels.version }} p99 latency above "
            f"{_fmt(alerts.p99_latency_ms)} ms",
            "p99 latency of prediction requests is {{ $value | humanizeDuration }} (SLO "
            f"{_fmt(alerts.p99_latency_ms)} ms) for {alerts.latency_for_minutes} minutes in "
            "namespace {{ $labels.namespace }}.",
        ),
        _alert(
            "ModelPredictionLogDropping",
            # `or dropped`: when nothing was written at all the ratio is 1, not absent.
            f"{dropped}\n/\n(({dropped} + {written}) or {dropped})\n"
            f"> {_fmt(alerts.prediction_log_drop_ratio)}",
            alerts.prediction_log_for_minutes,
            "warning",
            "Model {{ $labels.model }} v{{ $labels.version }} drops prediction records",
            "{{ $value | humanizePercentage }} of prediction records were dropped instead of "
            "reaching the prediction log (queue or Kafka buffer full, or delivery failing) in "
            "namespace {{ $labels.namespace }}; drift detection and retraining miss that data. "
            "See model_server_prediction_log_dropped_total by reason.",
        ),
        _alert(
            "ModelServerNotReady",
            "model_server_ready == 0",
            alerts.not_ready_for_minutes,
            "warning",
            "Model server {{ $labels.namespace }}/{{ $labels.pod }} is not ready",
            f"The server has been up but not ready for {alerts.not_ready_for_minutes} minutes: "
            "the model did not load or warm up (check the pod's log for the model URI and the "
            "MLflow tracking server).",
        ),
        _alert(
            "ModelServerDown",
            f'up{{job=~"{alerts.model_server_job}"}} == 0',
            alerts.down_for_minutes,
            "critical",
            "Model server target {{ $labels.namespace }}/{{ $labels.pod }} is down",
            f"Prometheus has not been able to scrape {{{{ $labels.instance }}}} (job "
            f"{{{{ $labels.job }}}}) for {alerts.down_for_minutes} minutes.",
        ),
    ]


def gpu_node_alerts() -> list[dict[str, Any]]:
    """kube-state-metrics: a GPU node whose device plugin advertises no GPU is wasted money."""
    label = "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", GPU_NODE_LABEL)
    return [
        _alert(
            "GpuNodeWithoutGpus",
            f'max by (node) (kube_node_labels{{{label}="true"}})\n'
            "unless on (node)\n"
            'max by (node) (kube_node_status_allocatable{resource="nvidia_com_gpu"} > 0)',
            15,
            "warning",
            "GPU node {{ $labels.node }} advertises no nvidia.com/gpu",
            "The node is labelled as a GPU node but has no allocatable nvidia.com/gpu for 15 "
            "minutes: the NVIDIA device plugin is not running on it or the driver failed. GPU "
            "pods cannot be scheduled there.",
        )
    ]


def rule_groups(alerts: AlertsConfig) -> list[dict[str, Any]]:
    groups = [
        {"name": "drift", "rules": drift_alerts(alerts)},
        {"name": "model-server", "rules": model_server_alerts(alerts)},
    ]
    if alerts.gpu_alerts:
        groups.append({"name": "gpu-nodes", "rules": gpu_node_alerts()})
    return groups


def prometheus_rule(alerts: AlertsConfig, namespace: str) -> dict[str, Any]:
    """The `monitoring.coreos.com/v1` PrometheusRule object."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": RULE_NAME,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
        },
        "spec": {"groups": rule_groups(alerts)},
    }


# --- dashboards -------------------------------------------------------------------------------


def dashboards() -> dict[str, str]:
    """File name -> JSON text of every dashboard shipped in `dashboards/` (checked to parse)."""
    found = {}
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        text = path.read_text()
        json.loads(text)
        found[path.name] = text
    return found


def dashboard_configmap(namespace: str) -> dict[str, Any]:
    """ConfigMap the Grafana sidecar loads (label `grafana_dashboard: "1"`, any namespace)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": DASHBOARD_CONFIGMAP,
            "namespace": namespace,
            "labels": {DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
        },
        "data": dashboards(),
    }
