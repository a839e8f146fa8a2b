"""Object storage, pure layer: config models and the values each backend is built from.

The store is a map of buckets keyed by logical name (`artifacts`, `datasets`, ...). Physical
names are `<prefix>-<key>`, deterministic so other tools and stack files can name them, and
validated up front against the rules S3 and GCS share, so a bad name fails before anything is
created. Everything here is plain data in, plain data out (policy documents, lifecycle rules,
Helm values) and table-tested without Pulumi.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.identity.model import (
    WorkloadIdentityConfig,
    minio_policy,
    minio_policy_name,
)
from mlops_platform.components.kube import check_dns_label, check_quantity, container_resources

LOG_BUCKET_KEY = "access-logs"
"""Key of the S3 server-access-log bucket; reserved, so no logical bucket can take its name."""

# S3 (since 2018) and GCS (without dots) agree on this shape; dots are left out on purpose
# because they break virtual-hosted-style TLS certificates on S3.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
_KEY = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "goog", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
S3_STANDARD_IA_MIN_DAYS = 30


class LifecycleConfig(StrictModel):
    """When object versions move to cheaper classes or go away. `null` turns a rule off."""

    noncurrent_version_expiration_days: PositiveInt | None = Field(
        default=90, description="Delete an object version this many days after it is replaced."
    )
    transition_to_infrequent_access_days: PositiveInt | None = Field(
        default=None,
        description="Move current objects to S3 STANDARD_IA / GCS NEARLINE after this many days "
        f"(S3 requires at least {S3_STANDARD_IA_MIN_DAYS}).",
    )
    transition_to_cold_days: PositiveInt | None = Field(
        default=None,
        description="Move current objects to S3 GLACIER_IR / GCS COLDLINE after this many days "
        "(more than `transition_to_infrequent_access_days` when both are set).",
    )
    expiration_days: PositiveInt | None = Field(
        default=None,
        description="Expire current objects this many days after creation (more than the last "
        "transition's days).",
    )
    abort_incomplete_multipart_upload_days: PositiveInt | None = Field(
        default=7, description="Abort multipart uploads left incomplete this many days."
    )

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleConfig:
        ia = self.transition_to_infrequent_access_days
        cold = self.transition_to_cold_days
        if ia is not None and ia < S3_STANDARD_IA_MIN_DAYS:
            raise ValueError(
                f"transition_to_infrequent_access_days must be at least "
                f"{S3_STANDARD_IA_MIN_DAYS} (S3 STANDARD_IA minimum), got {ia}"
            )
        if ia is not None and cold is not None and cold <= ia:
            raise ValueError(
                f"transition_to_cold_days ({cold}) must be greater than "
                f"transition_to_infrequent_access_days ({ia})"
            )
        last = max((d for d in (ia, cold) if d is not None), default=None)
        if self.expiration_days is not None and last is not None and self.expiration_days <= last:
            raise ValueError(
                f"expiration_days ({self.expiration_days}) must be greater than the last "
                f"transition ({last} days)"
            )
        return self


class BucketConfig(StrictModel):
    """One logical bucket (the map key is its logical name)."""

    versioning: bool = Field(default=True, description="Keep every version of every object.")
    lifecycle: LifecycleConfig = Field(
        default_factory=LifecycleConfig,
        description="Lifecycle rules, applied on S3 and GCS (not by MinIO, see the storage "
        "README); `null` turns a rule off.",
    )


class S3Config(StrictModel):
    """AWS: S3 buckets, encrypted with a KMS key, their access logs in a bucket of their own."""

    type: Literal["s3"] = Field(default="s3", description="Amazon S3 (AWS stacks).")
    kms_key: str | None = Field(
        default=None,
        description="Existing KMS key ARN to encrypt with. Default: one rotating KMS key per "
        "store.",
    )
    access_log_retention_days: PositiveInt = Field(
        default=365, description="Days S3 server access logs are kept."
    )


class GcsConfig(StrictModel):
    """GCP: Cloud Storage buckets."""

    type: Literal["gcs"] = Field(default="gcs", description="Cloud Storage (GCP stacks).")
    kms_key: str | None = Field(
        default=None,
        description="Existing Cloud KMS key (`projects/.../cryptoKeys/...`). Default: "
        "Google-managed encryption.",
    )


class MinioConfig(StrictModel):
    """Local only: the MinIO server that stands in for S3/GCS, sized for a laptop."""

    type: Literal["minio"] = Field(default="minio", description="MinIO in the cluster (local).")
    namespace: str = Field(default="minio", description="Namespace MinIO is installed in.")
    storage_size: str = Field(default="10Gi", description="Size of MinIO's persistent volume.")
    storage_class: str | None = Field(
        default=None, description="StorageClass of the volume; null uses the cluster default."
    )
    cpu_request: str = Field(default="100m", description="CPU request of the MinIO pod.")
    memory_request: str = Field(default="256Mi", description="Memory request of the MinIO pod.")
    memory_limit: str = Field(default="1Gi", description="Memory limit of the MinIO pod.")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_dns_label(value, "namespace", explain=False)

    @field_validator("storage_size", "cpu_request", "memory_request", "memory_limit")
    @classmethod
    def _quantity(cls, value: str, info) -> str:
        return check_quantity(value, info.field_name, example="10Gi, 250m")


# Only the chosen backend's fields are accepted: a setting of another cloud's is an error.
StorageBackend = Annotated[S3Config | GcsConfig | MinioConfig, Field(discriminator="type")]


def _default_buckets() -> dict[str, BucketConfig]:
    return {key: BucketConfig() for key in ("artifacts", "datasets", "features")}


class StorageConfig(StrictModel):
    """The platform's object store: a map of buckets plus where their names come from."""

    buckets: dict[str, BucketConfig] = Field(
        default_factory=_default_buckets,
        description="Logical name -> bucket settings; physical name is `<prefix>-<key>`.",
    )
    bucket_prefix: str | None = Field(
        default=None,
        description="Prefix of every physical bucket name. S3 and GCS names are global: use "
        "something your organisation owns. Default: `<project>-<stack>`.",
    )
    backend: StorageBackend | None = Field(
        default=None,
        description="Where the buckets live, a `type:` block with only that backend's "
        "settings: `s3` (AWS), `gcs` (GCP) or `minio` (local). The type follows the stack's "
        "cloud: omit it (or the whole block) and the cloud's own is used.",
    )

    # The backend's settings, for the resource layer (the root config fills `backend` in from
    # the cloud, so a stack always has one).
    @property
    def kms_key(self) -> str | None:
        return getattr(self.backend, "kms_key", None)

    @property
    def access_log_retention_days(self) -> int:
        backend = self.backend if isinstance(self.backend, S3Config) else S3Config()
        return backend.access_log_retention_days

    @property
    def minio(self) -> MinioConfig:
        return self.backend if isinstance(self.backend, MinioConfig) else MinioConfig()

    @field_validator("buckets")
    @classmethod
    def _keys(cls, buckets: dict[str, BucketConfig]) -> dict[str, BucketConfig]:
        if not buckets:
            raise ValueError("at least one bucket is required")
        for key in buckets:
            if not _KEY.match(key):
                raise ValueError(
                    f"bucket key {key!r} must be lowercase letters, digits or '-', starting "
                    "and ending with a letter or digit"
                )
            if key == LOG_BUCKET_KEY:
                raise ValueError(f"bucket key {key!r} is reserved for the access-log bucket")
        return buckets

    @field_validator("bucket_prefix")
    @classmethod
    def _prefix(cls, prefix: str | None) -> str | None:
        if prefix is not None:
            check_bucket_name(f"{prefix}-{LOG_BUCKET_KEY}", "bucket_prefix")
        return prefix

    @model_validator(mode="after")
    def _names_fit(self) -> StorageConfig:
        if self.bucket_prefix is not None:
            physical_bucket_names(self.bucket_prefix, self.buckets)
        return self


