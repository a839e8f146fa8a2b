"""MLflow tracking server, pure layer: config model, connection strings and Kubernetes objects.

One `MlflowConfig` describes the platform's tracking server and model registry: `mlflow server`
from the official image, backed by PostgreSQL (RDS, Cloud SQL, or an in-cluster StatefulSet
locally), proxying artifacts to a bucket of the object store, behind MLflow's basic-auth app.
Everything here is plain data in, plain dicts out: every object validates against the pinned
Kubernetes version and is table-tested without Pulumi. No function here receives a password:
the Secret that holds them is filled by the resource layer, and every pod reads it as
read-only mounted files only (never through its environment).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import Field, field_validator, model_validator

from mlops_platform.components import kube
from mlops_platform.components.base import StrictModel
from mlops_platform.components.identity.model import WorkloadIdentityConfig, credential_files
from mlops_platform.components.kube import (
    DNS_LABEL,
    ContainerResourcesConfig,
    check_dns_label,
    check_pinned_image,
    check_quantity,
)
from mlops_platform.components.versions import MLFLOW_IMAGE, POSTGRES_IMAGE

# Kubernetes object names inside the namespace: one tracking server per namespace, so the
# in-cluster URI is the well-known http://mlflow.<namespace>.svc.cluster.local:5000.
SERVER_NAME = "mlflow"
POSTGRES_NAME = "mlflow-postgres"
CREDENTIALS_SECRET = "mlflow-credentials"
CONTAINER_NAME = "mlflow"
PORT = 5000
POSTGRES_PORT = 5432
DATABASE_NAME = "mlflow"
DATABASE_USER = "mlflow"
MANAGED_BY = kube.MANAGED_BY
# Stands in for the bucket URI (a provider Output) when objects are checked before creation.
PLACEHOLDER_ARTIFACTS_URI = "s3://bucket/mlflow"
# Stands in for a generated password in the Secrets checked before creation (never created).
PLACEHOLDER_PASSWORD = "generated-at-apply"

# Keys of the credentials Secret.
BACKEND_STORE_URI_KEY = "backend-store-uri"
AUTH_CONFIG_KEY = "basic-auth.ini"
ADMIN_USERNAME_KEY = "admin-username"
ADMIN_PASSWORD_KEY = "admin-password"
DATABASE_PASSWORD_KEY = "database-password"
# The basic-auth app refuses to start without it (CSRF tokens); all replicas must share it.
FLASK_SECRET_KEY_KEY = "flask-secret-key"
# The admin's credentials as MLflow's own credentials file (for the provisioning Job).
ADMIN_CREDENTIALS_KEY = "admin-credentials"

# MLflow client users: a Secret in each client's namespace (key `credentials` is MLflow's own
# credentials file, which a pod mounts at `$HOME/.mlflow/`; the other keys, the variables MLflow's
# client reads, are kept for Kubeflow Pipelines steps), and the provisioning Job's own Secret of
# passwords in the MLflow namespace (keyed by client key).
CLIENT_USERNAME_PREFIX = "svc-"
DEFAULT_CLIENT_SECRET = "mlflow-client-credentials"
CLIENT_URI_KEY = "MLFLOW_TRACKING_URI"
CLIENT_USERNAME_KEY = "MLFLOW_TRACKING_USERNAME"
CLIENT_PASSWORD_KEY = "MLFLOW_TRACKING_PASSWORD"
CLIENT_CREDENTIALS_KEY = "credentials"
CLIENT_SECRET_KEYS = (
    CLIENT_URI_KEY,
    CLIENT_USERNAME_KEY,
    CLIENT_PASSWORD_KEY,
    CLIENT_CREDENTIALS_KEY,
)
# MLflow's client reads `~/.mlflow/credentials` (mlflow.utils.credentials) when its variables
# are unset: the Secret volume holding it is mounted there.
CLIENT_CREDENTIALS_VOLUME = "mlflow-credentials"
CLIENT_PASSWORDS_SECRET = "mlflow-client-passwords"
PROVISIONER_NAME = "mlflow-provision-users"
PROVISIONER_CONTAINER = "provision-users"
PROVISIONER_DIR = "/etc/mlflow/provision"
PROVISIONER_SCRIPT = "provision_users.py"
PROVISIONER_USERS = "users.json"
PROVISIONER_PASSWORDS_VOLUME = "client-passwords"
PROVISIONER_PASSWORDS_DIR = kube.secret_dir(PROVISIONER_PASSWORDS_VOLUME)
PROVISIONER_SOURCE = Path(__file__).with_name(PROVISIONER_SCRIPT)
# Long enough to read the logs the next day; a `pulumi up --refresh` after that recreates the
# Job, which is harmless: the program converges and changes nothing.
PROVISIONER_TTL_SECONDS = 86400
PROVISIONER_BACKOFF_LIMIT = 4
PROVISIONER_DEADLINE_SECONDS = 900

AUTH_CONFIG_DIR = "/etc/mlflow/auth"
# The tracking server's own secrets as files: the backend store URI and the Flask key.
SERVER_SECRETS_VOLUME = "server-secrets"
SERVER_SECRETS_DIR = kube.secret_dir(SERVER_SECRETS_VOLUME)
TMP_MOUNT = "/tmp"
HEALTH_PATH = "/health"
# The image (python:3.11-slim + pip) has no user of its own: any unprivileged uid works when
# HOME points at a writable directory.
RUN_AS_USER = 10001
# The official postgres image's `postgres` user and group.
POSTGRES_UID = 999
POSTGRES_DATA_MOUNT = "/var/lib/postgresql/data"
# A subdirectory: a fresh volume's root may hold `lost+found`, which initdb refuses.
POSTGRES_PGDATA = f"{POSTGRES_DATA_MOUNT}/pgdata"
# initdb, the server's lock file and socket need these writable under a read-only root.
POSTGRES_RUN_DIR = "/var/run/postgresql"
POSTGRES_SECRETS_VOLUME = "database-password"
POSTGRES_SECRETS_DIR = kube.secret_dir(POSTGRES_SECRETS_VOLUME)

# Who may act on an object no permission was granted for (MLflow's own default is READ).
Permission = Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"]
# What a client user is granted on every experiment and registered model (MLflow's names).
ClientPermission = Literal["READ", "EDIT", "MANAGE"]
SslMode = Literal["require", "disable"]

# RDS instance identifiers and Cloud SQL instance names agree on this shape (no '--' either).
_INSTANCE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_HOST = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$")
_AWS_KEY = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$")
_AWS_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_GCP_TIER = re.compile(r"^db-(custom-[0-9]+-[0-9]+|f1-micro|g1-small)$")
# RDS gp3 volumes start at 20 GiB.
MIN_STORAGE_GB = 20


def check_instance_name(value: str, field: str) -> str:
    """A name valid as an RDS instance identifier and a Cloud SQL instance name."""
    if len(value) > 63 or not _INSTANCE_NAME.match(value) or "--" in value:
        raise ValueError(
            f"{field} {value!r} must be 1-63 lowercase letters, digits or '-', starting with a "
            "letter, ending with a letter or digit, without '--'"
        )
    return value


# --- config -----------------------------------------------------------------------------------


class _ManagedDatabaseConfig(StrictModel):
    """What RDS and Cloud SQL share: size, availability, backups, protection, name."""

    storage_gb: int = Field(
        default=MIN_STORAGE_GB,
        ge=MIN_STORAGE_GB,
        le=65536,
        description="Allocated storage (GiB).",
    )
    max_storage_gb: int = Field(
        default=100,
        ge=MIN_STORAGE_GB,
        le=65536,
        description="Storage grows automatically up to this many GiB.",
    )
    high_availability: bool = Field(
        default=False,
        description="A standby in another zone (RDS Multi-AZ, Cloud SQL REGIONAL).",
    )
    backup_retention_days: int = Field(
        default=7,
        ge=1,
        le=35,
        description="Days automated backups (and point-in-time recovery) are kept.",
    )
    deletion_protection: bool | None = Field(
        default=None,
        description="Refuse to delete the database instance. Default: the stack's "
        "`protect_stateful`.",
    )
    iam_authentication: bool = Field(
        default=False,
        description="Also allow IAM database authentication (RDS IAM auth, Cloud SQL IAM "
        "users). The tracking server itself uses the generated password.",
    )
    identifier: str | None = Field(
        default=None,
        description="RDS instance identifier / Cloud SQL instance name. Default: "
        "`<project>-<stack>-mlflow`.",
    )

    @field_validator("identifier")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None:
            check_instance_name(value, "identifier")
        return value

    @model_validator(mode="after")
    def _storage_ordered(self) -> _ManagedDatabaseConfig:
        if self.max_storage_gb < self.storage_gb:
            raise ValueError(
                f"max_storage_gb ({self.max_storage_gb}) must be at least storage_gb "
                f"({self.storage_gb})"
            )
        return self


class RdsConfig(_ManagedDatabaseConfig):
    """AWS: RDS for PostgreSQL."""

    type: Literal["rds"] = Field(default="rds", description="RDS for PostgreSQL (AWS stacks).")
    instance_class: str = Field(default="db.t4g.medium", description="RDS instance class.")
    kms_key_arn: str | None = Field(
        default=None,
        description="Customer key for storage encryption. Default: the account's `aws/rds` "
        "key. Storage is encrypted either way.",
    )

    @field_validator("instance_class")
    @classmethod
    def _instance_class(cls, value: str) -> str:
        if not _AWS_INSTANCE_CLASS.match(value):
            raise ValueError(f"instance_class {value!r} must look like db.t4g.medium")
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


class CloudSqlConfig(_ManagedDatabaseConfig):
    """GCP: Cloud SQL for PostgreSQL (Enterprise edition), private IP only."""

    type: Literal["cloud_sql"] = Field(
        default="cloud_sql", description="Cloud SQL for PostgreSQL (GCP stacks)."
    )
    tier: str = Field(
        default="db-custom-1-3840",
        description="Machine tier (`db-custom-<vCPU>-<MiB>`, Enterprise edition).",
    )

    @field_validator("tier")
    @classmethod
    def _tier(cls, value: str) -> str:
        # Custom and shared-core tiers exist only in the Enterprise edition, which is what the
        # instance is created with (PostgreSQL 16+ would otherwise default to Enterprise Plus).
        if not _GCP_TIER.match(value):
            raise ValueError(
                f"tier {value!r} must be db-custom-<vCPU>-<MiB>, db-f1-micro or db-g1-small"
            )
        return value


class PostgresConfig(StrictModel):
    """Local: PostgreSQL as a StatefulSet in the MLflow namespace."""

    type: Literal["postgres"] = Field(
        default="postgres", description="PostgreSQL in the cluster (local stacks)."
    )
    storage_gb: int = Field(
        default=MIN_STORAGE_GB,
        ge=MIN_STORAGE_GB,
        le=65536,
        description="Size of the volume claim (GiB).",
    )
    storage_class: str | None = Field(
        default=None,
        description="StorageClass of the volume claim; null uses the cluster default.",
    )

    @field_validator("storage_class")
    @classmethod
    def _storage_class(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 253 or not _HOST.match(value)):
            raise ValueError(f"storage_class {value!r} is not a valid StorageClass name")
        return value


# The PostgreSQL backend store, a `type:` block: only the chosen backend's fields are accepted.
DatabaseConfig = Annotated[RdsConfig | CloudSqlConfig | PostgresConfig, Field(discriminator="type")]


class AuthConfig(StrictModel):
    """MLflow's basic-auth app: every request but /health needs a user."""

    enabled: bool = Field(
        default=True,
        description="Run `mlflow server --app-name basic-auth`. Off, anyone who reaches the "
        "Service can read and change everything.",
    )
    admin_username: str = Field(
        default="admin",
        description="The admin user created on first start (its password is generated).",
    )
    default_permission: Permission = Field(
        default="READ",
        description="What an authenticated user may do on objects nobody granted them.",
    )

    @field_validator("admin_username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$", value):
            raise ValueError(
                f"admin_username {value!r} must be 1-63 letters, digits, '.', '_', '@' or '-'"
            )
        return value


