"""Workload identity, pure layer: config model and the documents each cloud needs.

A workload identity lets one Kubernetes service account use named buckets of the object store
without static keys in code or config: an IRSA role on AWS, a Google service account bound
through Workload Identity on GCP, and a MinIO user whose generated secret key lives only in
Kubernetes Secrets locally. Everything here is a plain function of plain values, so it is
table-tested without Pulumi.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from mlops_platform.components import kube
from mlops_platform.components.base import StrictModel
from mlops_platform.components.kube import DNS_LABEL, check_dns_label

Access = Literal["read", "read_write"]

# Google service account ids: 6-30 chars, lowercase letter first, no trailing hyphen.
_GCP_ACCOUNT_ID = re.compile(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$")
GCP_ACCOUNT_ID_PREFIX = "wi-"


class WorkloadIdentityConfig(StrictModel):
    """One Kubernetes service account and the buckets it may use (map key = identity name)."""

    namespace: str = Field(description="Namespace of the workload's Kubernetes service account.")
    service_account: str = Field(
        description="Name of the Kubernetes service account this component creates."
    )
    buckets: dict[str, Access] = Field(
        min_length=1,
        description="Logical bucket name (a key of `storage.buckets`) -> `read` or `read_write`.",
    )
    gcp_account_id: str | None = Field(
        default=None,
        description="GCP only: id of the Google service account. Default: `wi-<identity name>`.",
    )

    @field_validator("namespace", "service_account")
    @classmethod
    def _dns_label(cls, value: str, info) -> str:
        return check_dns_label(value, info.field_name)

    @field_validator("gcp_account_id")
    @classmethod
    def _account_id(cls, value: str | None) -> str | None:
        if value is not None:
            check_gcp_account_id(value, "gcp_account_id")
        return value


def check_identity_name(identity: str) -> str:
    """The map key names a MinIO user (at least 3 characters) and Kubernetes objects."""
    if not 3 <= len(identity) <= 40 or not DNS_LABEL.match(identity):
        raise ValueError(
            f"workload_identities.{identity}: the identity name must be 3-40 lowercase letters, "
            "digits or '-', starting and ending with a letter or digit"
        )
    return identity


def check_gcp_account_id(account_id: str, field: str) -> str:
    if not _GCP_ACCOUNT_ID.match(account_id):
        raise ValueError(
            f"{field} {account_id!r} is not a valid Google service account id: 6-30 lowercase "
            "letters, digits or '-', starting with a letter and not ending with '-'"
        )
    return account_id


def gcp_account_id(identity: str, config: WorkloadIdentityConfig) -> str:
    """The Google service account id: the configured one, else `wi-<identity>`."""
    if config.gcp_account_id is not None:
        return config.gcp_account_id
    return check_gcp_account_id(
        f"{GCP_ACCOUNT_ID_PREFIX}{identity}",
        f"workload_identities.{identity} (set gcp_account_id to choose another id)",
    )


def check_buckets(identity: str, config: WorkloadIdentityConfig, known: Iterable[str]) -> None:
    """Every bucket an identity names must be a bucket of the object store."""
    known = sorted(known)
    unknown = sorted(set(config.buckets) - set(known))
    if unknown:
        raise ValueError(
            f"workload_identities.{identity}.buckets: unknown bucket(s) "
            f"{', '.join(repr(b) for b in unknown)}; storage.buckets has "
            f"{', '.join(repr(b) for b in known) or 'none'}"
        )


def check_workload_identities(
    identities: Mapping[str, WorkloadIdentityConfig], bucket_keys: Iterable[str]
) -> None:
    """Every identity name and bucket reference is valid: for a root-config validator."""
    bucket_keys = list(bucket_keys)
    for identity, config in identities.items():
        check_identity_name(identity)
        check_buckets(identity, config, bucket_keys)


# --- AWS (IRSA) -------------------------------------------------------------------------------


def issuer_host_path(issuer: str) -> str:
    """IAM condition keys use the issuer without its scheme (`oidc.eks.../id/X`)."""
    return issuer.removeprefix("https://").rstrip("/")


def irsa_trust_policy(
    oidc_provider_arn: str, oidc_issuer: str, namespace: str, service_account: str
) -> dict[str, Any]:
    """Trust policy: only this service account, via the cluster's OIDC provider, may assume."""
    issuer = issuer_host_path(oidc_issuer)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


_S3_BUCKET_ACTIONS: dict[Access, list[str]] = {
    "read": ["s3:GetBucketLocation", "s3:ListBucket"],
    "read_write": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
}
_S3_OBJECT_ACTIONS: dict[Access, list[str]] = {
    "read": ["s3:GetObject", "s3:GetObjectVersion"],
    "read_write": [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
    ],
}
_KMS_ACTIONS: dict[Access, list[str]] = {
    "read": ["kms:Decrypt"],
    # GenerateDataKey: SSE-KMS writes; Decrypt: multipart uploads and reads.
    "read_write": ["kms:Decrypt", "kms:GenerateDataKey"],
}


