"""The one root model of a stack's configuration, and the two ways it is loaded.

A stack file (`stacks/Pulumi.<stack>.yaml`) holds, under `config:`, keys in the project's
namespace (`mlops:cloud`, `mlops:storage`, ...) beside provider keys (`aws:region`). Every
`mlops:` key is a field of `PlatformConfig`; an unknown one is an error. The program validates
the config once, before any resource is registered, and an invalid config is reported as one
error listing every bad field with its dotted path and the stack file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import core_schema

from mlops_platform import wiring
from mlops_platform.components.base import StrictModel
from mlops_platform.components.cloud import Cloud
from mlops_platform.components.cluster import CLOUD_ONLY_SETTINGS as CLUSTER_CLOUD_ONLY
from mlops_platform.components.cluster import SYSTEM_POOL_TYPES, ClusterConfig
from mlops_platform.components.delivery import DeliveryConfig
from mlops_platform.components.feast import (
    ElastiCacheConfig,
    FeastConfig,
    MemorystoreConfig,
    RedisConfig,
)
from mlops_platform.components.feast import config_problems as feast_problems
from mlops_platform.components.feast import feature_server_url as feast_server_url
from mlops_platform.components.gpu import GPU_POOL_TYPES, GpuPools, pool_problems
from mlops_platform.components.identity import (
    WorkloadIdentityConfig,
    check_buckets,
    check_identity_name,
)
from mlops_platform.components.images import ImagesConfig, floating_problems
from mlops_platform.components.kafka import (
    KafkaConfig,
    ManagedKafkaConfig,
    MskConfig,
    StrimziConfig,
    msk_client_subnets,
)
from mlops_platform.components.kafka import cloud_problems as kafka_problems
from mlops_platform.components.loop import LoopConfig
from mlops_platform.components.loop import config_problems as loop_problems
from mlops_platform.components.mesh import MeshConfig
from mlops_platform.components.mlflow import CloudSqlConfig, MlflowConfig, PostgresConfig, RdsConfig
from mlops_platform.components.mlflow import config_problems as mlflow_problems
from mlops_platform.components.mlflow import tracking_uri as mlflow_tracking_uri
from mlops_platform.components.monitoring import MonitoringConfig
from mlops_platform.components.pipelines import PipelinesConfig, pipelines_problems
from mlops_platform.components.secret_config import SECRET_PLACEHOLDER, mark_engine_secrets
from mlops_platform.components.serving import ServingDeployments
from mlops_platform.components.storage import GcsConfig, MinioConfig, S3Config, StorageConfig

NAMESPACE = "mlops"

# Pluggable backends: where each `type:` block is, and the backend each cloud runs (its model).
# A block may leave out `type` (or be left out): the cloud's own is filled in. The key `*`
# stands for every entry of a map of blocks (each GPU pool); those are not made up when absent.
EVERY_ENTRY = "*"
BACKENDS: dict[tuple[str, str], dict[str, type[StrictModel]]] = {
    ("cluster", "system_pool"): SYSTEM_POOL_TYPES,
    ("gpu_pools", EVERY_ENTRY): GPU_POOL_TYPES,
    ("kafka", "backend"): {"aws": MskConfig, "gcp": ManagedKafkaConfig, "local": StrimziConfig},
    ("storage", "backend"): {"aws": S3Config, "gcp": GcsConfig, "local": MinioConfig},
    ("feast", "online_store"): {
        "aws": ElastiCacheConfig,
        "gcp": MemorystoreConfig,
        "local": RedisConfig,
    },
    ("mlflow", "database"): {"aws": RdsConfig, "gcp": CloudSqlConfig, "local": PostgresConfig},
}


def _type_of(model: type[StrictModel]) -> str:
    return str(model.model_fields["type"].default)


def with_backend_types(data: Any) -> tuple[Any, list[tuple[str, str]]]:
    """`data` (the `mlops:` values) with every backend block's `type` filled in from the cloud,
    and (dotted path, message) for a type that is not the cloud's."""
    if not isinstance(data, Mapping):
        return data, []
    cloud = data.get("cloud")
    cloud_type = cloud.get("type") if isinstance(cloud, Mapping) else None
    if cloud_type not in ("aws", "gcp", "local"):
        return data, []  # the cloud's own error says why
    filled = dict(data)
    problems: list[tuple[str, str]] = []
    for (section, key), by_cloud in BACKENDS.items():
        block = filled.get(section, {})
        if not isinstance(block, Mapping):
            continue  # the section's own error
        keys = list(block) if key == EVERY_ENTRY else [key]
        wanted = _type_of(by_cloud[cloud_type])
        completed = dict(block)
        for entry in keys:
            backend = block.get(entry)
            if backend is None:
                backend = {}
            if not isinstance(backend, Mapping):
                continue
            given = backend.get("type", wanted)
            if given != wanted:
                owner = next((c for c, m in by_cloud.items() if _type_of(m) == given), None)
                runs_on = f"{given!r} runs on {owner}" if owner else f"{given!r} is no backend"
                problems.append(
                    (
                        f"{section}.{entry}.type",
                        f"{runs_on}; this stack's cloud is {cloud_type}: use {wanted!r} (or "
                        "leave `type` out)",
                    )
                )
                continue
            completed[entry] = {**backend, "type": wanted}
        filled[section] = completed
    return filled, problems