class ResourcesConfig(ContainerResourcesConfig):
    """Requests and limits of the tracking-server container."""

    cpu_request: str = Field(default="250m", description="CPU request.")
    memory_request: str = Field(default="1Gi", description="Memory request.")
    memory_limit: str = Field(default="2Gi", description="Memory limit (at least the request).")
    tmp_size_limit: str = Field(
        default="1Gi", description="Size limit of the `/tmp` emptyDir (uploads in transit)."
    )

    @field_validator("tmp_size_limit")
    @classmethod
    def _tmp_size(cls, value: str, info) -> str:
        return check_quantity(value, info.field_name)


class ClientConfig(StrictModel):
    """An MLflow user for one client (a namespace's workloads), its credentials in a Secret
    there. The map key names it: the MLflow user is `svc-<key>`."""

    namespace: str = Field(description="Namespace of the client's pods; its Secret goes here.")
    permission: ClientPermission = Field(
        default="READ",
        description="Granted on every experiment and registered model: READ (look, load "
        "models), EDIT (also log runs, register versions, set aliases), MANAGE (also delete "
        "and grant). Never below the server's `auth.default_permission`.",
    )
    secret_name: str = Field(
        default=DEFAULT_CLIENT_SECRET,
        description="Secret with the client's credentials: key `credentials` (MLflow's "
        "credentials file, mounted at `$HOME/.mlflow/`) and MLFLOW_TRACKING_URI, "
        "MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD (for clients that read only "
        "their environment).",
    )
    password_version: int = Field(
        default=1,
        ge=1,
        description="Bump to rotate the password: a new one is generated, the Secrets updated "
        "and the user provisioned again.",
    )

    @field_validator("namespace", "secret_name")
    @classmethod
    def _dns_label(cls, value: str, info) -> str:
        return check_dns_label(value, info.field_name)


