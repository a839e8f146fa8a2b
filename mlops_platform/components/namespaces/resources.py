"""Namespaces for the platform's workloads, labelled for Pod Security Admission."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.namespaces import model


@dataclass(frozen=True)
class WorkloadNamespacesArgs:
    """Inputs of `WorkloadNamespaces`.

    Attributes:
        names: The namespaces to create (the platform derives them from the components' models).
        kubernetes: The provider the Namespaces are created with.
        pod_security: Pod Security level every namespace enforces (`restricted` unless a namespace's
            workloads need less).
    """

    names: Sequence[str]
    kubernetes: k8s.Provider
    pod_security: model.PodSecurityLevel = "restricted"


class WorkloadNamespaces(pulumi.ComponentResource):
    """One `Namespace` per name (`<name>-<namespace>`); `by_name` maps a namespace to it.

    Attributes:
        names: The namespaces created.
    """

    def __init__(
        self, name: str, args: WorkloadNamespacesArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlops:platform:WorkloadNamespaces", name, None, opts)
        labels = model.namespace_labels(args.pod_security)
        self.by_name: dict[str, k8s.core.v1.Namespace] = {
            namespace: k8s.core.v1.Namespace(
                f"{name}-{namespace}",
                metadata={"name": namespace, "labels": labels},
                opts=pulumi.ResourceOptions(parent=self, provider=args.kubernetes),
            )
            for namespace in model.distinct(args.names)
        }
        self.names = pulumi.Output.all(*(ns.metadata.name for ns in self.by_name.values()))
        self.register_outputs({"names": self.names})
