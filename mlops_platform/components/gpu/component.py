"""`GpuNodePools`: GPU node pools on the cluster, and the device plugin where the cloud has none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.cloud import Cloud
from mlops_platform.components.cluster import KubernetesCluster
from mlops_platform.components.cluster.aws import create_node_group
from mlops_platform.components.cluster.gcp import create_node_pool
from mlops_platform.components.cluster.model import select_zones
from mlops_platform.components.cluster.wiring import EksNodeWiring, GkeNodeWiring
from mlops_platform.components.gpu.model import (
    DEVICE_PLUGIN_NAMESPACE,
    DEVICE_PLUGIN_RELEASE,
    GpuPoolConfig,
    device_plugin_values,
    gpu_pool_spec,
    pool_problems,
)
from mlops_platform.components.versions import NVIDIA_DEVICE_PLUGIN


@dataclass(frozen=True)
class GpuNodePoolsArgs:
    cloud: Cloud
    pools: Mapping[str, GpuPoolConfig]
    cluster: KubernetesCluster
    # the provider in-cluster resources use (normally `cluster.provider`)
    kubernetes: k8s.Provider


def _aws_pools(name, args: GpuNodePoolsArgs, parent) -> dict[str, pulumi.CustomResource]:
    wiring = args.cluster.node_wiring
    assert isinstance(wiring, EksNodeWiring), "an EKS cluster has EKS node wiring"
    return {
        key: create_node_group(
            f"{name}-{key}", gpu_pool_spec(key, pool), wiring, parent, f"gpu_pools.{key}"
        )
        for key, pool in args.pools.items()
    }


def _gcp_pools(name, args: GpuNodePoolsArgs, parent) -> dict[str, pulumi.CustomResource]:
    wiring = args.cluster.node_wiring
    assert isinstance(wiring, GkeNodeWiring), "a GKE cluster has GKE node wiring"
    return {
        key: create_node_pool(f"{name}-{key}", gpu_pool_spec(key, pool), wiring, parent)
        for key, pool in args.pools.items()
    }


def _local_pools(name, args: GpuNodePoolsArgs, parent) -> dict[str, pulumi.CustomResource]:
    # Nothing is created locally: a pool names existing nodes the operator labelled
    # `mlops.dev/node-pool=<key>` (see README).
    return {}


# (create the pools, deploy the NVIDIA device plugin?) per cloud. GKE installs the driver and
# its own device plugin on accelerator nodes; EKS AL2023 NVIDIA AMIs and local nodes do not.
_IMPLEMENTATIONS = {
    "aws": (_aws_pools, True),
    "gcp": (_gcp_pools, False),
    "local": (_local_pools, True),
}


class GpuNodePools(pulumi.ComponentResource):
    """Outputs: `node_pools` (pool key -> node group / node pool id; empty locally) and
    `device_plugin` (Helm release status name, None where no plugin is deployed)."""

    def __init__(
        self, name: str, args: GpuNodePoolsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        problems = pool_problems(args.pools, args.cloud)
        wiring = args.cluster.node_wiring
        if isinstance(wiring, EksNodeWiring):
            # the cluster's zones are known only now: check before registering anything
            checked = {path.split(".")[1] for path, _ in problems}
            for key, pool in args.pools.items():
                if key in checked:
                    continue
                try:
                    select_zones(gpu_pool_spec(key, pool), list(wiring.subnet_ids_by_zone), "")
                except ValueError as exc:
                    problems.append((f"gpu_pools.{key}.zones", str(exc).removeprefix(": ")))
        if problems:
            raise ValueError(
                "invalid GPU pools: "
                + "; ".join(f"{path}: {message}" for path, message in problems)
            )
        super().__init__("mlops:gpu:NodePools", name, None, opts)
        create_pools, needs_device_plugin = _IMPLEMENTATIONS[args.cloud.type]
        pools = create_pools(name, args, self)
        self.node_pools: dict[str, pulumi.Output[str]] = {
            key: pool.id for key, pool in pools.items()
        }
        self.device_plugin: pulumi.Output[str] | None = None
        if needs_device_plugin and args.pools:
            release = k8s.helm.v3.Release(
                f"{name}-device-plugin",
                name=DEVICE_PLUGIN_RELEASE,
                namespace=DEVICE_PLUGIN_NAMESPACE,
                chart=NVIDIA_DEVICE_PLUGIN.chart,
                version=NVIDIA_DEVICE_PLUGIN.version,
                repository_opts={"repo": NVIDIA_DEVICE_PLUGIN.repo},
                values=device_plugin_values(args.pools),
                opts=pulumi.ResourceOptions(
                    parent=self, provider=args.kubernetes, depends_on=list(pools.values())
                ),
            )
            # typed optional, but a deployed release always has its name
            self.device_plugin = release.status.apply(lambda status: status.name)  # type: ignore[arg-type, return-value]
        self.register_outputs({"node_pools": self.node_pools, "device_plugin": self.device_plugin})