class MlflowConfig(StrictModel):
    """The tracking server and model registry (root config key `mlflow`)."""

    namespace: str = Field(
        default="mlflow",
        description="Namespace of every object; the workload identity of `service_account` "
        "must live here too.",
    )
    service_account: str = Field(
        default="mlflow",
        description="Existing service account of the pods: a `workload_identities` entry with "
        "`read_write` on `artifact_bucket` (IRSA, GKE Workload Identity or a MinIO user).",
    )
    artifact_bucket: str = Field(
        default="artifacts",
        description="Logical bucket (a key of `storage.buckets`) artifacts are proxied to.",
    )
    artifact_prefix: str = Field(
        default="mlflow", description="Path inside the bucket under which artifacts are kept."
    )
    image: str = Field(
        default=MLFLOW_IMAGE,
        description="MLflow image with the PostgreSQL and cloud-storage drivers (the official "
        "`-full` variant), pinned by tag or digest.",
    )
    replicas: int = Field(default=2, ge=1, le=20, description="Tracking-server pods.")
    workers: int = Field(
        default=2, ge=1, le=16, description="uvicorn worker processes in each pod."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra Host headers the server answers (e.g. an ingress host name); the "
        "Service's in-cluster names and localhost (port-forward) are always allowed.",
    )
    resources: ResourcesConfig = Field(
        default_factory=ResourcesConfig,
        description="Requests, memory limit and /tmp size of each tracking-server pod.",
    )
    database: DatabaseConfig | None = Field(
        default=None,
        description="The PostgreSQL backend store, a `type:` block with only that backend's "
        "settings: `rds` (AWS), `cloud_sql` (GCP) or `postgres` (local, a StatefulSet). The "
        "type follows the stack's cloud: omit it (or the whole block) and the cloud's own is "
        "used.",
    )
    auth: AuthConfig = Field(
        default_factory=AuthConfig,
        description="Basic auth: the default permission of new users and the clients' users "
        "(every request but /health needs one).",
    )
    clients: dict[str, ClientConfig] = Field(
        default_factory=dict,
        description="MLflow users for the platform's clients, keyed by a logical name (user "
        "`svc-<key>`), each with its credentials Secret in its namespace.",
    )
    ingress_namespaces: list[str] = Field(
        default_factory=list,
        description="Further namespaces whose pods may reach the tracking server (e.g. an "
        "ingress gateway's). Its own namespace and its clients' are always allowed; nothing "
        "else is (a NetworkPolicy). `kubectl port-forward` is not affected.",
    )

    @field_validator("namespace", "service_account")
    @classmethod
    def _dns_label(cls, value: str, info) -> str:
        return check_dns_label(value, info.field_name)

    @field_validator("ingress_namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for namespace in value:
            check_dns_label(namespace, "ingress_namespaces")
        return value

    @field_validator("artifact_bucket")
    @classmethod
    def _bucket_key(cls, value: str) -> str:
        if not DNS_LABEL.match(value):
            raise ValueError(
                f"artifact_bucket {value!r} must be a logical bucket key: lowercase letters, "
                "digits or '-'"
            )
        return value

    @field_validator("artifact_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value) or len(value) > 200:
            raise ValueError(
                f"artifact_prefix {value!r} must be a relative path of lowercase letters, "
                "digits, '.', '_', '-' and '/' (no leading or trailing '/')"
            )
        return value

    @field_validator("image")
    @classmethod
    def _pinned(cls, value: str) -> str:
        return check_pinned_image(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        for host in values:
            name = host.rsplit(":", 1)[0] if re.search(r":[0-9]+$", host) else host
            if host == "*" or len(name) > 253 or not _HOST.match(name):
                raise ValueError(
                    f"allowed_hosts: {host!r} must be a DNS name, optionally with :port "
                    "(no wildcards: they reopen DNS rebinding)"
                )
        return values

    @field_validator("clients")
    @classmethod
    def _client_keys(cls, clients: dict[str, ClientConfig]) -> dict[str, ClientConfig]:
        for key in clients:
            # The key names resources, a Secret key and (as svc-<key>) the MLflow user.
            if len(key) > 40 or not DNS_LABEL.match(key):
                raise ValueError(
                    f"clients: key {key!r} must be at most 40 lowercase letters, digits or "
                    "'-', starting and ending with a letter or digit"
                )
        return clients

    # The backend store's settings, for the resource layer: the block of that type, else its
    # defaults (the root config fills `database` in from the cloud, so a stack always has one).
    @property
    def rds(self) -> RdsConfig:
        return self.database if isinstance(self.database, RdsConfig) else RdsConfig()

    @property
    def cloud_sql(self) -> CloudSqlConfig:
        return self.database if isinstance(self.database, CloudSqlConfig) else CloudSqlConfig()

    @property
    def postgres(self) -> PostgresConfig:
        return self.database if isinstance(self.database, PostgresConfig) else PostgresConfig()

    @model_validator(mode="after")
    def _clients_consistent(self) -> MlflowConfig:
        if self.clients and not self.auth.enabled:
            raise ValueError(
                "clients need auth.enabled: without the basic-auth app there are no users"
            )
        seen: dict[tuple[str, str], str] = {}
        for key, client in sorted(self.clients.items()):
            if client_username(key) == self.auth.admin_username:
                raise ValueError(
                    f"clients.{key}: user {client_username(key)!r} is auth.admin_username"
                )
            where = (client.namespace, client.secret_name)
            if where in seen:
                raise ValueError(
                    f"clients.{key}.secret_name: {client.namespace}/{client.secret_name} is "
                    f"also clients.{seen[where]}'s Secret"
                )
            if client.namespace == self.namespace and client.secret_name in (
                CREDENTIALS_SECRET,
                CLIENT_PASSWORDS_SECRET,
            ):
                raise ValueError(
                    f"clients.{key}.secret_name: {client.secret_name!r} is the tracking "
                    f"server's own Secret in {self.namespace}"
                )
            seen[where] = key
        return self


# --- cross-field checks (for the root config) -------------------------------------------------


def config_problems(
    config: MlflowConfig,
    bucket_keys: Iterable[str],
    identities: Mapping[str, WorkloadIdentityConfig],
) -> list[tuple[str, str]]:
    """(dotted path, message) for what only the whole stack can tell: the bucket exists and a
    workload identity gives the server's service account read_write on it."""
    problems: list[tuple[str, str]] = []
    known = sorted(bucket_keys)
    if config.artifact_bucket not in known:
        problems.append(
            (
                "mlflow.artifact_bucket",
                f"unknown bucket {config.artifact_bucket!r}; storage.buckets has "
                f"{', '.join(repr(b) for b in known) or 'none'}",
            )
        )
        return problems
    matching = [
        key
        for key, identity in identities.items()
        if (identity.namespace, identity.service_account)
        == (config.namespace, config.service_account)
    ]
    if not matching:
        problems.append(
            (
                "mlflow.service_account",
                f"no workload_identities entry for {config.namespace}/{config.service_account}; "
                f"declare one with buckets: {{{config.artifact_bucket}: read_write}}",
            )
        )
    elif identities[matching[0]].buckets.get(config.artifact_bucket) != "read_write":
        problems.append(
            (
                f"workload_identities.{matching[0]}.buckets",
                f"the MLflow server writes artifacts: {config.artifact_bucket!r} must be "
                "read_write",
            )
        )
    return problems


# --- names and connection strings -------------------------------------------------------------


def default_identifier(bucket_prefix: str) -> str:
    """`<project>-<stack>-mlflow` (the storage prefix), checked as an instance name."""
    return check_instance_name(
        f"{bucket_prefix}-mlflow", "mlflow.database.identifier (set it to choose another name)"
    )


def service_host(namespace: str) -> str:
    return f"{SERVER_NAME}.{namespace}.svc.cluster.local"


def tracking_uri(namespace: str) -> str:
    return f"http://{service_host(namespace)}:{PORT}"


def client_username(key: str) -> str:
    """The MLflow user of `clients.<key>`."""
    return f"{CLIENT_USERNAME_PREFIX}{key}"


def client_password_file(key: str) -> str:
    """The provisioning Job's file holding the password of `clients.<key>` (a key of the
    passwords Secret, mounted)."""
    return f"{PROVISIONER_PASSWORDS_DIR}/{key}"


def postgres_host(namespace: str) -> str:
    return f"{POSTGRES_NAME}.{namespace}.svc.cluster.local"


def artifacts_destination(bucket_uri: str, prefix: str) -> str:
    return f"{bucket_uri.rstrip('/')}/{prefix}"


def backend_store_uri(host: str, password: str, ssl_mode: SslMode) -> str:
    """SQLAlchemy URL of the backend store (psycopg2 ships in the `-full` image)."""
    return (
        f"postgresql+psycopg2://{DATABASE_USER}:{quote(password, safe='')}@{host}:"
        f"{POSTGRES_PORT}/{DATABASE_NAME}?sslmode={ssl_mode}"
    )


def _ini_value(value: str) -> str:
    # MLflow reads the file with ConfigParser's default interpolation: '%' must be doubled.
    return value.replace("%", "%%")


def auth_config_ini(auth: AuthConfig, database_uri: str, admin_password: str) -> str:
    """The basic-auth app's config file. Users live in the backend database (MLflow 3.6+ keeps
    their migrations in `alembic_version_auth`, apart from the tracking schema's)."""
    lines = [
        "[mlflow]",
        f"default_permission = {auth.default_permission}",
        f"database_uri = {_ini_value(database_uri)}",
        f"admin_username = {auth.admin_username}",
        f"admin_password = {_ini_value(admin_password)}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
    ]
    return "\n".join(lines) + "\n"


def allowed_hosts(config: MlflowConfig) -> list[str]:
    """Host headers accepted (MLflow's DNS-rebinding guard): the Service's names, with and
    without the port, localhost for `kubectl port-forward`, and the configured extras."""
    namespace = config.namespace
    names = [
        SERVER_NAME,
        f"{SERVER_NAME}.{namespace}",
        f"{SERVER_NAME}.{namespace}.svc",
        service_host(namespace),
        "localhost",
    ]
    hosts = [host for name in names for host in (name, f"{name}:{PORT}")]
    return hosts + [host for host in config.allowed_hosts if host not in hosts]


def mlflow_credentials_file(username: str, password: str) -> str:
    """MLflow's client credentials file (`~/.mlflow/credentials`, read with ConfigParser's
    default interpolation: '%' doubled)."""
    return (
        "[mlflow]\n"
        f"mlflow_tracking_username = {_ini_value(username)}\n"
        f"mlflow_tracking_password = {_ini_value(password)}\n"
    )


def client_credentials_volume(secret: str) -> dict[str, Any]:
    """A client's Secret as a volume holding only MLflow's credentials file."""
    return kube.secret_volume(CLIENT_CREDENTIALS_VOLUME, secret, [CLIENT_CREDENTIALS_KEY])


def client_credentials_mount(home: str) -> dict[str, Any]:
    """Where MLflow's client looks for its credentials file: `$HOME/.mlflow/credentials`
    (`home` is the container's HOME, a writable emptyDir in the platform's pods)."""
    return kube.secret_volume_mount(CLIENT_CREDENTIALS_VOLUME, f"{home}/.mlflow")


# --- labels -----------------------------------------------------------------------------------


def selector_labels(component: str) -> dict[str, str]:
    return kube.app_selector("mlflow", component)


def object_labels(component: str) -> dict[str, str]:
    return kube.app_labels("mlflow", component)


def _metadata(name: str, namespace: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": object_labels(component)}


# --- tracking server --------------------------------------------------------------------------

CloudType = Literal["aws", "gcp", "local"]


def server_args(config: MlflowConfig, artifacts_uri: str) -> list[str]:
    """`mlflow server` flags. The backend store URI is not among them: click reads it from
    MLFLOW_BACKEND_STORE_URI, set from its file (`server_command`), so the password is in no
    argv and no spec."""
    args = [
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--workers",
        str(config.workers),
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts_uri,
        "--allowed-hosts",
        ",".join(allowed_hosts(config)),
    ]
    if config.auth.enabled:
        args += ["--app-name", "basic-auth"]
    return args


def server_env(
    config: MlflowConfig, cloud: CloudType, aws_region: str | None = None
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        # No user exists for the uid: HOME and every cache go to the writable /tmp.
        {"name": "HOME", "value": TMP_MOUNT},
        {"name": "TMPDIR", "value": TMP_MOUNT},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    if config.auth.enabled:
        env.append(
            {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": f"{AUTH_CONFIG_DIR}/{AUTH_CONFIG_KEY}"}
        )
    if cloud == "aws":
        if not aws_region:
            raise ValueError("aws_region is required on AWS (boto3 signs for the bucket region)")
        env += [
            {"name": "AWS_REGION", "value": aws_region},
            {"name": "AWS_DEFAULT_REGION", "value": aws_region},
        ]
    if cloud == "local":
        # MinIO: boto3 reads the user's keys and the endpoint (`endpoint_url`, which MLflow's
        # S3 client takes when MLFLOW_S3_ENDPOINT_URL is unset) from the identity's files.
        env += credential_files(config.service_account).env
    return env


def server_secret_keys(config: MlflowConfig) -> dict[str, str]:
    """Variable -> key of the credentials Secret the server reads from a file."""
    keys = {"MLFLOW_BACKEND_STORE_URI": BACKEND_STORE_URI_KEY}
    if config.auth.enabled:
        # `mlflow server --app-name basic-auth` exits without it (3.x); every replica and
        # worker must use the same key or CSRF tokens fail across them.
        keys["MLFLOW_FLASK_SERVER_SECRET_KEY"] = FLASK_SECRET_KEY_KEY
    return keys


def server_command(config: MlflowConfig) -> list[str]:
    """`mlflow` with its two secrets set from their files. MLflow reads the backend store URI
    only from `--backend-store-uri` or MLFLOW_BACKEND_STORE_URI and the Flask key only from
    MLFLOW_FLASK_SERVER_SECRET_KEY; SQLAlchemy takes the password only in the URI (libpq's
    PGPASSFILE is ignored when the file is group-readable, which a Secret volume read through
    fsGroup is). No native file option exists, so a shell sets them from the files and execs
    the server."""
    files = {
        name: f"{SERVER_SECRETS_DIR}/{key}" for name, key in server_secret_keys(config).items()
    }
    return kube.env_from_files_command(files, ["mlflow"])


def server_container(
    config: MlflowConfig, cloud: CloudType, artifacts_uri: str, aws_region: str | None = None
) -> dict[str, Any]:
    resources = config.resources
    mounts: list[dict[str, Any]] = [
        {"name": "tmp", "mountPath": TMP_MOUNT},
        kube.secret_volume_mount(SERVER_SECRETS_VOLUME),
    ]
    if config.auth.enabled:
        mounts.append({"name": "auth-config", "mountPath": AUTH_CONFIG_DIR, "readOnly": True})
    if cloud == "local":
        mounts.append(credential_files(config.service_account).mount)
    http_health = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}
    spec: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": config.image,
        "imagePullPolicy": "IfNotPresent",
        "command": server_command(config),
        "args": server_args(config, artifacts_uri),
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": server_env(config, cloud, aws_region),
        "resources": resources.values(),
        # The first start creates or migrates the schema before the server listens.
        "startupProbe": kube.probe(http_health, 5, 60),
        "livenessProbe": kube.probe(http_health, 10, 3),
        "readinessProbe": kube.probe(http_health, 5, 2),
        "securityContext": kube.restricted_container_security(RUN_AS_USER),
        "volumeMounts": mounts,
    }
    return spec


def server_pod_spec(
    config: MlflowConfig, cloud: CloudType, artifacts_uri: str, aws_region: str | None = None
) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": config.resources.tmp_size_limit}},
        kube.secret_volume(
            SERVER_SECRETS_VOLUME, CREDENTIALS_SECRET, server_secret_keys(config).values()
        ),
    ]
    if config.auth.enabled:
        volumes.append(kube.secret_volume("auth-config", CREDENTIALS_SECRET, [AUTH_CONFIG_KEY]))
    if cloud == "local":
        volumes.append(credential_files(config.service_account).volume)
    return {
        "serviceAccountName": config.service_account,
        # IRSA and GKE Workload Identity bring their own token; the server never calls the API.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": kube.restricted_pod_security(RUN_AS_USER),
        "containers": [server_container(config, cloud, artifacts_uri, aws_region)],
        "volumes": volumes,
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels("tracking-server")},
                "matchLabelKeys": ["pod-template-hash"],
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ],
    }


def deployment(
    config: MlflowConfig, cloud: CloudType, artifacts_uri: str, aws_region: str | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(SERVER_NAME, config.namespace, "tracking-server"),
        "spec": {
            "replicas": config.replicas,
            "selector": {"matchLabels": selector_labels("tracking-server")},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {
                    "labels": object_labels("tracking-server"),
                    "annotations": {"kubectl.kubernetes.io/default-container": CONTAINER_NAME},
                },
                "spec": server_pod_spec(config, cloud, artifacts_uri, aws_region),
            },
        },
    }