# Keys that became a backend block's (UPGRADING.md), for the error an old stack file gets.
MOVED = {
    ("kafka", "msk"): "kafka.backend (type: msk)",
    ("kafka", "managed_kafka"): "kafka.backend (type: managed_kafka)",
    ("kafka", "strimzi"): "kafka.backend (type: strimzi)",
    ("storage", "minio"): "storage.backend (type: minio)",
    ("storage", "kms_key"): "storage.backend.kms_key",
    ("storage", "access_log_retention_days"): "storage.backend.access_log_retention_days",
}
# Settings a `type:` block names differently from the key they replace (beside the cloud
# prefix, which `_backend_field_hint` strips itself): (section, key, type, old field) -> new.
RENAMED = {
    ("gpu_pools", EVERY_ENTRY, "gke", "instance_type"): "machine_type",
}


def _renamed(loc: tuple[Any, ...]) -> str | None:
    """The new name of the setting at `loc` (section, entry, type, field), if it was renamed."""
    if len(loc) != 4:
        return None
    section, _, kind, field = (str(part) for part in loc)
    for (renamed_section, _key, renamed_kind, old), new in RENAMED.items():
        if (renamed_section, renamed_kind, old) == (section, kind, field):
            return new
    return None


def _backend_field_hint(loc: tuple[Any, ...], data: Mapping[str, Any]) -> str | None:
    """For an unknown field in a backend block that another backend has: whose it is; for a
    key that moved into a backend block: where it is now."""
    if tuple(loc) in MOVED:
        return f"unknown field: moved to {MOVED[tuple(loc)]}, see UPGRADING.md"
    for (section, key), by_cloud in BACKENDS.items():
        if len(loc) != 4 or loc[0] != section or key not in (loc[1], EVERY_ENTRY):
            continue
        kind, field = str(loc[2]), str(loc[3])
        cloud = data.get("cloud", {}).get("type")
        renamed = RENAMED.get((section, key, kind, field))
        if renamed is not None:
            return f"unknown field: named {renamed} in a `type: {kind}` block, see UPGRADING.md"
        prefix = next((p for p in ("aws_", "gcp_", "local_") if field.startswith(p)), None)
        bare = field.removeprefix(prefix) if prefix else field
        owners = [
            f"{_type_of(model)} ({owner_cloud})"
            for owner_cloud, model in by_cloud.items()
            if _type_of(model) != kind and bare in model.model_fields
        ]
        if prefix is not None and any(
            _type_of(model) == kind and bare in model.model_fields for model in by_cloud.values()
        ):
            return (
                f"unknown field: a `type:` block names its settings without the cloud prefix "
                f"({field} -> {bare}), see UPGRADING.md"
            )
        if owners:
            setting = "a setting" if bare == field else f"now {bare}, a setting"
            return (
                f"unknown field for type {kind!r}: {setting} of {', '.join(owners)}; this "
                f"stack's cloud is {cloud}"
            )
        if prefix is not None:
            return (
                f"unknown field: a `type:` block names its settings without the cloud prefix "
                f"({field} -> {bare}), see UPGRADING.md"
            )
    return None