def _statement_id(bucket: str, suffix: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", bucket.title()) + suffix


def s3_access_policy(
    bucket_arns: Mapping[str, str], access: Mapping[str, Access], kms_key_arn: str | None
) -> dict[str, Any]:
    """Least-privilege IAM policy for the named buckets (logical name -> ARN) and their key."""
    statements: list[dict[str, Any]] = []
    for bucket in sorted(access):
        level = access[bucket]
        arn = bucket_arns[bucket]
        statements.append(
            {
                "Sid": _statement_id(bucket, "Bucket"),
                "Effect": "Allow",
                "Action": _S3_BUCKET_ACTIONS[level],
                "Resource": arn,
            }
        )
        statements.append(
            {
                "Sid": _statement_id(bucket, "Objects"),
                "Effect": "Allow",
                "Action": _S3_OBJECT_ACTIONS[level],
                "Resource": f"{arn}/*",
            }
        )
    if kms_key_arn is not None and access:
        level = "read_write" if "read_write" in access.values() else "read"
        statements.append(
            {
                "Sid": "StoreKey",
                "Effect": "Allow",
                "Action": _KMS_ACTIONS[level],
                "Resource": kms_key_arn,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


# --- GCP (Workload Identity) ------------------------------------------------------------------

GCS_ROLES: dict[Access, str] = {
    "read": "roles/storage.objectViewer",
    # objectUser: read, create, overwrite and delete objects (and multipart), no IAM changes.
    "read_write": "roles/storage.objectUser",
}


def workload_identity_member(workload_pool: str, namespace: str, service_account: str) -> str:
    """The IAM member a GKE pod presents: `serviceAccount:<project>.svc.id.goog[<ns>/<ksa>]`."""
    return f"serviceAccount:{workload_pool}[{namespace}/{service_account}]"


# --- Local (MinIO) ----------------------------------------------------------------------------


def minio_policy_name(identity: str) -> str:
    return f"{identity}-buckets"


def minio_policy(identity: str, buckets: Mapping[str, Access]) -> dict[str, Any]:
    """A MinIO policy (the chart's `policies:` entry) over physical bucket names."""
    statements: list[dict[str, Any]] = []
    for bucket in sorted(buckets):
        level = buckets[bucket]
        statements.append(
            {"resources": [f"arn:aws:s3:::{bucket}"], "actions": _S3_BUCKET_ACTIONS[level]}
        )
        statements.append(
            {"resources": [f"arn:aws:s3:::{bucket}/*"], "actions": _S3_OBJECT_ACTIONS[level]}
        )
    return {"name": minio_policy_name(identity), "statements": statements}


def credentials_secret_name(service_account: str) -> str:
    """The Secret beside the workload holding its S3 credentials and endpoint (local only)."""
    return f"{service_account}-s3-credentials"


# The same credentials as the AWS SDKs' own files (boto3/botocore and every AWS SDK read
# AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE, and take `endpoint_url` from the config
# file): workloads mount them instead of loading the keys into their environment.
CREDENTIALS_FILE_KEY = "credentials"
CONFIG_FILE_KEY = "config"
CREDENTIALS_VOLUME = "object-store-credentials"


def aws_credentials_file(access_key_id: str, secret_access_key: str) -> str:
    return (
        "[default]\n"
        f"aws_access_key_id = {access_key_id}\n"
        f"aws_secret_access_key = {secret_access_key}\n"
    )


def aws_config_file(endpoint: str) -> str:
    return f"[default]\nendpoint_url = {endpoint}\n"


@dataclass(frozen=True)
class CredentialFiles:
    """What a local workload adds to its pod to reach MinIO as its identity's user."""

    volume: dict[str, Any]
    mount: dict[str, Any]
    env: list[dict[str, str]]


def credential_files(service_account: str) -> CredentialFiles:
    """The local credentials Secret of `service_account` mounted read-only, and the variables
    that point the AWS SDKs at its files."""
    return secret_credential_files(credentials_secret_name(service_account))


def secret_credential_files(secret: str) -> CredentialFiles:
    """`credential_files` of the credentials Secret named `secret`."""
    directory = kube.secret_dir(CREDENTIALS_VOLUME)
    return CredentialFiles(
        volume=kube.secret_volume(
            CREDENTIALS_VOLUME, secret, [CREDENTIALS_FILE_KEY, CONFIG_FILE_KEY]
        ),
        mount=kube.secret_volume_mount(CREDENTIALS_VOLUME),
        env=[
            {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": f"{directory}/{CREDENTIALS_FILE_KEY}"},
            {"name": "AWS_CONFIG_FILE", "value": f"{directory}/{CONFIG_FILE_KEY}"},
        ],
    )


# --- extra grants (other services than the object store) -------------------------------------

_GRANT_KEY = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_GCP_ROLE = re.compile(r"^roles/[A-Za-z0-9_.]+$")
# Child names the backends use already (`<name>-buckets`, `<name>-role`, ...).
_RESERVED_GRANT_KEYS = frozenset({"buckets", "role", "gsa", "workload-identity-user"})


def check_grant(identity: str, key: str, gcp_project_roles: Iterable[str]) -> None:
    """A grant's key names its children (`<identity>-<key>`): a short DNS label that clashes
    with no fixed child name; GCP roles are predefined `roles/...`."""
    where = f"workload_identities.{identity}.grants.{key}"
    if not _GRANT_KEY.match(key):
        raise ValueError(f"{where}: the key must be 1-32 lowercase letters, digits or '-'")
    if key in _RESERVED_GRANT_KEYS:
        raise ValueError(f"{where}: the key names a child the identity already has")
    for role in gcp_project_roles:
        if not _GCP_ROLE.match(role):
            raise ValueError(f"{where}: {role!r} is not a predefined role (roles/...)")


def role_slug(role: str) -> str:
    """`roles/managedkafka.client` -> `managedkafka-client` (for child names)."""
    return re.sub(r"[^a-z0-9]+", "-", role.removeprefix("roles/").lower()).strip("-")
