"""Workload identity: a Kubernetes service account that may use named buckets, no static keys."""

from components.identity.model import Access, WorkloadIdentityConfig
from components.identity.resources import ClusterIdentity, WorkloadIdentity, WorkloadIdentityArgs

__all__ = [
    "Access",
    "ClusterIdentity",
    "WorkloadIdentity",
    "WorkloadIdentityArgs",
    "WorkloadIdentityConfig",
]