class PlatformConfig(StrictModel):
    """Everything that differs between environments. Defaults are the secure choice."""

    # pydantic's own error text quotes the input; a refused secret must not be in it.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    cloud: Cloud = Field(
        description="Where the platform runs: aws, gcp or an existing local cluster."
    )
    protect_stateful: bool = Field(
        default=False,
        description="Protect stateful resources (buckets, databases, Kafka) from deletion and "
        "retain them if removed from the program. On in production.",
    )
    cluster: ClusterConfig = Field(
        default_factory=ClusterConfig, description="Network and Kubernetes cluster."
    )
    gpu_pools: GpuPools = Field(
        default_factory=dict,
        description="GPU node pools keyed by pool name (the key names the node group and label).",
    )
    storage: StorageConfig = Field(
        default_factory=StorageConfig, description="Object storage: a map of buckets."
    )
    workload_identities: dict[str, WorkloadIdentityConfig] = Field(
        default_factory=dict,
        description="Extra Kubernetes service accounts allowed to use named buckets without "
        "static keys, keyed by identity name. The platform derives its own (MLflow, the "
        "pipeline runner, Feast, every serving service account, the loop's consumer: "
        "mlops_platform/wiring.py); an entry for one of those service accounts adds bucket grants to it.",
    )
    feast: FeastConfig = Field(
        default_factory=FeastConfig,
        description="Feast feature store: registry and offline Parquet in the object store, "
        "Redis online store (ElastiCache, Memorystore or in-cluster), the feature server.",
    )
    delivery: DeliveryConfig = Field(
        default_factory=DeliveryConfig,
        description="Progressive delivery: Flagger and its load tester, for the serving "
        "deployments with `progressive`.",
    )
    kafka: KafkaConfig = Field(
        default_factory=KafkaConfig,
        description="Kafka and its topics: MSK on AWS, Managed Kafka on GCP, Strimzi locally.",
    )
    images: ImagesConfig = Field(
        default_factory=ImagesConfig,
        description="Where images are pulled from: an optional mirror registry for every image.",
    )
    mesh: MeshConfig = Field(
        default_factory=MeshConfig,
        description="Istio service mesh (mTLS between workloads, canary routing for serving).",
    )
    mlflow: MlflowConfig = Field(
        default_factory=MlflowConfig,
        description="MLflow tracking server and model registry (PostgreSQL, artifacts in the "
        "object store, basic auth).",
    )
    monitoring: MonitoringConfig = Field(
        default_factory=MonitoringConfig,
        description="Prometheus, Alertmanager and Grafana, with the platform's model alerts.",
    )
    loop: LoopConfig = Field(
        default_factory=LoopConfig,
        description="The retrain receiver: Alertmanager's drift alerts start the drift/retrain "
        "pipeline on KFP (deduplicated, rate-limited per model).",
    )
    pipelines: PipelinesConfig = Field(
        default_factory=PipelinesConfig,
        description="Kubeflow Pipelines (standalone), with artifacts in the object store.",
    )
    serving: ServingDeployments = Field(
        default_factory=dict,
        description="Models served by the model server (stable and canary tracks behind Istio), "
        "keyed by deployment name.",
    )

    @model_validator(mode="before")
    @classmethod
    def _backend_types(cls, data: Any) -> Any:
        """Each backend block's `type` from the cloud (see `with_backend_types`)."""
        filled, problems = with_backend_types(data)
        if problems:
            path, message = problems[0]
            raise ValueError(f"{path}: {message}")
        return filled

    @model_validator(mode="before")
    @classmethod
    def _serving_tracking_uri(cls, data: Any) -> Any:
        """A serving deployment loads its models through the platform's MLflow unless it names
        another tracking server: filled in before the deployment's own check requires one."""
        if not isinstance(data, Mapping) or not isinstance(data.get("serving"), Mapping):
            return data
        mlflow = data.get("mlflow")
        namespace = mlflow.get("namespace") if isinstance(mlflow, Mapping) else None
        uri = mlflow_tracking_uri(namespace if isinstance(namespace, str) else "mlflow")
        serving = {
            key: {"mlflow_tracking_uri": uri, **deployment}
            if isinstance(deployment, Mapping)
            else deployment
            for key, deployment in data["serving"].items()
        }
        return {**data, "serving": serving}

    def cross_field_problems(self) -> list[tuple[str, str]]:
        """Checks that span components, as (dotted path, message)."""
        problems = list(pool_problems(self.gpu_pools, self.cloud))
        for identity, identity_config in self.workload_identities.items():
            try:
                check_identity_name(identity)
                check_buckets(identity, identity_config, self.storage.buckets)
            except ValueError as exc:  # the messages start with the dotted path
                path, _, message = str(exc).partition(": ")
                problems.append((path, message))
        problems += kafka_problems(self.kafka, self.cloud.type)
        problems += mlflow_problems(self.mlflow, self.storage.buckets, self.workload_identities)
        problems += feast_problems(self.feast, self.storage.buckets, self.workload_identities)
        problems += loop_problems(self.loop, set(self.storage.buckets))
        problems += pipelines_problems(
            self.pipelines, self.storage.buckets, self.workload_identities
        )
        if self.cloud.type == "aws":
            try:  # MSK spreads brokers evenly over the cluster's (up to 3) zones
                msk_client_subnets(self.cluster.network.availability_zones, self.kafka.brokers)
            except ValueError as exc:
                path, _, message = str(exc).partition(": ")
                problems.append((path, message))
        problems += self._serving_problems()
        problems += self._consumer_problems()
        if self.protect_stateful:  # production: what the stack file sets is pinned by digest
            problems += floating_problems(self)
        return problems

    def _consumer_problems(self) -> list[tuple[str, str]]:
        """The loop's consumer (created when a deployment logs to the platform's Kafka)."""
        topics = consumed_topics(self)
        if not topics:
            return []
        problems = []
        *logged, labels = topics
        if len(logged) > 1:
            problems.append(
                (
                    "serving",
                    f"the loop's consumer reads one predictions topic; the deployments log to "
                    f"{', '.join(logged)}",
                )
            )
        for topic, path in ((logged[0], "serving"), (labels, "loop.consumer.labels_topic")):
            if topic not in self.kafka.topics:
                problems.append((path, f"topic {topic!r} is not in kafka.topics"))
        return problems

    def _serving_problems(self) -> list[tuple[str, str]]:
        problems = []
        for key, deployment in self.serving.items():
            account = deployment.service_account
            if not self.mesh.enabled:
                problems.append(
                    (
                        f"serving.{key}",
                        "routes its traffic with Istio (DestinationRule, VirtualService), "
                        "but mesh.enabled is false",
                    )
                )
            secrets = {
                (client.namespace, client.secret_name) for client in self.mlflow.clients.values()
            }
            wanted = deployment.credentials_secret
            if (
                wanted is not None
                and wanted.startswith("mlflow-")
                and (deployment.namespace, wanted) not in secrets
            ):
                problems.append(
                    (
                        f"serving.{key}.credentials_secret",
                        f"{wanted!r} is not the Secret of any mlflow.clients entry in namespace "
                        f"{deployment.namespace!r}",
                    )
                )
            feast = self.feast
            if (
                deployment.online_features
                and deployment.feature_server_url in (None, feast_server_url(feast.namespace))
                and deployment.namespace not in (feast.namespace, *feast.client_namespaces)
            ):
                problems.append(
                    (
                        f"serving.{key}.online_features",
                        f"the feature server admits feast.client_namespaces "
                        f"{feast.client_namespaces!r}; add {deployment.namespace!r} there",
                    )
                )
            if deployment.progressive is not None and not self.delivery.enabled:
                problems.append(
                    (
                        f"serving.{key}.progressive",
                        "Flagger runs the analysis, but delivery.enabled is false",
                    )
                )
            if deployment.progressive is not None and loop_mlflow_client(self) is None:
                problems.append(
                    (
                        f"serving.{key}.progressive",
                        "the loop service moves the model's MLflow aliases after each rollout: "
                        "add an mlflow.clients entry in namespace "
                        f"{self.loop.namespace!r} with permission EDIT or MANAGE",
                    )
                )
            if deployment.prediction_sink == "kafka" and deployment.kafka_bootstrap_servers is None:
                if account is None and self.cloud.type != "local":
                    problems.append(
                        (
                            f"serving.{key}.service_account",
                            "required to log predictions to the platform's Kafka: its workload "
                            "identity carries the Kafka grant (MSK IAM, Managed Kafka)",
                        )
                    )
                if f"serving-{key}" in self.kafka.strimzi.users:
                    problems.append(
                        (
                            "kafka.backend.users",
                            f"'serving-{key}' is the Kafka user of serving.{key}; rename it",
                        )
                    )
        return problems


