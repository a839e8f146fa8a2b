"""GPU node pools as data, and the plain values derived from them (no Pulumi here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.cluster.model import (
    GPU_TAINT,
    POOL_LABEL,
    NodePoolSpec,
    Taint,
    check_labels,
)

# Set on every GPU node; also what the device plugin chart's own affinity looks for.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
DEVICE_PLUGIN_NAMESPACE = "kube-system"  # system-node-critical pods belong in kube-system
DEVICE_PLUGIN_RELEASE = "nvidia-device-plugin"

_POOL_KEY = re.compile(r"^[a-z]([-a-z0-9]{0,22}[a-z0-9])?$")
RESERVED_POOL_KEYS = frozenset({"system"})


def _check_taints(taints: list[Taint]) -> None:
    keys = [(t.key, t.effect) for t in taints]
    if len(set(keys)) != len(keys):
        raise ValueError("taints: each key and effect may appear once")


class _CloudGpuPool(StrictModel):
    """What a GPU node pool's settings share on both clouds."""

    min_size: int = Field(
        default=0, ge=0, description="Fewest nodes; 0 lets the pool scale to zero."
    )
    max_size: int = Field(default=1, ge=1, description="Most nodes the autoscaler may add.")
    spot: bool = Field(
        default=False, description="Spot (AWS) / Spot VMs (GCP): cheaper, may be reclaimed."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra node labels (the pool label is always set)."
    )
    taints: list[Taint] = Field(
        default_factory=lambda: [GPU_TAINT],
        description="Node taints; by default nvidia.com/gpu=present:NoSchedule keeps pods that "
        "do not ask for a GPU off these nodes.",
    )
    disk_size_gib: int = Field(
        default=100, ge=20, description="Root disk, GiB (GPU images are large)."
    )
    zones: list[str] = Field(
        default_factory=list,
        description="Zones the pool may use (GPU types are not offered everywhere). Empty: all "
        "of the cluster's zones.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> _CloudGpuPool:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must be <= max_size ({self.max_size})")
        check_labels(self.labels)
        if GPU_PRESENT_LABEL in self.labels:
            raise ValueError(f"label {GPU_PRESENT_LABEL!r} is set on every GPU pool")
        _check_taints(self.taints)
        return self


class EksGpuPoolConfig(_CloudGpuPool):
    """AWS: a GPU pool as an EKS managed node group."""

    type: Literal["eks"] = Field(default="eks", description="An EKS managed node group (AWS).")
    instance_type: str = Field(description="EC2 GPU instance type (e.g. g6.xlarge).")
    ami_type: Literal["AL2023_x86_64_NVIDIA", "AL2023_ARM_64_NVIDIA"] = Field(
        default="AL2023_x86_64_NVIDIA",
        description="EKS-optimized accelerated AMI (NVIDIA driver and container toolkit "
        "preinstalled; the device plugin is deployed separately).",
    )


class GkeGpuPoolConfig(_CloudGpuPool):
    """GCP: a GPU pool as a GKE node pool with accelerators attached."""

    type: Literal["gke"] = Field(default="gke", description="A GKE node pool (GCP).")
    machine_type: str = Field(description="Compute Engine machine type (e.g. g2-standard-8).")
    accelerator: str = Field(
        description="Accelerator type attached to each node (e.g. nvidia-l4, nvidia-tesla-t4)."
    )
    accelerator_count: int = Field(default=1, ge=1, description="Accelerators per node.")
    gpu_driver_version: Literal["DEFAULT", "LATEST"] = Field(
        default="DEFAULT",
        description="The NVIDIA driver GKE installs: the version's default or the latest.",
    )


