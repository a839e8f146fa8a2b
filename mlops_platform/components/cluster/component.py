"""`KubernetesCluster`: network, cluster, system pool and the Kubernetes provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi

from mlops_platform.components.cloud import Cloud
from mlops_platform.components.cluster import aws, gcp, local
from mlops_platform.components.cluster.model import ClusterConfig
from mlops_platform.components.cluster.wiring import ClusterParts, EksNodeWiring, GkeNodeWiring
from mlops_platform.components.network import Network

# The cloud picks the implementation; every one returns the same ClusterParts.
_IMPLEMENTATIONS: dict[str, Callable[..., ClusterParts]] = {
    "aws": aws.build,
    "gcp": gcp.build,
    "local": local.build,
}


@dataclass(frozen=True)
class KubernetesClusterArgs:
    cloud: Cloud
    config: ClusterConfig
    # protect + retain the cluster and its secrets key (and EKS/GKE deletion protection)
    protect: bool = False


class KubernetesCluster(pulumi.ComponentResource):
    """The cluster every in-cluster component deploys to, through `provider`.

    Outputs: `provider`, `kubeconfig` (secret; None locally), `cluster_name`, `endpoint`
    (None locally), `oidc_provider_arn` + `oidc_issuer` (AWS, else None), `workload_pool` (GCP,
    else None). `node_wiring` is what `GpuNodePools` attaches node pools to; `network` is where
    in-VPC services (databases, Kafka) attach: VPC, private subnets and the cluster security
    group on AWS, network and node subnetwork on GCP, None locally. `prerequisites` is what
    in-cluster components that claim volumes should depend on: on EKS the managed add-ons (EBS
    CSI driver included) and the default `gp3` StorageClass; empty on GKE and locally, where
    the cluster comes with them (mlops_platform/components/capabilities/catalog.py names what).
    """

    node_wiring: EksNodeWiring | GkeNodeWiring | None
    network: Network | None

    def __init__(
        self, name: str, args: KubernetesClusterArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlops:cluster:KubernetesCluster", name, None, opts)
        build = _IMPLEMENTATIONS[args.cloud.type]
        parts = build(name, args.cloud, args.config, args.protect, self)
        self.provider = parts.provider
        self.kubeconfig = parts.kubeconfig
        self.cluster_name = parts.cluster_name
        self.endpoint = parts.endpoint
        self.oidc_provider_arn = parts.oidc_provider_arn
        self.oidc_issuer = parts.oidc_issuer
        self.workload_pool = parts.workload_pool
        self.node_wiring = parts.node_wiring
        self.network = parts.network
        self.prerequisites = list(parts.prerequisites)
        self.register_outputs(
            {
                "kubeconfig": self.kubeconfig,
                "cluster_name": self.cluster_name,
                "endpoint": self.endpoint,
                "oidc_provider_arn": self.oidc_provider_arn,
                "oidc_issuer": self.oidc_issuer,
                "workload_pool": self.workload_pool,
            }
        )