def service(config: MlflowConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(SERVER_NAME, config.namespace, "tracking-server"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels("tracking-server"),
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


def pod_disruption_budget(config: MlflowConfig) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(SERVER_NAME, config.namespace, "tracking-server"),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels("tracking-server")},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def credentials_secret_metadata(config: MlflowConfig) -> dict[str, Any]:
    """Only the envelope: the resource layer fills `stringData` from secret Outputs."""
    return _metadata(CREDENTIALS_SECRET, config.namespace, "tracking-server")


def credentials_secret_keys(cloud: CloudType, auth_enabled: bool) -> list[str]:
    keys = [BACKEND_STORE_URI_KEY]
    if auth_enabled:
        keys += [
            AUTH_CONFIG_KEY,
            ADMIN_USERNAME_KEY,
            ADMIN_PASSWORD_KEY,
            ADMIN_CREDENTIALS_KEY,
            FLASK_SECRET_KEY_KEY,
        ]
    if cloud == "local":
        keys.append(DATABASE_PASSWORD_KEY)
    return keys


# --- client users -----------------------------------------------------------------------------


def client_secret_metadata(config: MlflowConfig, key: str) -> dict[str, Any]:
    """Envelope of `clients.<key>`'s Secret in its namespace; `stringData` comes from the
    resource layer (`client_secret_data`), as a secret Output."""
    client = config.clients[key]
    metadata = _metadata(client.secret_name, client.namespace, "client-credentials")
    metadata["annotations"] = {"mlops.platform/mlflow-user": client_username(key)}
    return metadata


def client_secret_data(config: MlflowConfig, key: str, password: str) -> dict[str, str]:
    """MLflow's credentials file, which the platform's pods and Kubeflow Pipelines steps mount,
    and the variables MLflow's client reads, for clients that read only their environment."""
    return {
        CLIENT_URI_KEY: tracking_uri(config.namespace),
        CLIENT_USERNAME_KEY: client_username(key),
        CLIENT_PASSWORD_KEY: password,
        CLIENT_CREDENTIALS_KEY: mlflow_credentials_file(client_username(key), password),
    }


def client_passwords_secret_metadata(config: MlflowConfig) -> dict[str, Any]:
    """The provisioning Job's Secret in the MLflow namespace: one key per client key."""
    return _metadata(CLIENT_PASSWORDS_SECRET, config.namespace, "user-provisioner")


def users_spec(config: MlflowConfig) -> dict[str, Any]:
    """What `provision_users.py` converges on (no password: it names their files)."""
    return {
        "users": [
            {
                "username": client_username(key),
                "permission": client.permission,
                "password_file": client_password_file(key),
            }
            for key, client in sorted(config.clients.items())
        ]
    }


def provisioner_digest(config: MlflowConfig, script: str | None = None) -> str:
    """10 hex digits naming the ConfigMap and the Job: they change, and so the Job runs again,
    exactly when what it would do changes: the users, their permissions, a password version,
    the program or the image."""
    material = {
        "spec": users_spec(config),
        "password_versions": {k: c.password_version for k, c in sorted(config.clients.items())},
        "script": script if script is not None else PROVISIONER_SOURCE.read_text(),
        "image": config.image,
        "tracking_uri": tracking_uri(config.namespace),
    }
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:10]