# Settings that only one cloud reads and that are not a backend's `type:` block (those refuse
# another backend's fields themselves, see BACKENDS): a `<cloud>_` prefix (today only
# `workload_identities.<x>.gcp_account_id`).
# Maps whose keys are the user's own names, not settings (a pipeline parameter may be `aws_x`).
_FREE_FORM = {"tags", "labels", "parameters", "server_settings", "annotations", "node_selector"}


def wrong_cloud_problems(values: Mapping[str, Any], cloud: str) -> list[tuple[str, str]]:
    """(dotted path, message) for every setting of another cloud than `cloud`: ignored by the
    components, so most likely a stack file copied from another environment."""
    problems: list[tuple[str, str]] = []

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, Mapping):
            return
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            owner = next((c for c in ("aws", "gcp", "local") if str(key).startswith(f"{c}_")), None)
            if owner is not None and owner != cloud and value is not None:
                problems.append((where, f"only read on {owner}; this stack's cloud is {cloud}"))
            elif str(key) not in _FREE_FORM:
                walk(value, where)

    walk({k: v for k, v in values.items() if k != "cloud"}, "")
    # Cluster settings one cloud reads, named by the cluster model (no prefix in their keys).
    cluster = values.get("cluster")
    for path, owner in CLUSTER_CLOUD_ONLY.items():
        node: Any = cluster
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None and owner != cloud:
            problems.append(
                (f"cluster.{path}", f"only read on {owner}; this stack's cloud is {cloud}")
            )
    return problems


