"""Feast feature store, pure layer: config model, the rendered feature_store.yaml and every
Kubernetes object.

One `FeastConfig` describes the platform's feature store: the registry is a file in a bucket of
the object store (`s3://`/`gs://.../registry.db`), the offline store is Feast's `file` (Dask) or
`duckdb` store over Parquet in that bucket, the online store is Redis (ElastiCache for Valkey on
AWS, Memorystore for Redis on GCP, the official Redis image in the cluster locally), and the
platform's Feast image (images/feast) serves it (`feast serve`, HTTP on 6566).

Plain data in, plain dicts and text out. No function here receives a password: the rendered
feature_store.yaml holds `${FEAST_REDIS_PASSWORD}`, which Feast itself expands from the
environment when it loads the file (`load_repo_config` runs `os.path.expandvars`), and the
server's entrypoint sets that variable from the Secret's key mounted as a read-only file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from mlops_platform.components import kube
from mlops_platform.components.base import StrictModel
from mlops_platform.components.identity.model import WorkloadIdentityConfig, credential_files
from mlops_platform.components.kube import (
    check_dns_label,
    check_limit_covers_request,
    check_pinned_image,
    check_quantity,
    container_resources,
    is_quantity,
    quantity_value,
)
from mlops_platform.components.versions import FEAST_IMAGE, REDIS_IMAGE

CloudType = Literal["aws", "gcp", "local"]
OfflineStoreType = Literal["file", "duckdb"]

# Kubernetes object names inside the namespace (one feature store per namespace).
SERVER_NAME = "feast-feature-server"
CONFIG_MAP_NAME = "feast-feature-store"
SECRET_NAME = "feast-online-store"
REDIS_NAME = "feast-redis"
CONTAINER_NAME = "feature-server"
MANAGED_BY = kube.MANAGED_BY

PORT = 6566
REDIS_PORT = 6379
HEALTH_PATH = "/health"
CHECKSUM_ANNOTATION = "mlops.platform/feature-store-checksum"

# Keys of the ConfigMap and the Secret.
FEATURE_STORE_YAML_KEY = "feature_store.yaml"
REDIS_CA_KEY = "redis-server-ca.pem"
REDIS_PASSWORD_KEY = "redis-password"
REDIS_CONF_KEY = "redis.conf"
# What feature_store.yaml names instead of the password; the pod sets it from the Secret.
PASSWORD_ENV = "FEAST_REDIS_PASSWORD"

# The repo directory `feast --chdir` points at: the ConfigMap mounted read-only.
REPO_DIR = "/etc/feast"
REDIS_CA_PATH = f"{REPO_DIR}/{REDIS_CA_KEY}"
TMP_MOUNT = "/tmp"
# The platform's Feast image (images/feast/Dockerfile) runs as its `feast` user, uid 10001, like
# the platform's other images.
RUN_AS_USER = 10001
# The official redis image's `redis` user and group.
REDIS_UID = 999
REDIS_DATA_MOUNT = "/data"
REDIS_CONF_DIR = "/etc/redis"
# Share of the container memory limit Redis may fill with data (the rest: buffers, fork for
# the AOF rewrite).
REDIS_MAXMEMORY_SHARE = 0.7

# Stand-ins for provider Outputs when objects are rendered and checked before creation.
PLACEHOLDER_BUCKET_URI = "s3://bucket"
PLACEHOLDER_REDIS_HOST = "redis.invalid"

_PROJECT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$")
_HOST = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_AWS_NODE_TYPE = re.compile(r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
_AWS_KEY = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$")
# ElastiCache replication group ids and Memorystore instance names agree on this shape.
_IDENTIFIER = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")


def check_identifier(value: str, field: str) -> str:
    """A name valid as an ElastiCache replication group id and a Memorystore instance name."""
    if not _IDENTIFIER.match(value) or "--" in value:
        raise ValueError(
            f"{field} {value!r} must be 1-40 lowercase letters, digits or '-', starting with a "
            "letter, ending with a letter or digit, without '--'"
        )
    return value


# --- config -----------------------------------------------------------------------------------


class RegistryConfig(StrictModel):
    """Feast's registry: one protobuf file in a bucket of the object store."""

    bucket: str = Field(
        default="features",
        description="Logical bucket (a key of `storage.buckets`) holding the registry and the "
        "offline Parquet data.",
    )
    path: str = Field(
        default="feast/registry.db", description="Object key of the registry file in the bucket."
    )
    cache_ttl_seconds: int = Field(
        default=60,
        ge=0,
        le=86400,
        description="How long clients and the feature server keep the registry before "
        "reading it again (0: never refresh).",
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_key(cls, value: str) -> str:
        return check_dns_label(value, "bucket")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if len(value) > 500 or not _PREFIX.match(value) or not value.endswith(".db"):
            raise ValueError(
                f"path {value!r} must be a relative object key of lowercase letters, digits, "
                "'.', '_', '-' and '/', ending in .db"
            )
        return value


class OfflineStoreConfig(StrictModel):
    """Historical features: Parquet files in the registry's bucket, read by the client."""

    type: OfflineStoreType = Field(
        default="file",
        description="`file` (Feast's Dask store) or `duckdb`; both read Parquet from s3:// and "
        "gs:// directly.",
    )
    data_prefix: str = Field(
        default="feast/data",
        description="Path in the bucket where feature tables (Parquet) are written.",
    )

    @field_validator("data_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if len(value) > 200 or not _PREFIX.match(value):
            raise ValueError(
                f"data_prefix {value!r} must be a relative path of lowercase letters, digits, "
                "'.', '_', '-' and '/' (no leading or trailing '/')"
            )
        return value


class _ManagedRedisConfig(StrictModel):
    """What ElastiCache and Memorystore share (both always use TLS and AUTH)."""

    replicas: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Read replicas beside the primary; at least 1 turns on automatic failover "
        "(ElastiCache Multi-AZ, Memorystore STANDARD_HA).",
    )
    key_ttl_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Expire entity keys this long after their last write (Feast's "
        "`key_ttl_seconds`); null keeps them.",
    )
    identifier: str | None = Field(
        default=None,
        description="ElastiCache replication group id / Memorystore instance name. Default: "
        "`<project>-<stack>-feast`.",
    )

    @field_validator("identifier")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None:
            check_identifier(value, "identifier")
        return value


class ElastiCacheConfig(_ManagedRedisConfig):
    """AWS: an ElastiCache for Redis OSS replication group."""

    type: Literal["elasticache"] = Field(
        default="elasticache", description="ElastiCache for Redis OSS (AWS stacks)."
    )
    node_type: str = Field(default="cache.t4g.small", description="ElastiCache node type.")
    kms_key_arn: str | None = Field(
        default=None,
        description="Customer key for at-rest encryption. Default: the ElastiCache service "
        "key. Data is encrypted at rest either way.",
    )
    snapshot_retention_days: int = Field(
        default=1,
        ge=0,
        le=35,
        description="Days of automatic snapshots (0: none; the online store can be rebuilt by "
        "materializing again).",
    )

    @field_validator("node_type")
    @classmethod
    def _node_type(cls, value: str) -> str:
        if not _AWS_NODE_TYPE.match(value):
            raise ValueError(f"node_type {value!r} must look like cache.t4g.small")
        return value

    @field_validator("kms_key_arn")
    @classmethod
    def _kms(cls, value: str | None) -> str | None:
        if value is not None and not _AWS_KEY.match(value):
            raise ValueError(
                f"kms_key_arn {value!r} must be a KMS key ARN "
                "(arn:aws:kms:<region>:<account>:key/<id>)"
            )
        return value


class MemorystoreConfig(_ManagedRedisConfig):
    """GCP: a Memorystore for Redis instance."""

    type: Literal["memorystore"] = Field(
        default="memorystore", description="Memorystore for Redis (GCP stacks)."
    )
    memory_size_gb: int = Field(default=1, ge=1, le=300, description="Capacity in GiB.")
    persistence: bool = Field(default=True, description="Daily RDB snapshots.")
    deletion_protection: bool | None = Field(
        default=None,
        description="Refuse to delete the instance. Default: the stack's `protect_stateful`.",
    )


class RedisConfig(StrictModel):
    """Local: one Redis pod (a StatefulSet) that requires the generated password; only the
    feature server and `client_namespaces` reach it."""

    type: Literal["redis"] = Field(default="redis", description="Redis in the cluster (local).")
    memory_limit: str = Field(
        default="1Gi",
        description="Memory limit of the Redis pod; Redis's maxmemory is 70 % of it.",
    )
    storage_gb: int = Field(
        default=5, ge=1, le=1024, description="Size of the append-only-file volume."
    )
    storage_class: str | None = Field(
        default=None, description="StorageClass of the volume; null: the cluster default."
    )
    key_ttl_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Expire entity keys this long after their last write (Feast's "
        "`key_ttl_seconds`); null keeps them.",
    )

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not is_quantity(value) or quantity_value(value) < 64 * 2**20:
            raise ValueError(
                f"memory_limit {value!r} must be a Kubernetes quantity of at least 64Mi"
            )
        return value

    @field_validator("storage_class")
    @classmethod
    def _storage_class(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 253 or not _HOST.match(value)):
            raise ValueError(f"storage_class {value!r} is not a valid StorageClass name")
        return value


# The Redis online store, a `type:` block: only the chosen backend's fields are accepted.
OnlineStoreConfig = Annotated[
    ElastiCacheConfig | MemorystoreConfig | RedisConfig, Field(discriminator="type")
]


class ServerConfig(StrictModel):
    """The feature server Deployment (`feast serve`)."""

    image: str = Field(
        default=FEAST_IMAGE,
        description="The Feast image (the platform's by default: Feast with the S3 and GCS "
        "filesystems), pinned by tag or digest; the apply Job, the materialization CronJob and "
        "the feature server run it.",
    )
    replicas: int = Field(default=2, ge=1, le=50, description="Feature-server pods.")
    workers: int = Field(default=2, ge=1, le=16, description="Worker processes in each pod.")
    cpu_request: str = Field(default="250m", description="CPU request.")
    memory_request: str = Field(default="512Mi", description="Memory request.")
    memory_limit: str = Field(default="1Gi", description="Memory limit (at least the request).")
    tmp_size_limit: str = Field(default="256Mi", description="Size limit of the /tmp emptyDir.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Feast's log level."
    )

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        return check_pinned_image(value)

    @field_validator("cpu_request", "memory_request", "memory_limit", "tmp_size_limit")
    @classmethod
    def _quantity(cls, value: str, info) -> str:
        return check_quantity(value, info.field_name)

    @model_validator(mode="after")
    def _limit_covers_request(self) -> ServerConfig:
        check_limit_covers_request("memory", self.memory_request, self.memory_limit)
        return self


_CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")


class MaterializationConfig(StrictModel):
    """The CronJob that runs `feast materialize-incremental`: offline Parquet to Redis."""

    schedule: str = Field(
        default="0 * * * *",
        description="When to materialize: a five-field Kubernetes CronJob schedule (UTC) or a "
        "macro such as `@hourly`. Each run loads what arrived since the previous one.",
    )
    suspend: bool = Field(
        default=False,
        description="Stop scheduling runs (running ones finish); the online store keeps what "
        "it has.",
    )
    deadline_seconds: int = Field(
        default=3000,
        ge=60,
        le=86400,
        description="A run still going after this long is stopped and counts as failed.",
    )
    cpu_request: str = Field(default="250m", description="CPU request of a run.")
    memory_request: str = Field(default="1Gi", description="Memory request of a run.")
    memory_limit: str = Field(
        default="2Gi", description="Memory limit of a run (at least the request)."
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        fields = value.split()
        macro = len(fields) == 1 and fields[0] in (
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        )
        if not macro and (len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields)):
            raise ValueError(
                f"schedule {value!r} must be five cron fields (minute hour day-of-month month "
                "day-of-week) or a macro such as @hourly"
            )
        return value

    @field_validator("cpu_request", "memory_request", "memory_limit")
    @classmethod
    def _quantity(cls, value: str, info) -> str:
        return check_quantity(value, info.field_name)

    @model_validator(mode="after")
    def _limit_covers_request(self) -> MaterializationConfig:
        check_limit_covers_request("memory", self.memory_request, self.memory_limit)
        return self


class FeastConfig(StrictModel):
    """The feature store (root config key `feast`)."""

    namespace: str = Field(
        default="feast",
        description="Namespace of every object; the workload identity of `service_account` "
        "must live here too.",
    )
    service_account: str = Field(
        default="feast",
        description="Existing service account of the feature server: a `workload_identities` "
        "entry with `read_write` on `registry.bucket`.",
    )
    project: str = Field(
        default="mlops",
        description="Feast project name: lowercase letters, digits and '_' (it prefixes the "
        "Redis keys).",
    )
    client_namespaces: list[str] = Field(
        default_factory=lambda: ["kubeflow", "serving"],
        description="Namespaces whose pods may call the feature server (and, locally, reach "
        "Redis to materialize). Pods of `namespace` always may.",
    )
    registry: RegistryConfig = Field(
        default_factory=RegistryConfig,
        description="Where Feast's registry (one protobuf file) is kept in the object store.",
    )
    offline_store: OfflineStoreConfig = Field(
        default_factory=OfflineStoreConfig,
        description="Historical features: Parquet files in the registry's bucket, read by "
        "the client (training, materialisation).",
    )
    online_store: OnlineStoreConfig | None = Field(
        default=None,
        description="The Redis online store, a `type:` block with only that backend's "
        "settings: `elasticache` (AWS), `memorystore` (GCP) or `redis` (local, a StatefulSet). "
        "The type follows the stack's cloud: omit it (or the whole block) and the cloud's own "
        "is used.",
    )

    # The online store's settings, for the resource layer: the block of that type, else its
    # defaults (the root config fills `online_store` in from the cloud).
    @property
    def elasticache(self) -> ElastiCacheConfig:
        store = self.online_store
        return store if isinstance(store, ElastiCacheConfig) else ElastiCacheConfig()

    @property
    def memorystore(self) -> MemorystoreConfig:
        store = self.online_store
        return store if isinstance(store, MemorystoreConfig) else MemorystoreConfig()

    @property
    def redis(self) -> RedisConfig:
        return self.online_store if isinstance(self.online_store, RedisConfig) else RedisConfig()

    server: ServerConfig = Field(
        default_factory=ServerConfig,
        description="The feature server Deployment (`feast serve`): replicas, resources.",
    )
    materialization: MaterializationConfig = Field(
        default_factory=MaterializationConfig,
        description="The scheduled `feast materialize-incremental` of the churn feature "
        "views (the feature repository in mlops_platform/components/feast/repo, applied by a Job).",
    )

    @field_validator("namespace", "service_account")
    @classmethod
    def _dns_label(cls, value: str, info) -> str:
        return check_dns_label(value, info.field_name)

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _PROJECT.match(value):
            raise ValueError(
                f"project {value!r} must be 1-63 lowercase letters, digits or '_', starting "
                "with a letter"
            )
        return value

    @field_validator("client_namespaces")
    @classmethod
    def _client_namespaces(cls, values: list[str]) -> list[str]:
        for value in values:
            check_dns_label(value, "client_namespaces entry")
        if len(set(values)) != len(values):
            raise ValueError(f"client_namespaces {values!r} has duplicates")
        return values


# --- cross-field checks (for the root config) -------------------------------------------------


def config_problems(
    config: FeastConfig,
    bucket_keys: Iterable[str],
    identities: Mapping[str, WorkloadIdentityConfig],
) -> list[tuple[str, str]]:
    """(dotted path, message) for what only the whole stack can tell: the bucket exists and a
    workload identity gives the server's service account read_write on it (`feast apply` and
    the server's registry refresh go through the same identity)."""
    known = sorted(bucket_keys)
    bucket = config.registry.bucket
    if bucket not in known:
        return [
            (
                "feast.registry.bucket",
                f"unknown bucket {bucket!r}; storage.buckets has "
                f"{', '.join(repr(b) for b in known) or 'none'}",
            )
        ]
    matching = [
        key
        for key, identity in identities.items()
        if (identity.namespace, identity.service_account)
        == (config.namespace, config.service_account)
    ]
    if not matching:
        return [
            (
                "feast.service_account",
                f"no workload_identities entry for {config.namespace}/{config.service_account}; "
                f"declare one with buckets: {{{bucket}: read_write}}",
            )
        ]
    if identities[matching[0]].buckets.get(bucket) != "read_write":
        return [
            (
                f"workload_identities.{matching[0]}.buckets",
                f"the feature store writes its registry: {bucket!r} must be read_write",
            )
        ]
    return []


# --- names, endpoints and feature_store.yaml --------------------------------------------------


def default_identifier(bucket_prefix: str) -> str:
    """`<project>-<stack>-feast` (the storage prefix), checked as an identifier."""
    return check_identifier(
        f"{bucket_prefix}-feast",
        "feast.online_store.identifier (set it to choose another name)",
    )


def service_host(namespace: str) -> str:
    return f"{SERVER_NAME}.{namespace}.svc.cluster.local"


def feature_server_url(namespace: str) -> str:
    return f"http://{service_host(namespace)}:{PORT}"


def redis_host(namespace: str) -> str:
    """Local: the headless Service of the one Redis pod."""
    return f"{REDIS_NAME}.{namespace}.svc.cluster.local"


def registry_uri(bucket_uri: str, path: str) -> str:
    return f"{bucket_uri.rstrip('/')}/{path}"


def offline_data_uri(bucket_uri: str, prefix: str) -> str:
    return f"{bucket_uri.rstrip('/')}/{prefix}"


@dataclass(frozen=True)
class RedisEndpoint:
    """Where the online store is and how to reach it."""

    host: str
    port: int
    tls: bool
    # A CA file the client must trust (Memorystore signs with a per-instance CA); None: the
    # system trust store (ElastiCache's certificates chain to Amazon's public roots).
    ca_file: str | None = None
    # Memorystore is reached by IP and its certificate names no IP: the pinned per-instance
    # CA is what authenticates the server there.
    check_hostname: bool = True


def redis_endpoint(cloud: CloudType, host: str, port: int) -> RedisEndpoint:
    if cloud == "aws":
        return RedisEndpoint(host=host, port=port, tls=True)
    if cloud == "gcp":
        return RedisEndpoint(
            host=host, port=port, tls=True, ca_file=REDIS_CA_PATH, check_hostname=False
        )
    return RedisEndpoint(host=host, port=port, tls=False)


def connection_string(endpoint: RedisEndpoint, password_ref: str = f"${{{PASSWORD_ENV}}}") -> str:
    """Feast's `host:port,key=value,...` form; values pass through json.loads into redis-py
    (`ssl=true` becomes True). The password is a reference Feast expands, never the value."""
    parts = [f"{endpoint.host}:{endpoint.port}"]
    if endpoint.tls:
        parts.append("ssl=true")
        if endpoint.ca_file:
            parts.append(f"ssl_ca_certs={endpoint.ca_file}")
        if not endpoint.check_hostname:
            parts.append("ssl_check_hostname=false")
    parts.append(f"password={password_ref}")
    return ",".join(parts)


def feature_store_config(
    config: FeastConfig, bucket_uri: str, endpoint: RedisEndpoint
) -> dict[str, Any]:
    """feature_store.yaml as a dict (what Feast's RepoConfig validates)."""
    online: dict[str, Any] = {
        "type": "redis",
        "redis_type": "redis",
        "connection_string": connection_string(endpoint),
    }
    key_ttl_seconds = getattr(config.online_store, "key_ttl_seconds", None)
    if key_ttl_seconds is not None:
        online["key_ttl_seconds"] = key_ttl_seconds
    return {
        "project": config.project,
        # `local`: the stores below are all named explicitly; materialization runs in the
        # process that asks for it (a pipeline step or the server's /materialize).
        "provider": "local",
        "registry": {
            "registry_type": "file",
            "path": registry_uri(bucket_uri, config.registry.path),
            "cache_ttl_seconds": config.registry.cache_ttl_seconds,
        },
        "offline_store": {"type": config.offline_store.type},
        "online_store": online,
        "entity_key_serialization_version": 3,
    }


def feature_store_yaml(config: FeastConfig, bucket_uri: str, endpoint: RedisEndpoint) -> str:
    return yaml.safe_dump(
        feature_store_config(config, bucket_uri, endpoint), sort_keys=False, width=1000
    )


def redis_conf(password: str, memory_limit: str) -> str:
    """The local Redis server's config file (it lives in the Secret: it holds the password)."""
    maxmemory = int(quantity_value(memory_limit) * REDIS_MAXMEMORY_SHARE)
    lines = [
        "bind * -::*",
        f"port {REDIS_PORT}",
        "protected-mode yes",
        f"requirepass {password}",
        f"dir {REDIS_DATA_MOUNT}",
        "appendonly yes",
        "appendfsync everysec",
        f"maxmemory {maxmemory}",
        # A full online store refuses writes (materialization fails loudly) rather than
        # silently evicting features that serving then misses.
        "maxmemory-policy noeviction",
    ]
    return "\n".join(lines) + "\n"


# The online store's password, mounted read-only (the server's and Redis' own probe read it).
PASSWORD_VOLUME = "online-store-password"
PASSWORD_FILE = f"{kube.secret_dir(PASSWORD_VOLUME)}/{REDIS_PASSWORD_KEY}"


def _password_volume() -> dict[str, Any]:
    return kube.secret_volume(PASSWORD_VOLUME, SECRET_NAME, [REDIS_PASSWORD_KEY])


# --- labels -----------------------------------------------------------------------------------


def selector_labels(component: str) -> dict[str, str]:
    return kube.app_selector("feast", component)


def object_labels(component: str) -> dict[str, str]:
    return kube.app_labels("feast", component)


def _metadata(name: str, namespace: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": object_labels(component)}


# --- the feature server -----------------------------------------------------------------------


def config_map(config: FeastConfig, store_yaml: str, redis_ca: str | None = None) -> dict[str, Any]:
    """feature_store.yaml (and Memorystore's CA certificate): nothing secret."""
    data = {FEATURE_STORE_YAML_KEY: store_yaml}
    if redis_ca is not None:
        data[REDIS_CA_KEY] = redis_ca
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(CONFIG_MAP_NAME, config.namespace, "feature-server"),
        "data": data,
    }


def secret_metadata(config: FeastConfig) -> dict[str, Any]:
    """Only the envelope: the resource layer fills `stringData` from secret Outputs."""
    return _metadata(SECRET_NAME, config.namespace, "online-store")


def secret_keys(cloud: CloudType) -> list[str]:
    keys = [REDIS_PASSWORD_KEY]
    if cloud == "local":
        keys.append(REDIS_CONF_KEY)
    return keys


def server_command(config: FeastConfig) -> list[str]:
    """The image has no entrypoint of its own; `feast` reads <chdir>/feature_store.yaml."""
    return [
        "feast",
        "--chdir",
        REPO_DIR,
        "--log-level",
        config.server.log_level,
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--workers",
        str(config.server.workers),
        "--registry_ttl_sec",
        str(config.registry.cache_ttl_seconds),
    ]


def server_entrypoint(config: FeastConfig) -> list[str]:
    """`server_command` with FEAST_REDIS_PASSWORD set from its file. Feast expands `${VAR}` in
    feature_store.yaml from its environment only and its Redis store takes the password only in
    the connection string (no file option), so a shell sets it from the file and execs
    `feast`: the password is in no pod spec and no file but the Secret's."""
    return kube.env_from_files_command({PASSWORD_ENV: PASSWORD_FILE}, server_command(config))


def server_env(
    config: FeastConfig, cloud: CloudType, aws_region: str | None = None
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": TMP_MOUNT},
        {"name": "TMPDIR", "value": TMP_MOUNT},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    if cloud == "aws":
        if not aws_region:
            raise ValueError("aws_region is required on AWS (boto3 signs for the bucket region)")
        env += [
            {"name": "AWS_REGION", "value": aws_region},
            {"name": "AWS_DEFAULT_REGION", "value": aws_region},
        ]
    if cloud == "local":
        # MinIO: Feast's S3 registry store passes FEAST_S3_ENDPOINT_URL (unset here) to boto3,
        # which then takes `endpoint_url` and the user's keys from the identity's files.
        env += credential_files(config.service_account).env
    return env


def server_container(
    config: FeastConfig, cloud: CloudType, aws_region: str | None = None
) -> dict[str, Any]:
    server = config.server
    health = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}
    spec: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": server.image,
        "imagePullPolicy": "IfNotPresent",
        "command": server_entrypoint(config),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": server_env(config, cloud, aws_region),
        "resources": container_resources(
            server.cpu_request, server.memory_request, server.memory_limit
        ),
        # /health answers 200 only once the registry loads: gate traffic on it, but restart
        # only a pod whose port is gone (a bucket outage must not restart every pod).
        "startupProbe": kube.probe(health, 5, 60),
        "readinessProbe": kube.probe(health, 5, 3),
        "livenessProbe": kube.probe({"tcpSocket": {"port": "http"}}, 10, 3),
        "securityContext": kube.restricted_container_security(RUN_AS_USER),
        "volumeMounts": [
            {"name": "feature-store", "mountPath": REPO_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": TMP_MOUNT},
            kube.secret_volume_mount(PASSWORD_VOLUME),
        ],
    }
    if cloud == "local":
        spec["volumeMounts"].append(credential_files(config.service_account).mount)
    return spec


def server_volumes(config: FeastConfig, cloud: CloudType) -> list[dict[str, Any]]:
    volumes = [
        {"name": "feature-store", "configMap": {"name": CONFIG_MAP_NAME, "defaultMode": 0o444}},
        {"name": "tmp", "emptyDir": {"sizeLimit": config.server.tmp_size_limit}},
        _password_volume(),
    ]
    if cloud == "local":
        volumes.append(credential_files(config.service_account).volume)
    return volumes


def config_checksum(config_map_data: Mapping[str, str]) -> str:
    """Changes with the ConfigMap's content: in the pod template, it rolls the pods."""
    text = "".join(f"{key}\0{config_map_data[key]}\0" for key in sorted(config_map_data))
    return hashlib.sha256(text.encode()).hexdigest()


def deployment(
    config: FeastConfig,
    cloud: CloudType,
    aws_region: str | None = None,
    checksum: str | None = None,
) -> dict[str, Any]:
    selector = selector_labels("feature-server")
    annotations = {"kubectl.kubernetes.io/default-container": CONTAINER_NAME}
    if checksum is not None:
        annotations[CHECKSUM_ANNOTATION] = checksum
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(SERVER_NAME, config.namespace, "feature-server"),
        "spec": {
            "replicas": config.server.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {
                    "labels": object_labels("feature-server"),
                    "annotations": annotations,
                },
                "spec": {
                    "serviceAccountName": config.service_account,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": kube.restricted_pod_security(RUN_AS_USER),
                    "containers": [server_container(config, cloud, aws_region)],
                    "volumes": server_volumes(config, cloud),
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": key,
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector},
                            "matchLabelKeys": ["pod-template-hash"],
                        }
                        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
                    ],
                },
            },
        },
    }