def provisioner_name(config: MlflowConfig) -> str:
    return f"{PROVISIONER_NAME}-{provisioner_digest(config)}"


def provisioner_config_map(config: MlflowConfig) -> dict[str, Any]:
    """The program and its spec; immutable, since its name changes with its content."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(provisioner_name(config), config.namespace, "user-provisioner"),
        "immutable": True,
        "data": {
            PROVISIONER_SCRIPT: PROVISIONER_SOURCE.read_text(),
            PROVISIONER_USERS: json.dumps(users_spec(config), indent=2, sort_keys=True) + "\n",
        },
    }


def provisioner_env(config: MlflowConfig) -> list[dict[str, Any]]:
    """No value is secret: the admin's credentials are MLflow's credentials file under HOME,
    the client passwords files named in the users spec."""
    return [
        {"name": "MLFLOW_TRACKING_URI", "value": tracking_uri(config.namespace)},
        {"name": "HOME", "value": TMP_MOUNT},
        {"name": "TMPDIR", "value": TMP_MOUNT},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def provisioner_job(config: MlflowConfig) -> dict[str, Any]:
    """Runs `provision_users.py` once per digest, in the server's image, as the admin."""
    name = provisioner_name(config)
    labels = object_labels("user-provisioner")
    container = {
        "name": PROVISIONER_CONTAINER,
        "image": config.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", f"{PROVISIONER_DIR}/{PROVISIONER_SCRIPT}"],
        "args": [f"{PROVISIONER_DIR}/{PROVISIONER_USERS}"],
        "env": provisioner_env(config),
        "resources": {
            "requests": {"cpu": "50m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": kube.restricted_container_security(RUN_AS_USER),
        "volumeMounts": [
            {"name": "tmp", "mountPath": TMP_MOUNT},
            {"name": "program", "mountPath": PROVISIONER_DIR, "readOnly": True},
            client_credentials_mount(TMP_MOUNT),
            kube.secret_volume_mount(PROVISIONER_PASSWORDS_VOLUME),
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(name, config.namespace, "user-provisioner"),
        "spec": {
            "backoffLimit": PROVISIONER_BACKOFF_LIMIT,
            "activeDeadlineSeconds": PROVISIONER_DEADLINE_SECONDS,
            "ttlSecondsAfterFinished": PROVISIONER_TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    # It only talks to the tracking server.
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": kube.restricted_pod_security(RUN_AS_USER),
                    "containers": [container],
                    "volumes": [
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        {
                            "name": "program",
                            "configMap": {"name": name, "defaultMode": 0o444},
                        },
                        kube.secret_volume(
                            CLIENT_CREDENTIALS_VOLUME,
                            CREDENTIALS_SECRET,
                            {ADMIN_CREDENTIALS_KEY: CLIENT_CREDENTIALS_KEY},
                        ),
                        kube.secret_volume(
                            PROVISIONER_PASSWORDS_VOLUME,
                            CLIENT_PASSWORDS_SECRET,
                            sorted(config.clients),
                        ),
                    ],
                },
            },
        },
    }


# --- local PostgreSQL -------------------------------------------------------------------------


def postgres_statefulset(config: MlflowConfig) -> dict[str, Any]:
    """The official postgres image, non-root with a read-only root filesystem.

    The image's entrypoint skips its chown/gosu steps when started as the `postgres` user, and
    initialises PGDATA on first start from POSTGRES_USER/POSTGRES_DB and the password in the
    file POSTGRES_PASSWORD_FILE names (the image's own `_FILE` convention).
    """
    database = config.postgres
    ready = {
        "exec": {
            "command": [
                "pg_isready",
                "--host=127.0.0.1",
                f"--port={POSTGRES_PORT}",
                f"--username={DATABASE_USER}",
                f"--dbname={DATABASE_NAME}",
            ]
        }
    }
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{database.storage_gb}Gi"}},
    }
    if database.storage_class is not None:
        claim_spec["storageClassName"] = database.storage_class
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _metadata(POSTGRES_NAME, config.namespace, "database"),
        "spec": {
            "serviceName": POSTGRES_NAME,
            "replicas": 1,
            "selector": {"matchLabels": selector_labels("database")},
            # Deleting or scaling the StatefulSet must never take the data with it.
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": object_labels("database")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    # A fast shutdown (the image's STOPSIGNAL is SIGINT) checkpoints first.
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": kube.restricted_pod_security(POSTGRES_UID),
                    "containers": [
                        {
                            "name": "postgres",
                            "image": POSTGRES_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [
                                {
                                    "name": "postgres",
                                    "containerPort": POSTGRES_PORT,
                                    "protocol": "TCP",
                                }
                            ],
                            "env": [
                                {"name": "POSTGRES_USER", "value": DATABASE_USER},
                                {"name": "POSTGRES_DB", "value": DATABASE_NAME},
                                {
                                    "name": "POSTGRES_PASSWORD_FILE",
                                    "value": f"{POSTGRES_SECRETS_DIR}/{DATABASE_PASSWORD_KEY}",
                                },
                                {"name": "PGDATA", "value": POSTGRES_PGDATA},
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "startupProbe": kube.probe(ready, 5, 60),
                            "livenessProbe": kube.probe(ready, 10, 6, timeout=5),
                            "readinessProbe": kube.probe(ready, 5, 3, timeout=5),
                            "securityContext": kube.restricted_container_security(POSTGRES_UID),
                            "volumeMounts": [
                                {"name": "data", "mountPath": POSTGRES_DATA_MOUNT},
                                {"name": "run", "mountPath": POSTGRES_RUN_DIR},
                                {"name": "tmp", "mountPath": TMP_MOUNT},
                                kube.secret_volume_mount(POSTGRES_SECRETS_VOLUME),
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                        kube.secret_volume(
                            POSTGRES_SECRETS_VOLUME, CREDENTIALS_SECRET, [DATABASE_PASSWORD_KEY]
                        ),
                    ],
                },
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim_spec}],
        },
    }


