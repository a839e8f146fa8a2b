"""An existing local cluster (kind, k3d, minikube): nothing is created but the provider."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.cloud import LocalCloud
from mlops_platform.components.cluster.model import ClusterConfig, ExistingNodesConfig
from mlops_platform.components.cluster.wiring import ClusterParts


def build(
    name: str, cloud: LocalCloud, config: ClusterConfig, protect: bool, parent
) -> ClusterParts:
    config.system_pool_of(ExistingNodesConfig)  # the cluster's own nodes: nothing to create
    # The kubeconfig file stays the operator's: only the context is named, so no credential of
    # the local cluster is copied into the Pulumi state.
    provider = k8s.Provider(
        f"{name}-k8s", context=cloud.kube_context, opts=pulumi.ResourceOptions(parent=parent)
    )
    return ClusterParts(
        provider=provider,
        kubeconfig=None,
        cluster_name=pulumi.Output.from_input(cloud.kube_context),
        endpoint=None,
    )
