"""Network and Kubernetes cluster: EKS (AWS), GKE (GCP) or an existing local context."""

from mlops_platform.components.cluster.component import KubernetesCluster, KubernetesClusterArgs
from mlops_platform.components.cluster.model import (
    GPU_TAINT,
    POOL_LABEL,
    ClusterConfig,
    EksSystemPoolConfig,
    ExistingNodesConfig,
    GkeSystemPoolConfig,
    NetworkConfig,
    SystemPoolConfig,
    Taint,
    eks_kubeconfig,
    gke_kubeconfig,
)
from mlops_platform.components.cluster.wiring import EksNodeWiring, GkeNodeWiring

__all__ = [
    "GPU_TAINT",
    "POOL_LABEL",
    "ClusterConfig",
    "EksNodeWiring",
    "EksSystemPoolConfig",
    "ExistingNodesConfig",
    "GkeNodeWiring",
    "GkeSystemPoolConfig",
    "KubernetesCluster",
    "KubernetesClusterArgs",
    "NetworkConfig",
    "SystemPoolConfig",
    "Taint",
    "eks_kubeconfig",
    "gke_kubeconfig",
]