# --- names ------------------------------------------------------------------------------------


def check_bucket_name(name: str, field: str) -> str:
    """Raise a ValueError naming `field` unless `name` is valid on S3, GCS and MinIO alike."""
    problem = None
    if not 3 <= len(name) <= 63:
        problem = f"is {len(name)} characters; bucket names have 3 to 63"
    elif not _BUCKET_NAME.match(name):
        problem = (
            "may only hold lowercase letters, digits and '-', and must start and end with a "
            "letter or digit"
        )
    elif "google" in name or name.startswith(_RESERVED_PREFIXES):
        problem = "uses a reserved prefix or the word 'google'"
    elif name.endswith(_RESERVED_SUFFIXES):
        problem = "ends with a suffix S3 reserves"
    if problem:
        raise ValueError(f"{field}: bucket name {name!r} {problem}")
    return name


def default_bucket_prefix(project: str, stack: str) -> str:
    """`<project>-<stack>`, lowercased, with anything a bucket name cannot hold turned to '-'."""
    raw = f"{project}-{stack}".lower()
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", raw)).strip("-")


def physical_bucket_names(prefix: str, buckets: Mapping[str, Any]) -> dict[str, str]:
    """Logical key -> physical name, every one checked (the error names the offending key)."""
    return {key: check_bucket_name(f"{prefix}-{key}", f"storage.buckets.{key}") for key in buckets}