def postgres_service(config: MlflowConfig) -> dict[str, Any]:
    """Headless: the StatefulSet's governing Service; its name resolves to the one pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(POSTGRES_NAME, config.namespace, "database"),
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels("database"),
            "ports": [
                {
                    "name": "postgres",
                    "port": POSTGRES_PORT,
                    "targetPort": "postgres",
                    "protocol": "TCP",
                }
            ],
        },
    }


def ingress_namespaces(config: MlflowConfig) -> list[str]:
    """Namespaces whose pods may reach the tracking server: its clients' (the only holders of
    credentials), the configured extra ones; its own is allowed by a pod selector."""
    names = {client.namespace for client in config.clients.values()}
    return sorted((names | set(config.ingress_namespaces)) - {config.namespace})


def tracking_network_policy(config: MlflowConfig) -> dict[str, Any]:
    """The tracking server takes connections on its port from its own namespace (the users'
    provisioning Job) and from `ingress_namespaces`, nothing else."""
    sources: list[dict[str, Any]] = [{"podSelector": {}}]
    namespaces = ingress_namespaces(config)
    if namespaces:
        sources.append(
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/metadata.name",
                            "operator": "In",
                            "values": namespaces,
                        }
                    ]
                }
            }
        )
    return kube.ingress_network_policy(
        _metadata(SERVER_NAME, config.namespace, "tracking-server"),
        selector_labels("tracking-server"),
        sources,
        PORT,
    )


def provisioner_network_policy(config: MlflowConfig) -> dict[str, Any]:
    """The users' provisioning Job takes no connection and opens only two: the tracking
    server's port (the REST API it provisions through) and the cluster DNS. It reaches the
    database only through the server, so a stolen admin credential in it reaches nothing else."""
    return kube.egress_network_policy(
        _metadata(PROVISIONER_NAME, config.namespace, "user-provisioner"),
        selector_labels("user-provisioner"),
        [([{"podSelector": {"matchLabels": selector_labels("tracking-server")}}], PORT)],
    )


def postgres_network_policy(config: MlflowConfig) -> dict[str, Any]:
    """Only the tracking server's pods reach the database."""
    return kube.ingress_network_policy(
        _metadata(POSTGRES_NAME, config.namespace, "database"),
        selector_labels("database"),
        [{"podSelector": {"matchLabels": selector_labels("tracking-server")}}],
        POSTGRES_PORT,
    )


