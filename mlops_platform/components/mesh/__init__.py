"""Service mesh: Istio (base, CNI, istiod, optional ingress gateway) with mesh-wide mTLS."""

from mlops_platform.components.mesh.model import (
    CniConfig,
    IngressGatewayConfig,
    IstiodConfig,
    MeshConfig,
    ResourcesConfig,
)
from mlops_platform.components.mesh.resources import (
    IstioMesh,
    IstioMeshArgs,
    MeshMutualTls,
    MeshMutualTlsArgs,
    MeshTracing,
    MeshTracingArgs,
)

__all__ = [
    "CniConfig",
    "IngressGatewayConfig",
    "IstioMesh",
    "IstioMeshArgs",
    "IstiodConfig",
    "MeshConfig",
    "MeshMutualTls",
    "MeshMutualTlsArgs",
    "MeshTracing",
    "MeshTracingArgs",
    "ResourcesConfig",
]