def bucket_uri(scheme: Literal["s3", "gs"], name: str) -> str:
    return f"{scheme}://{name}"


# --- AWS documents ----------------------------------------------------------------------------


def tls_only_statement(bucket_arn: str) -> dict[str, Any]:
    """Deny any request that did not arrive over TLS, whoever makes it."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def bucket_policy(bucket_arn: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [tls_only_statement(bucket_arn)]}


def log_bucket_policy(
    log_bucket_arn: str, source_bucket_arns: Sequence[str], account_id: str
) -> dict[str, Any]:
    """TLS-only, plus the S3 logging service may write, for our source buckets only.

    With object ownership `BucketOwnerEnforced` ACLs are off, so the log delivery group's ACL
    grant does not work: AWS documents this bucket-policy grant to `logging.s3.amazonaws.com`.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            tls_only_statement(log_bucket_arn),
            {
                "Sid": "AllowS3ServerAccessLogDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{log_bucket_arn}/*",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": sorted(source_bucket_arns)},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
        ],
    }


def s3_lifecycle_rules(lifecycle: LifecycleConfig) -> list[dict[str, Any]]:
    """`aws.s3.BucketLifecycleConfiguration` rules; an empty filter applies to every object."""
    rules: list[dict[str, Any]] = []

    def rule(rule_id: str, **body: Any) -> None:
        rules.append({"id": rule_id, "status": "Enabled", "filter": {}, **body})

    if lifecycle.noncurrent_version_expiration_days is not None:
        rule(
            "expire-noncurrent-versions",
            noncurrent_version_expiration={
                "noncurrent_days": lifecycle.noncurrent_version_expiration_days
            },
        )
    transitions = []
    if lifecycle.transition_to_infrequent_access_days is not None:
        transitions.append(
            {
                "days": lifecycle.transition_to_infrequent_access_days,
                "storage_class": "STANDARD_IA",
            }
        )
    if lifecycle.transition_to_cold_days is not None:
        transitions.append(
            {"days": lifecycle.transition_to_cold_days, "storage_class": "GLACIER_IR"}
        )
    if transitions:
        rule("transition-current-versions", transitions=transitions)
    if lifecycle.expiration_days is not None:
        rule("expire-current-versions", expiration={"days": lifecycle.expiration_days})
    if lifecycle.abort_incomplete_multipart_upload_days is not None:
        rule(
            "abort-incomplete-multipart-uploads",
            abort_incomplete_multipart_upload={
                "days_after_initiation": lifecycle.abort_incomplete_multipart_upload_days
            },
        )
    return rules


def log_bucket_lifecycle_rules(retention_days: int) -> list[dict[str, Any]]:
    return [
        {
            "id": "expire-access-logs",
            "status": "Enabled",
            "filter": {},
            "expiration": {"days": retention_days},
        }
    ]


# --- GCP documents ----------------------------------------------------------------------------