class ExistingGpuNodesConfig(StrictModel):
    """Local: GPU nodes the operator labelled `mlops.dev/node-pool=<key>`; nothing is created,
    the device plugin is scheduled onto them."""

    type: Literal["existing"] = Field(
        default="existing", description="Existing nodes of the local cluster."
    )
    taints: list[Taint] = Field(
        default_factory=lambda: [GPU_TAINT],
        description="The taints the nodes carry, which the device plugin tolerates.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExistingGpuNodesConfig:
        _check_taints(self.taints)
        return self


# One GPU pool, a `type:` block: only the chosen cloud's node settings are accepted.
GpuPoolConfig = Annotated[
    EksGpuPoolConfig | GkeGpuPoolConfig | ExistingGpuNodesConfig, Field(discriminator="type")
]
# The pool block each cloud runs (mlops_platform/config.py BACKENDS fills `type` in from the cloud).
GPU_POOL_TYPES: dict[str, type[StrictModel]] = {
    "aws": EksGpuPoolConfig,
    "gcp": GkeGpuPoolConfig,
    "local": ExistingGpuNodesConfig,
}
CloudGpuPool = EksGpuPoolConfig | GkeGpuPoolConfig


def pool_key_problem(key: str) -> str | None:
    if key in RESERVED_POOL_KEYS:
        return "the name is reserved for the system pool"
    if not _POOL_KEY.match(key):
        return "a pool name is 1-24 lowercase letters, digits or '-', starting with a letter"
    return None


def _check_pool_keys(pools: dict[str, GpuPoolConfig]) -> dict[str, GpuPoolConfig]:
    for key in pools:
        problem = pool_key_problem(key)
        if problem:
            raise ValueError(f"gpu_pools.{key}: {problem}")
    return pools


GpuPools = Annotated[dict[str, GpuPoolConfig], AfterValidator(_check_pool_keys)]
"""The root config's `gpu_pools` type: a map keyed by pool name, keys checked."""


def pool_problems(
    pools: Mapping[str, GpuPoolConfig], cloud: AwsCloud | GcpCloud | LocalCloud
) -> list[tuple[str, str]]:
    """Pool names, and checks that need the cloud, as (field path, message): empty when the
    pools fit. For a root-config validator; the component runs it too."""
    problems = []
    for key, pool in pools.items():
        key_problem = pool_key_problem(key)
        if key_problem:
            problems.append((f"gpu_pools.{key}", key_problem))
        wanted = GPU_POOL_TYPES[cloud.type].model_fields["type"].default
        if pool.type != wanted:
            problems.append(
                (
                    f"gpu_pools.{key}.type",
                    f"{pool.type!r} is not the {cloud.type} cluster's node type ({wanted!r})",
                )
            )
            continue
        if isinstance(pool, EksGpuPoolConfig | GkeGpuPoolConfig) and not isinstance(
            cloud, LocalCloud
        ):
            # zone names: the region and a letter, us-east-1a on AWS, europe-west4-a on GCP
            separator = "-" if cloud.type == "gcp" else ""
            pattern = re.compile(rf"{re.escape(cloud.region)}{separator}[a-z]")
            foreign = [zone for zone in pool.zones if not pattern.fullmatch(zone)]
            if foreign:
                problems.append(
                    (f"gpu_pools.{key}.zones", f"{', '.join(foreign)} not in region {cloud.region}")
                )
    return problems


def gpu_pool_spec(key: str, pool: CloudGpuPool) -> NodePoolSpec:
    """The node pool a cloud GPU pool block describes (local pools create nothing)."""
    gke = pool if isinstance(pool, GkeGpuPoolConfig) else None
    eks = pool if isinstance(pool, EksGpuPoolConfig) else None
    return NodePoolSpec(
        key=key,
        instance_type=gke.machine_type if gke else eks.instance_type if eks else "",
        min_size=pool.min_size,
        max_size=pool.max_size,
        disk_size_gib=pool.disk_size_gib,
        spot=pool.spot,
        labels={**pool.labels, POOL_LABEL: key, GPU_PRESENT_LABEL: "true"},
        taints=tuple(pool.taints),
        zones=tuple(pool.zones),
        **(
            {
                "accelerator": gke.accelerator,
                "accelerator_count": gke.accelerator_count,
                "gpu_driver_version": gke.gpu_driver_version,
            }
            if gke
            else {"ami_type": eks.ami_type}
            if eks
            else {}
        ),
    )


def device_plugin_values(pools: Mapping[str, GpuPoolConfig]) -> dict[str, Any]:
    """Helm values of the NVIDIA device plugin: on the GPU pools' nodes only, tolerating their
    taints; GPU feature discovery (and its node-feature-discovery dependency) stays off."""
    tolerations = sorted(
        {(t.key, t.value, t.effect) for pool in pools.values() for t in pool.taints}
    )
    return {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": POOL_LABEL, "operator": "In", "values": sorted(pools)}
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": [
            {"key": key, "operator": "Equal", "value": value, "effect": effect}
            for key, value, effect in tolerations
        ],
        "priorityClassName": "system-node-critical",
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"memory": "128Mi"},
        },
        "gfd": {"enabled": False},
    }