# --- everything -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """Every Kubernetes object of the tracking server, as the API server would receive it."""

    deployment: dict[str, Any]
    service: dict[str, Any]
    pod_disruption_budget: dict[str, Any]
    network_policy: dict[str, Any]
    postgres_statefulset: dict[str, Any] | None = None
    postgres_service: dict[str, Any] | None = None
    postgres_network_policy: dict[str, Any] | None = None
    # Only with `clients`: the provisioning program, its Job and the Secrets' envelopes (their
    # data are secret Outputs the resource layer adds; here they are checked with placeholders).
    provisioner_config_map: dict[str, Any] | None = None
    provisioner_job: dict[str, Any] | None = None
    provisioner_network_policy: dict[str, Any] | None = None
    client_secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_passwords_secret: dict[str, Any] | None = None

    def objects(self) -> list[dict[str, Any]]:
        found = [self.deployment, self.service, self.pod_disruption_budget, self.network_policy]
        found += [
            obj
            for obj in (
                self.postgres_statefulset,
                self.postgres_service,
                self.postgres_network_policy,
                self.provisioner_config_map,
                self.provisioner_job,
                self.provisioner_network_policy,
                self.client_passwords_secret,
            )
            if obj is not None
        ]
        return found + [self.client_secrets[key] for key in sorted(self.client_secrets)]


