"""Every setting of the model server, read through one typed registry of environment variables.

Each entry names the variable, its type, its default and what it does; `Settings.from_env`
is the only place that reads the environment, and the README table is checked against
`REGISTRY` by a test, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

PredictionSink = Literal["file", "kafka", "none"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_SSL"]
# SCRAM-* are librdkafka's own mechanisms; the OAUTHBEARER-* names pick who signs the token.
KafkaSaslMechanism = Literal[
    "none", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER-AWS-MSK-IAM", "OAUTHBEARER-GCP-IAM"
]
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


class SettingsError(ValueError):
    """A variable holds a value that cannot be used; the message names the variable."""


# A secret setting `<NAME>` may instead name a file, `<NAME>_FILE` (the postgres/redis images'
# convention): a key of a Secret mounted read-only, so the value is in no pod spec and no
# environment (`/proc/<pid>/environ`, `kubectl describe`, crash dumps).
FILE_SUFFIX = "_FILE"


def read_secret_file(name: str, path: str) -> str:
    """The value of secret `name` from the file `<name>_FILE` names, without the trailing
    newline an editor or `kubectl create secret --from-file` may leave. A missing, unreadable
    or empty file stops the start-up with the variable and the path (never the content)."""
    variable = f"{name}{FILE_SUFFIX}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(f"{variable}={path!r}: no such file") from None
    except IsADirectoryError:
        raise SettingsError(f"{variable}={path!r} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise SettingsError(f"{variable}={path!r} cannot be read: {reason}") from None
    value = text.rstrip("\r\n")
    if not value.strip():
        raise SettingsError(f"{variable}={path!r}: the file is empty")
    return value


def secret_from_env(environ: Mapping[str, str], name: str) -> str:
    """`name`'s value: the variable itself, or the content of the file `<name>_FILE` names;
    empty when neither is set. Setting both is refused: which one wins would be a guess."""
    direct = environ.get(name, "")
    path = environ.get(f"{name}{FILE_SUFFIX}", "").strip()
    if not path:
        return direct
    if direct.strip():
        raise SettingsError(f"{name} and {name}{FILE_SUFFIX} are both set: set only one")
    return read_secret_file(name, path)


@dataclass(frozen=True)
class EnvVar:
    """One documented environment variable."""

    name: str
    field: str
    type: type
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    # A secret's value never appears in an error message, a log line or `repr(Settings)`.
    secret: bool = False
    # Read when this variable is unset (e.g. AWS_REGION, which EKS injects into IRSA pods).
    fallback: str = ""

    def parse(self, raw: str) -> Any:
        text = raw.strip()
        try:
            if self.type is bool:
                value: Any = _parse_bool(text)
            elif self.type is int:
                value = int(text)
            elif self.type is float:
                value = float(text)
                if not math.isfinite(value):
                    raise ValueError("not a finite number")
            else:
                value = text
        except ValueError as exc:
            # The parser's own message may quote the value, so a secret's is left out.
            reason = "" if self.secret else f": {exc}"
            raise SettingsError(
                f"{self.name}={self.shown(raw)} is not a valid {self.type.__name__}{reason}"
            ) from None
        self.check(value)
        return value

    def check(self, value: Any) -> None:
        if self.choices and value not in self.choices:
            raise SettingsError(
                f"{self.name}={self.shown(value)} must be one of {', '.join(self.choices)}"
            )
        if self.minimum is not None and value < self.minimum:
            raise SettingsError(f"{self.name}={self.shown(value)} must be >= {self.minimum:g}")

    def shown(self, value: Any) -> str:
        """The value as error messages show it: secrets are redacted."""
        return "<redacted>" if self.secret else repr(value)

    def raw(self, environ: Mapping[str, str]) -> str:
        """The variable's text in `environ`; a secret's may come from `<name>_FILE` instead."""
        if self.secret:
            return secret_from_env(environ, self.name)
        return environ.get(self.name, "")


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true/false")


PREFIX = "MLOPS_SERVE_"

REGISTRY: tuple[EnvVar, ...] = (
    EnvVar(
        "MLOPS_SERVE_MODEL_URI",
        "model_uri",
        str,
        "",
        "MLflow model to serve: `models:/name@alias`, `models:/name/version`, `runs:/...` "
        "or a local path. `--model-uri` overrides it.",
    ),
    EnvVar(
        "MLOPS_SERVE_MODEL_NAME",
        "model_name",
        str,
        "",
        "Name the model is served under (`/v2/models/{name}`); empty = the registered name, "
        "or the directory name for a local path.",
    ),
    EnvVar(
        "MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS",
        "load_retry_initial_seconds",
        float,
        1.0,
        "While the model is not there yet (not registered, no alias, no artifacts, tracking "
        "server unreachable or failing), wait this long before the second attempt to load it; "
        "each further wait doubles, up to `MLOPS_SERVE_LOAD_RETRY_MAX_SECONDS`.",
        minimum=0.01,
    ),
    EnvVar(
        "MLOPS_SERVE_LOAD_RETRY_MAX_SECONDS",
        "load_retry_max_seconds",
        float,
        30.0,
        "Longest wait between two attempts to load a model that is not there yet: how long "
        "the server may stay not-ready after the model's alias is set. It waits indefinitely.",
        minimum=0.01,
    ),
    EnvVar(
        "MLOPS_SERVE_EXAMPLE_ENDPOINT",
        "example_endpoint",
        bool,
        False,
        "Serve the model's MLflow input example as an `/invocations` body at "
        "`GET /v2/models/{name}/example`: the golden-set request Flagger's load tester sends "
        "during a progressive rollout. Off by default: the example is rows of training data.",
    ),
    EnvVar(
        "MLOPS_SERVE_EXPLAIN",
        "explain",
        bool,
        False,
        "Allow per-request feature attributions: a v2 infer request with "
        '`"parameters": {"explain": true}` gets an `attributions` output (exact TreeSHAP, one '
        "value per input column) for tree models. Off by default: it costs latency (see "
        "bench/results/explain.md) and shap's memory. Needs shap: the `model-server-explain` "
        "image (the default image refuses to start with it on).",
    ),
    EnvVar("MLOPS_SERVE_HOST", "host", str, "127.0.0.1", "Address to bind. `--host` overrides."),
    EnvVar("MLOPS_SERVE_PORT", "port", int, 8080, "TCP port. `--port` overrides.", minimum=0),
    EnvVar(
        "MLOPS_SERVE_MAX_BODY_BYTES",
        "max_body_bytes",
        int,
        4 * 1024 * 1024,
        "Largest accepted request body; larger ones get 413.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_SERVE_HEADER_TIMEOUT_SECONDS",
        "header_timeout_seconds",
        float,
        10.0,
        "A connection whose request line and headers have not all arrived this long after it "
        "opened (or after the first byte of a later request on it) is closed: idle and "
        "slow-header connections cannot pile up.",
        minimum=0.1,
    ),
    EnvVar(
        "MLOPS_SERVE_BODY_TIMEOUT_SECONDS",
        "body_timeout_seconds",
        float,
        30.0,
        "A request whose body has not all arrived this long after its headers is dropped "
        "with its connection (30 s for a 4 MiB body is a floor of about 140 KB/s).",
        minimum=0.1,
    ),
    EnvVar(
        "MLOPS_SERVE_IDLE_TIMEOUT_SECONDS",
        "idle_timeout_seconds",
        float,
        75.0,
        "How long a kept-alive connection may wait for its next request. Keep it above the "
        "idle timeout of the load balancer in front (60 s on AWS ALB), or the balancer may "
        "reuse a connection the server is closing and answer 502.",
        minimum=0.1,
    ),
    EnvVar(
        "MLOPS_SERVE_MAX_CONNECTIONS",
        "max_connections",
        int,
        512,
        "Most open connections (and requests in progress); beyond it new requests are "
        "answered 503 at once. Bounds memory too: each may buffer up to "
        "`MLOPS_SERVE_MAX_BODY_BYTES`.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_SERVE_MAX_BATCH_ROWS",
        "max_batch_rows",
        int,
        512,
        "Most rows merged into one predict call by the micro-batcher (a single larger request "
        "still runs as one call).",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_SERVE_BATCH_WAIT_MS",
        "batch_wait_ms",
        float,
        0.0,
        "Extra time to wait for more requests before a predict call. 0 batches only what "
        "arrived while the previous call ran, which adds no latency at low load.",
        minimum=0,
    ),
    EnvVar(
        "MLOPS_SERVE_INFERENCE_THREADS",
        "inference_threads",
        int,
        1,
        "BLAS/OpenMP threads the model may use; 1 keeps single-row latency low on small nodes.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_SERVE_PREDICTION_SINK",
        "prediction_sink",
        str,
        "file",
        "Where request features and predictions are logged: `kafka`, `file` or `none`.",
        choices=get_args(PredictionSink),
    ),
    EnvVar(
        "MLOPS_SERVE_PREDICTION_FILE",
        "prediction_file",
        str,
        "/tmp/mlops-serve/predictions.jsonl",
        "JSON-lines file of the `file` sink (under /tmp so a read-only root filesystem works).",
    ),
    EnvVar(
        "MLOPS_SERVE_PREDICTION_FILE_MAX_BYTES",
        "prediction_file_max_bytes",
        int,
        64 * 1024 * 1024,
        "Size at which the `file` sink's file is rotated to `<file>.1`; with "
        "`MLOPS_SERVE_PREDICTION_FILE_BACKUPS` this caps the disk it uses (size the pod's "
        "`/tmp` volume above their product). 0 = never rotate.",
        minimum=0,
    ),
    EnvVar(
        "MLOPS_SERVE_PREDICTION_FILE_BACKUPS",
        "prediction_file_backups",
        int,
        2,
        "Rotated files kept (`<file>.1` newest ... `<file>.N`); older ones are deleted. 0 = "
        "the full file is deleted.",
        minimum=0,
    ),
    EnvVar(
        "MLOPS_SERVE_PREDICTION_QUEUE_SIZE",
        "prediction_queue_size",
        int,
        10_000,
        "Bounded queue between the serving path and the sink; records beyond it are dropped "
        "and counted, never waited for.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS",
        "kafka_bootstrap_servers",
        str,
        "",
        "Kafka bootstrap servers (`host:port,...`) of the `kafka` sink.",
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_TOPIC",
        "kafka_topic",
        str,
        "predictions",
        "Topic that prediction records are produced to.",
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_BUFFER_MESSAGES",
        "kafka_buffer_messages",
        int,
        100_000,
        "Messages the Kafka producer may hold in memory before new records are dropped.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL",
        "kafka_security_protocol",
        str,
        "PLAINTEXT",
        "How the `kafka` sink connects: `SSL` (TLS), `SASL_SSL` (TLS plus the SASL mechanism "
        "below, what MSK, GCP Managed Kafka and the platform's Strimzi listener require) or "
        "`PLAINTEXT` (local brokers only; logged as a warning).",
        choices=get_args(KafkaSecurityProtocol),
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_SASL_MECHANISM",
        "kafka_sasl_mechanism",
        str,
        "none",
        "SASL authentication with `SASL_SSL`: `SCRAM-SHA-512` (Strimzi `KafkaUser`; needs "
        "username and password), `OAUTHBEARER-AWS-MSK-IAM` (MSK IAM, token signed with the "
        "pod's AWS credentials, e.g. IRSA), `OAUTHBEARER-GCP-IAM` (GCP Managed Kafka, Google "
        "access token of the workload's service account).",
        choices=get_args(KafkaSaslMechanism),
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_SASL_USERNAME",
        "kafka_sasl_username",
        str,
        "",
        "SCRAM user name (the Strimzi `KafkaUser` name).",
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_SASL_PASSWORD",
        "kafka_sasl_password",
        str,
        "",
        "SCRAM password (key `password` of the `KafkaUser` Secret). "
        "Secret: never logged, never in error messages or `repr`.",
        secret=True,
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_CA_FILE",
        "kafka_ca_file",
        str,
        "",
        "PEM file of the CA(s) that sign the brokers' certificates (Strimzi: `ca.crt` of Secret "
        "`<cluster>-cluster-ca-cert`, mounted); empty = the system trust store (MSK, GCP).",
    ),
    EnvVar(
        "MLOPS_SERVE_KAFKA_AWS_REGION",
        "kafka_aws_region",
        str,
        "",
        "Region of the MSK cluster, for `OAUTHBEARER-AWS-MSK-IAM` tokens.",
        fallback="AWS_REGION",
    ),
    EnvVar(
        "MLOPS_SERVE_DRIFT_WINDOW_ROWS",
        "drift_window_rows",
        int,
        2_000,
        "Recent rows over which per-feature PSI against the training reference is computed.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_SERVE_DRAIN_SECONDS",
        "drain_seconds",
        float,
        20.0,
        "On SIGTERM, how long in-flight requests and then queued prediction records may take "
        "to finish before the process exits (keep below the pod's termination grace period).",
        minimum=0,
    ),
    EnvVar(
        "MLOPS_SERVE_LOG_LEVEL",
        "log_level",
        str,
        "info",
        "Log level of the server.",
        choices=("debug", "info", "warning", "error"),
    ),
    EnvVar(
        "MLOPS_SERVE_FEAST_URL",
        "feast_url",
        str,
        "",
        "Feast feature server (`http://feast-feature-server.feast.svc.cluster.local:6566`). "
        "Set, a v2 infer request whose only input is the entity key gets its features from "
        "Feast's `/get-online-features` (online_features.py); empty: requests carry features.",
    ),
    EnvVar(
        "MLOPS_SERVE_FEAST_FEATURES",
        "feast_features",
        str,
        "churn_model",
        "What to ask Feast for: a feature service name, or comma-separated `view:feature` "
        "references. Their names must be the model's input columns.",
    ),
    EnvVar(
        "MLOPS_SERVE_FEAST_ENTITY_KEY",
        "feast_entity_key",
        str,
        "customer_id",
        "The entity's join key: the one input tensor of a request that asks for online features.",
    ),
    EnvVar(
        "MLOPS_SERVE_FEAST_TIMEOUT_SECONDS",
        "feast_timeout_seconds",
        float,
        1.0,
        "How long to wait for Feast before answering 503.",
        minimum=0.01,
    ),
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings; build with `Settings.from_env` (defaults come from `REGISTRY`)."""

    model_uri: str
    model_name: str
    load_retry_initial_seconds: float
    load_retry_max_seconds: float
    example_endpoint: bool
    explain: bool
    host: str
    port: int
    max_body_bytes: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    idle_timeout_seconds: float
    max_connections: int
    max_batch_rows: int
    batch_wait_ms: float
    inference_threads: int
    prediction_sink: PredictionSink
    prediction_file: str
    prediction_file_max_bytes: int
    prediction_file_backups: int
    prediction_queue_size: int
    kafka_bootstrap_servers: str
    kafka_topic: str
    kafka_buffer_messages: int
    kafka_security_protocol: KafkaSecurityProtocol
    kafka_sasl_mechanism: KafkaSaslMechanism
    kafka_sasl_username: str
    kafka_sasl_password: str = field(repr=False)
    kafka_ca_file: str
    kafka_aws_region: str
    drift_window_rows: int
    drain_seconds: float
    log_level: str
    feast_url: str
    feast_features: str
    feast_entity_key: str
    feast_timeout_seconds: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every registered variable; `overrides` (e.g. CLI flags) win over the env."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var in REGISTRY:
            if var.field in overrides and overrides[var.field] is not None:
                value = overrides.pop(var.field)
                var.check(value)
                values[var.field] = value
            elif (text := var.raw(env)).strip() != "":
                values[var.field] = var.parse(text)
            elif var.fallback and env.get(var.fallback, "").strip() != "":
                values[var.field] = var.parse(env[var.fallback])
            else:
                values[var.field] = var.default
        unknown = {k for k, v in overrides.items() if v is not None}
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = cls(**values)
        if settings.prediction_sink == "kafka" and not settings.kafka_bootstrap_servers:
            raise SettingsError(
                "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS must be set when "
                "MLOPS_SERVE_PREDICTION_SINK=kafka"
            )
        if settings.load_retry_max_seconds < settings.load_retry_initial_seconds:
            raise SettingsError(
                f"MLOPS_SERVE_LOAD_RETRY_MAX_SECONDS={settings.load_retry_max_seconds:g} must be "
                f">= MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS={settings.load_retry_initial_seconds:g}"
            )
        _check_kafka_security(settings)
        if settings.feast_url and not settings.feast_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"MLOPS_SERVE_FEAST_URL={settings.feast_url!r} must be an http:// or https:// URL"
            )
        if settings.explain and importlib.util.find_spec("shap") is None:
            raise SettingsError(
                "MLOPS_SERVE_EXPLAIN=true needs shap, which this image leaves out: run the "
                "model-server-explain image (mlops_platform/components/serving deploys it when "
                "server_settings.explain is on)"
            )
        return settings


