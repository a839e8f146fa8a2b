"""GPU node pools (EKS managed node groups, GKE node pools) and the NVIDIA device plugin."""

from components.gpu.component import GpuNodePools, GpuNodePoolsArgs
from components.gpu.model import GpuPoolConfig, GpuPools, device_plugin_values, pool_problems

__all__ = [
    "GpuNodePools",
    "GpuNodePoolsArgs",
    "GpuPoolConfig",
    "GpuPools",
    "device_plugin_values",
    "pool_problems",
]
