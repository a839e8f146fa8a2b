"""Kubeflow Pipelines, pure layer: config model, upstream manifest locations, and the objects
the platform renders itself (the `kfp-launcher` ConfigMap and a NetworkPolicy for MySQL).

The backend comes from the upstream kustomize manifests at the release pinned in
`components/versions.py`: `cluster-scoped-resources` (the `kubeflow` Namespace, CRDs, cluster
RBAC) straight from GitHub, and `env/platform-agnostic` through the small overlay in
`kustomize/`, which removes the two objects the platform owns (see its comments). Pipeline
steps run as the `pipeline-runner` service account, which the `pipelines` workload identity
creates, and write their artifacts under `defaultPipelineRoot` in the platform's bucket.

The `kfp-launcher` keys and the `providers` schema are the backend's own, read in the pinned
release's `backend/src/v2/config/{env,s3,gcs,minio}.go`: without `providers` for a scheme the
launcher opens the bucket with the environment's default credentials, which is what IRSA and
GKE Workload Identity give the runner's pods; locally MinIO needs an endpoint and a key pair,
read from the identity's Secret in the same namespace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from components import kube
from components.base import StrictModel
from components.identity.model import WorkloadIdentityConfig, credentials_secret_name
from components.versions import KUBEFLOW_PIPELINES

CloudType = Literal["aws", "gcp", "local"]

# Fixed by the upstream kustomizations (their `namespace:` fields, the cache-deployer
# ClusterRoleBinding, the API server's in-cluster address): not a config field.
NAMESPACE = "kubeflow"
# The API server's default runner (backend/src/apiserver/common/const.go); the overlay removes
# upstream's copy so that the workload identity's ServiceAccount is the only one.
RUNNER_SERVICE_ACCOUNT = "pipeline-runner"
API_SERVICE = "ml-pipeline"
API_PORT = 8888
UI_SERVICE = "ml-pipeline-ui"
LAUNCHER_CONFIGMAP = "kfp-launcher"
MYSQL_APP_LABEL = "mysql"  # upstream third-party/mysql: Deployment and Service select app=mysql
MYSQL_PORT = 3306
MYSQL_NETWORK_POLICY = "platform-mysql-ingress"
MANAGED_BY = kube.MANAGED_BY

CLUSTER_SCOPED_PATH = "manifests/kustomize/cluster-scoped-resources"
ENV_PATH = "manifests/kustomize/env/platform-agnostic"
OVERLAY_DIR = Path(__file__).parent / "kustomize"


def overlay_directory() -> str:
    """The overlay relative to the working directory (the Pulumi project root under `pulumi
    up`): the state and the plan then hold the same path on every machine and checkout."""
    return os.path.relpath(OVERLAY_DIR)


# Keys of the identity's credentials Secret (components/identity/resources.py, local).
ACCESS_KEY_KEY = "AWS_ACCESS_KEY_ID"
SECRET_KEY_KEY = "AWS_SECRET_ACCESS_KEY"
# MinIO accepts any region unless its server sets one; the AWS SDK in the launcher needs one.
MINIO_REGION = "us-east-1"

_KEY = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_ROOT_SCHEME: dict[str, str] = {"aws": "s3", "gcp": "gs", "local": "minio"}


class PipelinesConfig(StrictModel):
    """Kubeflow Pipelines (standalone). The release is pinned in components/versions.py."""

    artifact_bucket: str = Field(
        default="artifacts",
        description="Key in `storage.buckets` of the bucket pipeline artifacts are written to.",
    )
    pipeline_root_prefix: str = Field(
        default="pipelines",
        description="Folder of the pipeline root inside that bucket (`<scheme>://<bucket>/"
        "<prefix>`); the bucket is shared with MLflow and others.",
    )

    @field_validator("artifact_bucket")
    @classmethod
    def _bucket_key(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(
                f"artifact_bucket {value!r} must be a key of storage.buckets (lowercase letters, "
                "digits or '-')"
            )
        return value

    @field_validator("pipeline_root_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _PREFIX.match(value) or any(part in (".", "..") for part in value.split("/")):
            raise ValueError(
                f"pipeline_root_prefix {value!r} must be one or more '/'-separated folder names "
                "(letters, digits, '.', '_', '-'), without leading or trailing '/'"
            )
        return value


# --- checks across the root config ------------------------------------------------------------


def runner_identity(identities: Mapping[str, WorkloadIdentityConfig]) -> str | None:
    """The key of the workload identity pipeline steps run as, if there is one."""
    for key, identity in identities.items():
        if (identity.namespace, identity.service_account) == (NAMESPACE, RUNNER_SERVICE_ACCOUNT):
            return key
    return None


def pipelines_problems(
    config: PipelinesConfig,
    bucket_keys: Iterable[str],
    identities: Mapping[str, WorkloadIdentityConfig],
) -> list[tuple[str, str]]:
    """(field path, message) for a root-config validator; empty when KFP can run. The component
    raises on the first one too."""
    known = sorted(bucket_keys)
    if config.artifact_bucket not in known:
        return [
            (
                "pipelines.artifact_bucket",
                f"unknown bucket {config.artifact_bucket!r}; storage.buckets has "
                f"{', '.join(repr(k) for k in known) or 'none'}",
            )
        ]
    key = runner_identity(identities)
    if key is None:
        return [
            (
                "pipelines",
                f"pipeline steps run as {NAMESPACE}/{RUNNER_SERVICE_ACCOUNT}: add a "
                f"workload_identities entry with namespace {NAMESPACE!r} and service_account "
                f"{RUNNER_SERVICE_ACCOUNT!r} and read_write on {config.artifact_bucket!r}",
            )
        ]
    if identities[key].buckets.get(config.artifact_bucket) != "read_write":
        return [
            (
                f"workload_identities.{key}.buckets",
                f"the pipeline runner writes artifacts to {config.artifact_bucket!r} "
                "(pipelines.artifact_bucket): it needs read_write",
            )
        ]
    return []


# --- values ----------------------------------------------------------------------------------


def cluster_scoped_url() -> str:
    """Upstream `cluster-scoped-resources` at the pinned release (a kustomize remote target)."""
    return KUBEFLOW_PIPELINES.url(CLUSTER_SCOPED_PATH)


def env_url() -> str:
    """Upstream `env/platform-agnostic` at the pinned release: the overlay's only resource."""
    return KUBEFLOW_PIPELINES.url(ENV_PATH)