def service(config: FeastConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(SERVER_NAME, config.namespace, "feature-server"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels("feature-server"),
            "ports": [
                {
                    "name": "http",
                    "port": PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                    "appProtocol": "http",
                }
            ],
        },
    }


def pod_disruption_budget(config: FeastConfig) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(SERVER_NAME, config.namespace, "feature-server"),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels("feature-server")},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def _clients(config: FeastConfig) -> list[dict[str, Any]]:
    """Pods of the feast namespace and of every client namespace."""
    peers: list[dict[str, Any]] = [{"podSelector": {}}]
    peers += [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
        for namespace in config.client_namespaces
    ]
    return peers


def server_network_policy(config: FeastConfig) -> dict[str, Any]:
    """The server has no authentication of its own (and exposes /materialize and /push):
    only the platform's client namespaces reach it."""
    return kube.ingress_network_policy(
        _metadata(SERVER_NAME, config.namespace, "feature-server"),
        selector_labels("feature-server"),
        _clients(config),
        PORT,
    )


# --- local Redis ------------------------------------------------------------------------------


def redis_statefulset(config: FeastConfig) -> dict[str, Any]:
    """The official redis image, non-root on a read-only root. Its entrypoint skips the
    chown/gosu step when started unprivileged; the config file (with requirepass) comes from
    the Secret, so the password is in no argv and no environment of the server. The probe's
    redis-cli takes the password from REDISCLI_AUTH (not argv), set from the mounted file only
    inside the probe's shell."""
    online = config.redis
    ping = {
        "exec": {
            "command": [
                "sh",
                "-c",
                f'REDISCLI_AUTH="$(cat {REDIS_CONF_DIR}/{REDIS_PASSWORD_KEY})" && '
                "export REDISCLI_AUTH && "
                f'[ "$(redis-cli -h 127.0.0.1 -p {REDIS_PORT} ping)" = PONG ]',
            ]
        }
    }
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{online.storage_gb}Gi"}},
    }
    if online.storage_class is not None:
        claim_spec["storageClassName"] = online.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(REDIS_NAME, config.namespace, "online-store"),
        "spec": {
            "serviceName": REDIS_NAME,
            "replicas": 1,
            "selector": {"matchLabels": selector_labels("online-store")},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": object_labels("online-store")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": kube.restricted_pod_security(REDIS_UID),
                    "containers": [
                        {
                            "name": "redis",
                            "image": REDIS_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "args": ["redis-server", f"{REDIS_CONF_DIR}/{REDIS_CONF_KEY}"],
                            "ports": [
                                {"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": online.memory_limit},
                            },
                            "startupProbe": kube.probe(ping, 5, 60),
                            "readinessProbe": kube.probe(ping, 5, 3),
                            "livenessProbe": kube.probe({"tcpSocket": {"port": "redis"}}, 10, 6),
                            "securityContext": kube.restricted_container_security(REDIS_UID),
                            "volumeMounts": [
                                {"name": "data", "mountPath": REDIS_DATA_MOUNT},
                                {"name": "config", "mountPath": REDIS_CONF_DIR, "readOnly": True},
                                {"name": "tmp", "mountPath": TMP_MOUNT},
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "config",
                            "secret": {
                                "secretName": SECRET_NAME,
                                "items": [
                                    {"key": REDIS_CONF_KEY, "path": REDIS_CONF_KEY},
                                    {"key": REDIS_PASSWORD_KEY, "path": REDIS_PASSWORD_KEY},
                                ],
                                "defaultMode": kube.SECRET_FILE_MODE,
                            },
                        },
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                    ],
                },
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim_spec}],
        },
    }