def gcs_lifecycle_rules(lifecycle: LifecycleConfig) -> list[dict[str, Any]]:
    """`gcp.storage.Bucket.lifecycle_rules`: the same intent as the S3 rules."""
    rules: list[dict[str, Any]] = []
    if lifecycle.noncurrent_version_expiration_days is not None:
        rules.append(
            {
                "action": {"type": "Delete"},
                "condition": {
                    "days_since_noncurrent_time": lifecycle.noncurrent_version_expiration_days,
                    "with_state": "ARCHIVED",
                },
            }
        )
    for days, storage_class in (
        (lifecycle.transition_to_infrequent_access_days, "NEARLINE"),
        (lifecycle.transition_to_cold_days, "COLDLINE"),
    ):
        if days is not None:
            rules.append(
                {
                    "action": {"type": "SetStorageClass", "storage_class": storage_class},
                    "condition": {"age": days, "with_state": "LIVE"},
                }
            )
    if lifecycle.expiration_days is not None:
        rules.append(
            {
                "action": {"type": "Delete"},
                "condition": {"age": lifecycle.expiration_days, "with_state": "LIVE"},
            }
        )
    if lifecycle.abort_incomplete_multipart_upload_days is not None:
        rules.append(
            {
                "action": {"type": "AbortIncompleteMultipartUpload"},
                "condition": {"age": lifecycle.abort_incomplete_multipart_upload_days},
            }
        )
    return rules


_GCP_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
# A key ARN, not an alias: IAM grants for kms:Decrypt must name the key itself.
_AWS_KEY = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$")


def check_kms_key(cloud_type: str, kms_key: str | None) -> None:
    """An existing key must be of the cloud's own kind; locally none is used."""
    if kms_key is None:
        return
    expected = {
        "aws": (_AWS_KEY, "an AWS KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"),
        "gcp": (_GCP_KEY, "projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>"),
        "local": (None, "unset: local MinIO does not use a KMS key"),
    }[cloud_type]
    pattern, shape = expected
    if pattern is None or not pattern.match(kms_key):
        raise ValueError(
            f"storage.backend.kms_key: {kms_key!r} must be {shape} on cloud {cloud_type!r}"
        )


# --- Local (MinIO chart values) ---------------------------------------------------------------

MINIO_FULLNAME = "minio"
MINIO_API_PORT = 9000
MINIO_ROOT_USER = "mlops-root"
MINIO_USER_SECRET_KEY = "secretKey"


def minio_user_secret_name(identity: str) -> str:
    """Secret in MinIO's namespace holding one identity's secret key, read by the chart's job."""
    return f"minio-user-{identity}"


def minio_endpoint(namespace: str) -> str:
    return f"http://{MINIO_FULLNAME}.{namespace}.svc.cluster.local:{MINIO_API_PORT}"


def minio_values(
    config: StorageConfig,
    physical_names: Mapping[str, str],
    root_secret_name: str,
    identities: Mapping[str, WorkloadIdentityConfig],
) -> dict[str, Any]:
    """Values for the official MinIO chart: one small standalone server, no secret inline.

    Root and user credentials are referenced by Secret name only; `users` is always set
    explicitly because the chart's default creates a `console` user with a published password.
    """
    minio = config.minio
    persistence: dict[str, Any] = {"enabled": True, "size": minio.storage_size}
    if minio.storage_class is not None:
        persistence["storageClass"] = minio.storage_class
    return {
        "fullnameOverride": MINIO_FULLNAME,
        "mode": "standalone",
        "replicas": 1,
        "existingSecret": root_secret_name,
        "persistence": persistence,
        "resources": container_resources(
            minio.cpu_request, minio.memory_request, minio.memory_limit
        ),
        "buckets": [
            {
                "name": physical_names[key],
                "policy": "none",
                "purge": False,
                "versioning": bucket.versioning,
            }
            for key, bucket in config.buckets.items()
        ],
        "policies": [
            minio_policy(
                identity,
                {physical_names[b]: access for b, access in identity_config.buckets.items()},
            )
            for identity, identity_config in identities.items()
        ],
        "users": [
            {
                "accessKey": identity,
                "existingSecret": minio_user_secret_name(identity),
                "existingSecretKey": MINIO_USER_SECRET_KEY,
                "policy": minio_policy_name(identity),
            }
            for identity in identities
        ],
    }