def pipeline_root(cloud_type: CloudType, bucket: str, prefix: str) -> str:
    """`s3://` on AWS, `gs://` on GCP, `minio://` locally (the launcher's MinIO provider)."""
    return f"{_ROOT_SCHEME[cloud_type]}://{bucket}/{prefix}"


def api_endpoint() -> str:
    return f"http://{API_SERVICE}.{NAMESPACE}.svc.cluster.local:{API_PORT}"


def launcher_providers(cloud_type: CloudType, minio_endpoint: str | None) -> dict[str, Any] | None:
    """The `providers` document, or None where the runner's workload identity is enough.

    Locally both `minio://` (the pipeline root) and `s3://` (what the object store reports as
    bucket URIs, e.g. a pipeline's `data_uri`) reach the MinIO server with the runner's keys.
    """
    if cloud_type != "local":
        return None
    if not minio_endpoint:
        raise ValueError("pipelines: locally the object store must report its MinIO endpoint")

    def default() -> dict[str, Any]:  # a fresh dict per provider: no YAML anchors
        return {
            "endpoint": minio_endpoint,
            "region": MINIO_REGION,
            "disableSSL": minio_endpoint.startswith("http://"),
            "forcePathStyle": True,
            "credentials": {
                "fromEnv": False,
                "secretRef": {
                    "secretName": credentials_secret_name(RUNNER_SERVICE_ACCOUNT),
                    "accessKeyKey": ACCESS_KEY_KEY,
                    "secretKeyKey": SECRET_KEY_KEY,
                },
            },
        }

    return {"minio": {"default": default()}, "s3": {"default": default()}}


def launcher_configmap(
    cloud_type: CloudType, bucket: str, prefix: str, minio_endpoint: str | None = None
) -> dict[str, Any]:
    """The `kfp-launcher` ConfigMap the driver and launcher read in the run's namespace."""
    data = {"defaultPipelineRoot": pipeline_root(cloud_type, bucket, prefix)}
    providers = launcher_providers(cloud_type, minio_endpoint)
    if providers is not None:
        data["providers"] = yaml.safe_dump(providers, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": LAUNCHER_CONFIGMAP,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
        },
        "data": data,
    }


def mysql_network_policy() -> dict[str, Any]:
    """Upstream's MySQL has a root account without a password: only pods of the KFP namespace
    (API server, cache server, metadata gRPC) may reach it."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": MYSQL_NETWORK_POLICY,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY},
        },
        "spec": {
            "podSelector": {"matchLabels": {"app": MYSQL_APP_LABEL}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {}}],
                    "ports": [{"protocol": "TCP", "port": MYSQL_PORT}],
                }
            ],
        },
    }