# MLflow's client retries every HTTP call itself, 7 times with exponential backoff (about four
# minutes) before it fails. The server's own loop (MLOPS_SERVE_LOAD_RETRY_*) does the waiting,
# says why once per attempt and stays responsive to SIGTERM, so one attempt should fail fast.
MLFLOW_CLIENT_DEFAULTS: Mapping[str, str] = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}


def apply_mlflow_client_defaults(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Set `MLFLOW_CLIENT_DEFAULTS` where the operator has not; returns what was set."""
    env: Any = os.environ if environ is None else environ
    applied = {}
    for name, value in MLFLOW_CLIENT_DEFAULTS.items():
        if env.get(name, "").strip() == "":
            env[name] = applied[name] = value
    return applied


def otel_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The OpenTelemetry SDK's own variables (`OTEL_*`, see tracing.py): they are the SDK's
    registry, documented by OpenTelemetry, so they are passed through rather than listed here."""
    env = os.environ if environ is None else environ
    return {name: value for name, value in env.items() if name.startswith("OTEL_")}


def _check_kafka_security(s: Settings) -> None:
    """Combinations that would be ignored or could never authenticate stop the start-up."""
    protocol, mechanism = s.kafka_security_protocol, s.kafka_sasl_mechanism
    p_var, m_var = "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL", "MLOPS_SERVE_KAFKA_SASL_MECHANISM"
    if mechanism != "none" and protocol != "SASL_SSL":
        raise SettingsError(f"{m_var}={mechanism} needs {p_var}=SASL_SSL, not {protocol}")
    if protocol == "SASL_SSL" and mechanism == "none":
        raise SettingsError(
            f"{p_var}=SASL_SSL needs {m_var} (one of {', '.join(get_args(KafkaSaslMechanism)[1:])})"
        )
    credentials = {
        "MLOPS_SERVE_KAFKA_SASL_USERNAME": s.kafka_sasl_username,
        "MLOPS_SERVE_KAFKA_SASL_PASSWORD": s.kafka_sasl_password,
    }
    if mechanism in SCRAM_MECHANISMS:
        missing = [name for name, value in credentials.items() if not value]
        if missing:
            raise SettingsError(f"{' and '.join(missing)} must be set when {m_var}={mechanism}")
    else:
        present = [name for name, value in credentials.items() if value]
        if present:
            raise SettingsError(
                f"{' and '.join(present)} are only used with {m_var}=SCRAM-SHA-256 or "
                f"SCRAM-SHA-512, not {mechanism}"
            )
    if s.kafka_ca_file and protocol == "PLAINTEXT":
        raise SettingsError(f"MLOPS_SERVE_KAFKA_CA_FILE is set but {p_var}=PLAINTEXT uses no TLS")
    if mechanism == "OAUTHBEARER-AWS-MSK-IAM":
        if not s.kafka_aws_region:
            raise SettingsError(
                f"MLOPS_SERVE_KAFKA_AWS_REGION (or AWS_REGION) must be set when {m_var}={mechanism}"
            )
        if not _AWS_REGION.fullmatch(s.kafka_aws_region):
            raise SettingsError(
                f"MLOPS_SERVE_KAFKA_AWS_REGION={s.kafka_aws_region!r} is not an AWS region "
                "(like eu-west-1)"
            )


def _check_registry_matches_dataclass() -> None:
    # A field without a variable (or the reverse) would silently never be configurable.
    registry_fields = [v.field for v in REGISTRY]
    dataclass_fields = [f.name for f in fields(Settings)]
    if registry_fields != dataclass_fields:
        raise RuntimeError(f"REGISTRY {registry_fields} != Settings {dataclass_fields}")


_check_registry_matches_dataclass()


def markdown_table(registry: tuple[EnvVar, ...] = REGISTRY) -> str:
    """The settings table of the README, generated so both say the same thing."""
    rows = ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for var in registry:
        default = f"`{var.default}`" if var.default != "" else "(empty)"
        description = var.description
        if var.choices:
            description += f" One of: {', '.join(f'`{c}`' for c in var.choices)}."
        if var.fallback:
            description += f" Unset: `{var.fallback}`."
        if var.secret:
            description += (
                f" Or `{var.name}{FILE_SUFFIX}`: a file holding it (a mounted Secret key)."
            )
        rows.append(f"| `{var.name}` | {var.type.__name__} | {default} | {description} |")
    return "\n".join(rows)