def redis_service(config: FeastConfig) -> dict[str, Any]:
    """Headless: the StatefulSet's governing Service; its name resolves to the one pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(REDIS_NAME, config.namespace, "online-store"),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels("online-store"),
            "ports": [
                {"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}
            ],
        },
    }


def redis_network_policy(config: FeastConfig) -> dict[str, Any]:
    """The feature server and the client namespaces (materialization jobs write to Redis
    directly) reach Redis; nothing else does."""
    return kube.ingress_network_policy(
        _metadata(REDIS_NAME, config.namespace, "online-store"),
        selector_labels("online-store"),
        _clients(config),
        REDIS_PORT,
    )


# --- everything -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """Every Kubernetes object of the feature store, as the API server would receive it."""

    config_map: dict[str, Any]
    deployment: dict[str, Any]
    service: dict[str, Any]
    pod_disruption_budget: dict[str, Any]
    network_policy: dict[str, Any]
    redis_statefulset: dict[str, Any] | None = None
    redis_service: dict[str, Any] | None = None
    redis_network_policy: dict[str, Any] | None = None

    def objects(self) -> list[dict[str, Any]]:
        found = [
            self.config_map,
            self.deployment,
            self.service,
            self.pod_disruption_budget,
            self.network_policy,
        ]
        return found + [
            obj
            for obj in (self.redis_statefulset, self.redis_service, self.redis_network_policy)
            if obj is not None
        ]


def render(
    config: FeastConfig,
    cloud: CloudType,
    bucket_uri: str,
    redis_host_name: str,
    redis_port: int,
    aws_region: str | None = None,
    redis_ca: str | None = None,
) -> Rendered:
    """All objects for `cloud`; `bucket_uri` is the registry bucket's URI."""
    if cloud == "gcp" and redis_ca is None:
        raise ValueError("redis_ca is required on GCP (Memorystore's server CA certificate)")
    endpoint = redis_endpoint(cloud, redis_host_name, redis_port)
    local = cloud == "local"
    rendered_config_map = config_map(
        config, feature_store_yaml(config, bucket_uri, endpoint), redis_ca
    )
    return Rendered(
        config_map=rendered_config_map,
        deployment=deployment(
            config, cloud, aws_region, config_checksum(rendered_config_map["data"])
        ),
        service=service(config),
        pod_disruption_budget=pod_disruption_budget(config),
        network_policy=server_network_policy(config),
        redis_statefulset=redis_statefulset(config) if local else None,
        redis_service=redis_service(config) if local else None,
        redis_network_policy=redis_network_policy(config) if local else None,
    )
