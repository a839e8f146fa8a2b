"""Workload identity: a Kubernetes service account that may use named buckets, no static keys."""

from mlops_platform.components.identity.model import (
    Access,
    WorkloadIdentityConfig,
    check_buckets,
    check_identity_name,
    credentials_secret_name,
)
from mlops_platform.components.identity.resources import (
    CloudGrant,
    ClusterIdentity,
    WorkloadIdentity,
    WorkloadIdentityArgs,
)

__all__ = [
    "Access",
    "CloudGrant",
    "ClusterIdentity",
    "WorkloadIdentity",
    "WorkloadIdentityArgs",
    "WorkloadIdentityConfig",
    "check_buckets",
    "check_identity_name",
    "credentials_secret_name",
]
