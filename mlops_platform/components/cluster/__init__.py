"""Network and Kubernetes cluster: EKS (AWS), GKE (GCP) or an existing local context."""

from mlops_platform.components.cluster.component import KubernetesCluster, KubernetesClusterArgs
from mlops_platform.components.cluster.model import (
    CLOUD_ONLY_SETTINGS,
    GPU_TAINT,
    POOL_LABEL,
    SYSTEM_POOL_TYPES,
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
from mlops_platform.components.cluster.wiring import EksNodeAccess, GkeNodeAccess, NodeAccess

__all__ = [
    "CLOUD_ONLY_SETTINGS",
    "GPU_TAINT",
    "POOL_LABEL",
    "SYSTEM_POOL_TYPES",
    "ClusterConfig",
    "EksNodeAccess",
    "EksSystemPoolConfig",
    "ExistingNodesConfig",
    "GkeNodeAccess",
    "GkeSystemPoolConfig",
    "KubernetesCluster",
    "KubernetesClusterArgs",
    "NetworkConfig",
    "NodeAccess",
    "SystemPoolConfig",
    "Taint",
    "eks_kubeconfig",
    "gke_kubeconfig",
]