def render(
    config: MlflowConfig, cloud: CloudType, artifacts_uri: str, aws_region: str | None = None
) -> Rendered:
    """All objects for `cloud`; `artifacts_uri` is the bucket URI plus the artifact prefix."""
    local = cloud == "local"
    clients = bool(config.clients)
    return Rendered(
        deployment=deployment(config, cloud, artifacts_uri, aws_region),
        service=service(config),
        pod_disruption_budget=pod_disruption_budget(config),
        network_policy=tracking_network_policy(config),
        postgres_statefulset=postgres_statefulset(config) if local else None,
        postgres_service=postgres_service(config) if local else None,
        postgres_network_policy=postgres_network_policy(config) if local else None,
        provisioner_config_map=provisioner_config_map(config) if clients else None,
        provisioner_job=provisioner_job(config) if clients else None,
        provisioner_network_policy=provisioner_network_policy(config) if clients else None,
        client_secrets={
            key: _secret_envelope(
                client_secret_metadata(config, key),
                client_secret_data(config, key, PLACEHOLDER_PASSWORD),
            )
            for key in config.clients
        },
        client_passwords_secret=(
            _secret_envelope(
                client_passwords_secret_metadata(config),
                dict.fromkeys(config.clients, PLACEHOLDER_PASSWORD),
            )
            if clients
            else None
        ),
    )


def _secret_envelope(metadata: dict[str, Any], string_data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "stringData": string_data,
    }
