"""GPU node pools (EKS managed node groups, GKE node pools) and the NVIDIA device plugin."""

from mlops_platform.components.gpu.component import GpuNodePools, GpuNodePoolsArgs
from mlops_platform.components.gpu.model import (
    GPU_POOL_TYPES,
    EksGpuPoolConfig,
    ExistingGpuNodesConfig,
    GkeGpuPoolConfig,
    GpuPoolConfig,
    GpuPools,
    device_plugin_values,
    pool_problems,
)

__all__ = [
    "GPU_POOL_TYPES",
    "EksGpuPoolConfig",
    "ExistingGpuNodesConfig",
    "GkeGpuPoolConfig",
    "GpuNodePools",
    "GpuNodePoolsArgs",
    "GpuPoolConfig",
    "GpuPools",
    "device_plugin_values",
    "pool_problems",
]
