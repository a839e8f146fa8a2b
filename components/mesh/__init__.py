"""Service mesh: Istio (base, CNI, istiod, optional ingress gateway) with mesh-wide mTLS."""

from components.mesh.model import (
    CniConfig,
    IngressGatewayConfig,
    IstiodConfig,
    MeshConfig,
    ResourcesConfig,
)
from components.mesh.resources import IstioMesh, IstioMeshArgs

__all__ = [
    "CniConfig",
    "IngressGatewayConfig",
    "IstioMesh",
    "IstioMeshArgs",
    "IstiodConfig",
    "MeshConfig",
    "ResourcesConfig",
]
