"""`KubernetesCluster`: network, cluster, system pool and the Kubernetes provider."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi

from mlops_platform.components.cloud import Cloud
from mlops_platform.components.cluster import aws, gcp, local
from mlops_platform.components.cluster.model import ClusterConfig
from mlops_platform.components.cluster.wiring import ClusterParts, NodeAccess
from mlops_platform.components.network import Network

# The cloud picks the implementation; every one returns the same ClusterParts.
_IMPLEMENTATIONS: dict[str, Callable[..., ClusterParts]] = {
    "aws": aws.build,
    "gcp": gcp.build,
    "local": local.build,
}


@dataclass(frozen=True)
class KubernetesClusterArgs:
    """Inputs of `KubernetesCluster`.

    Attributes:
        cloud: The stack's cloud (`aws`, `gcp` or `local`): picks the implementation (EKS, GKE or an
            existing cluster).
        config: The `cluster` settings: network address plan, Kubernetes version, system node pool,
            API access.
        protect: Protect and retain the cluster and its secrets key, and turn on EKS/GKE deletion
            protection (the root `protect_stateful`).
    """

    cloud: Cloud
    config: ClusterConfig
    # protect + retain the cluster and its secrets key (and EKS/GKE deletion protection)
    protect: bool = False


class KubernetesCluster(pulumi.ComponentResource):
    """The cluster every in-cluster component deploys to, through `provider`.

    Besides the registered outputs below: `provider`, the Kubernetes provider; `network`, the
    one hand-off to what attaches to the network (node pools, databases, Kafka, Redis): VPC,
    private subnets (with their zones) and the cluster security group on AWS, network and node
    subnetwork on GCP, None locally; `node_access`, how a node pool joins the cluster beside it
    (node role / service account; None locally). `prerequisites` is what in-cluster components
    that claim volumes should depend on: on EKS the managed add-ons (EBS CSI driver included)
    and the default `gp3` StorageClass; empty on GKE and locally, where the cluster comes with
    them (mlops_platform/components/capabilities/catalog.py names what).

    Attributes:
        kubeconfig: Kubeconfig of the cluster (exec credentials: `aws eks get-token` or
            `gke-gcloud-auth-plugin`, no stored token); None locally.
        cluster_name: EKS or GKE cluster name; locally the kube context.
        endpoint: API server URL (EKS) or endpoint IP (GKE); None locally.
        oidc_provider_arn: AWS: ARN of the cluster's IAM OIDC provider (what IRSA roles trust).
        oidc_issuer: AWS: the OIDC issuer URL (`https://oidc.eks...`).
        workload_pool: GCP: the Workload Identity pool (`<project>.svc.id.goog`).
    """

    node_access: NodeAccess | None
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
        self.node_access = parts.node_access
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