def consumed_topics(platform: PlatformConfig) -> list[str]:
    """What the loop's consumer reads (mlops_platform/wiring.py)."""
    return wiring.consumed_topics(platform)


def loop_mlflow_client(platform: PlatformConfig) -> Any:
    """The MLflow client the loop service writes aliases and tags with, or None."""
    return next(
        (
            client
            for _, client in sorted(platform.mlflow.clients.items())
            if client.namespace == platform.loop.namespace
            and client.permission in ("EDIT", "MANAGE")
        ),
        None,
    )


class ConfigError(Exception):
    """Invalid stack configuration: every problem, each with its dotted path, and the file."""

    def __init__(self, source: str, problems: Iterable[tuple[str, str]]):
        self.source = source
        self.problems = list(problems)
        lines = [f"invalid stack config in {source}:"]
        lines += [f"  - {path}: {message}" for path, message in self.problems]
        super().__init__("\n".join(lines))


def _dotted(loc: tuple[Any, ...], data: Any) -> str:
    """`('cloud', 'aws', 'region')` -> `cloud.region`: drop discriminator tags pydantic inserts."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(node, Mapping) and item not in node and node.get("type") == item:
            continue  # the tag of a discriminated union, not a key the user wrote
        parts.append(f"[{item}]" if isinstance(item, int) else str(item))
        node = node.get(item) if isinstance(node, Mapping) else None
    return ".".join(parts).replace(".[", "[")


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


def _problem(path: str, message: str) -> tuple[str, str]:
    """A validator that knows a deeper path says so first (`gpu_pools.x: ...`): keep that one."""
    head, sep, rest = message.partition(": ")
    if sep and " " not in head and head.startswith(path):
        path, message = head, rest
    return f"{NAMESPACE}:{path}", message


def validate(
    values: Mapping[str, Any], source: str, secret_keys: Iterable[str] = ()
) -> PlatformConfig:
    """Validate the `mlops:` keys of a flat config map (full key -> decoded value).

    `secret_keys` are the full keys the engine marked secret: only strings under them may fill
    a `SecretValue` field (mlops_platform/components/secret_config.py)."""
    secret = set(secret_keys)
    ours = {
        key.split(":", 1)[1]: mark_engine_secrets(value) if key in secret else value
        for key, value in values.items()
        if key.split(":", 1)[0] == NAMESPACE
    }
    ours, wrong_types = with_backend_types(ours)
    if wrong_types:
        raise ConfigError(
            source, [(f"{NAMESPACE}:{path}", message) for path, message in wrong_types]
        )
    try:
        # what the stack says, completed with what the platform derives from it
        platform = wiring.effective(PlatformConfig.model_validate(ours))
    except ValidationError as exc:
        errors = exc.errors()
        # A renamed setting given under its old name is one mistake: its "unknown field" error
        # names the new one, so the new name's "Field required" would only repeat it.
        renamed_to = {
            (*err["loc"][:-1], _renamed(err["loc"]))
            for err in errors
            if err["type"] == "extra_forbidden" and _renamed(err["loc"])
        }
        problems = [
            _problem(
                _dotted(err["loc"], ours),
                (err["type"] == "extra_forbidden" and _backend_field_hint(err["loc"], ours))
                or _message(err),
            )
            for err in errors
            if not (err["type"] == "missing" and tuple(err["loc"]) in renamed_to)
        ]
        raise ConfigError(source, problems) from None
    cross = wrong_cloud_problems(ours, platform.cloud.type) + platform.cross_field_problems()
    if cross:
        raise ConfigError(source, [(f"{NAMESPACE}:{path}", message) for path, message in cross])
    return platform


class StackFile(StrictModel):
    """A stack file as read from disk: its config values and which of them are secret."""

    path: str
    values: dict[str, Any]
    secret_keys: frozenset[str]

    def engine_config(self) -> dict[str, str]:
        """The config map as the Pulumi engine hands it to the program: objects as JSON."""
        return {key: _engine_string(value) for key, value in self.values.items()}


def _engine_string(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def read_stack_file(path: str | Path) -> StackFile:
    """Read a stack file. Secure values become a placeholder; their keys are listed as secret."""
    path = Path(path)
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(source, [("<file>", "stack file not found")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("<file>", f"not valid YAML: {exc}")]) from None
    if not isinstance(document, dict):
        raise ConfigError(source, [("<file>", "expected a mapping with a `config:` key")])
    unknown = sorted(
        set(document) - {"config", "secretsprovider", "encryptedkey", "encryptionsalt"}
    )
    if unknown:
        raise ConfigError(
            source, [(key, "unknown top-level key in a stack file") for key in unknown]
        )
    raw = document.get("config") or {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [("config", "expected a mapping of config keys")])
    values: dict[str, Any] = {}
    secret_keys: set[str] = set()
    for key, value in raw.items():
        if ":" not in str(key):
            key = f"{NAMESPACE}:{key}"  # Pulumi prefixes bare keys with the project name
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.add(key)
            value = SECRET_PLACEHOLDER
        values[key] = value
    return StackFile(path=source, values=values, secret_keys=frozenset(secret_keys))


def load_stack_file(path: str | Path) -> PlatformConfig:
    stack_file = read_stack_file(path)
    return validate(stack_file.values, stack_file.path, stack_file.secret_keys)


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def from_pulumi_runtime() -> PlatformConfig:
    """Validate the config the engine handed to this program (`pulumi up` / `preview`)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    source = f"stacks/Pulumi.{pulumi.get_stack()}.yaml"
    secret_keys = set(runtime_config.get_config_secret_keys_env()) | {
        key for key in values if runtime_config.is_config_secret(key)
    }
    return validate({key: _decode(value) for key, value in values.items()}, source, secret_keys)


