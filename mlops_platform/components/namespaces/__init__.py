"""Namespaces for platform workloads, labelled for Pod Security Admission."""

from mlops_platform.components.namespaces.model import namespace_labels
from mlops_platform.components.namespaces.resources import (
    WorkloadNamespaces,
    WorkloadNamespacesArgs,
)

__all__ = ["WorkloadNamespaces", "WorkloadNamespacesArgs", "namespace_labels"]
