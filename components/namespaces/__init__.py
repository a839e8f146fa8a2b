"""Namespaces for platform workloads, labelled for Pod Security Admission."""

from components.namespaces.model import namespace_labels
from components.namespaces.resources import WorkloadNamespaces, WorkloadNamespacesArgs

__all__ = ["WorkloadNamespaces", "WorkloadNamespacesArgs", "namespace_labels"]