class _FactoryDefaults(GenerateJsonSchema):
    """States the defaults that `default_factory` builds when they are lists or maps (the
    default buckets, topics, namespaces), through pydantic's documented hook; a nested model's
    defaults are stated on its own fields instead."""

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = factory()  # type: ignore[call-arg]
            if isinstance(value, list | tuple | dict):
                return value
        return super().get_default_value(schema)


def json_schema() -> dict[str, Any]:
    """JSON Schema of a stack file, for editor completion (`stacks/stack.schema.json`)."""
    model_schema = PlatformConfig.model_json_schema(
        ref_template="#/$defs/{model}", schema_generator=_FactoryDefaults
    )
    defs = model_schema.pop("$defs", {})
    properties = {
        f"{NAMESPACE}:{field}": schema for field, schema in model_schema["properties"].items()
    }
    required = [f"{NAMESPACE}:{field}" for field in model_schema.get("required", [])]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mlops-platform stack file",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "description": "The stack's configuration: `mlops:<key>` settings (below) beside "
                "the providers' own keys (`aws:region`, `gcp:project`, `kubernetes:context`).",
                "properties": properties,
                "required": required,
                # other namespaces (aws:, gcp:, kubernetes:) belong to the providers
                "patternProperties": {f"^(?!{NAMESPACE}:)[^:]+:.+$": {}},
                "additionalProperties": False,
            },
            # Written by the Pulumi CLI (`pulumi stack init --secrets-provider`), not by hand.
            "secretsprovider": {
                "type": "string",
                "description": "Pulumi: the secrets provider encrypting this stack's secret "
                "values (e.g. `awskms://...`, `gcpkms://...`); empty: the backend's passphrase.",
            },
            "encryptedkey": {
                "type": "string",
                "description": "Pulumi: the stack's data key, encrypted by `secretsprovider`.",
            },
            "encryptionsalt": {
                "type": "string",
                "description": "Pulumi: the salt of the passphrase secrets provider.",
            },
        },
        "required": ["config"],
        "additionalProperties": False,
        "$defs": defs,
    }
