"""`GpuNodePools`: GPU node pools on the cluster, and the device plugin where the cloud has none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.cloud import Cloud
from mlops_platform.components.cluster.aws import create_node_group
from mlops_platform.components.cluster.gcp import create_node_pool
from mlops_platform.components.cluster.model import select_zones
from mlops_platform.components.cluster.wiring import EksNodeAccess, GkeNodeAccess, NodeAccess
from mlops_platform.components.gpu.model import (
    DEVICE_PLUGIN_NAMESPACE,
    DEVICE_PLUGIN_RELEASE,
    EksGpuPoolConfig,
    GkeGpuPoolConfig,
    GpuPoolConfig,
    device_plugin_values,
    gpu_pool_spec,
    pool_problems,
)
from mlops_platform.components.network import Network
from mlops_platform.components.versions import NVIDIA_DEVICE_PLUGIN

_NODE_ACCESS = {"aws": EksNodeAccess, "gcp": GkeNodeAccess}


@dataclass(frozen=True)
class GpuNodePoolsArgs:
    """Inputs of `GpuNodePools`.

    Attributes:
        cloud: The stack's cloud: EKS managed node groups, GKE node pools, or nothing locally.
        pools: The `gpu_pools` settings, keyed by pool name (the key names the node group and its
            label).
        kubernetes: The provider the NVIDIA device plugin is installed with (AWS).
        network: The cluster's network (`KubernetesCluster.network`, the one hand-off Kafka,
            MLflow and Feast take too): the pools' nodes join its private subnets (AWS) or its
            project and region (GCP). Required on the clouds when there are pools; None locally.
        nodes: How the pools' nodes join the cluster (`KubernetesCluster.node_access`: node role
            or service account). Required on the clouds when there are pools; None locally.
    """

    cloud: Cloud
    pools: Mapping[str, GpuPoolConfig]
    # the provider in-cluster resources use (normally `cluster.provider`)
    kubernetes: k8s.Provider
    network: Network | None = None
    nodes: NodeAccess | None = None


def _attachment_problems(args: GpuNodePoolsArgs) -> list[tuple[str, str]]:
    """What the pools need from the cluster and its network, as (field, message)."""
    cloud = args.cloud.type
    if cloud == "local" or not args.pools:
        return []
    problems = []
    if args.network is None:
        problems.append(
            ("GpuNodePoolsArgs.network", f"the cluster's network is required on {cloud}")
        )
    else:
        try:
            args.network.require(cloud, "GpuNodePoolsArgs.network")
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            problems.append((field, message))
        else:
            if cloud == "aws" and not args.network.zones:
                problems.append(
                    (
                        "GpuNodePoolsArgs.network",
                        "the zones of its private subnets are required (the cluster's own "
                        "network, not one read back in a later layer)",
                    )
                )
    if not isinstance(args.nodes, _NODE_ACCESS[cloud]):
        problems.append(
            ("GpuNodePoolsArgs.nodes", f"the {cloud} cluster's node access is required")
        )
    return problems


def _zone_problems(args: GpuNodePoolsArgs, checked: set[str]) -> list[tuple[str, str]]:
    """AWS: a pool's zones among the network's (known only once the cluster is planned)."""
    if args.cloud.type != "aws" or args.network is None or not args.network.zones:
        return []
    problems = []
    for key, pool in args.pools.items():
        if key in checked or not isinstance(pool, EksGpuPoolConfig):
            continue
        try:
            select_zones(gpu_pool_spec(key, pool), list(args.network.zones), "")
        except ValueError as exc:
            problems.append((f"gpu_pools.{key}.zones", str(exc).removeprefix(": ")))
    return problems


def _aws_pools(name, args: GpuNodePoolsArgs, parent) -> dict[str, pulumi.CustomResource]:
    if not args.pools:
        return {}
    assert args.network is not None and isinstance(args.nodes, EksNodeAccess)
    return {
        key: create_node_group(
            f"{name}-{key}",
            gpu_pool_spec(key, pool),
            args.network,
            args.nodes,
            parent,
            f"gpu_pools.{key}",
        )
        for key, pool in args.pools.items()
        if isinstance(pool, EksGpuPoolConfig)
    }


def _gcp_pools(name, args: GpuNodePoolsArgs, parent) -> dict[str, pulumi.CustomResource]:
    if not args.pools:
        return {}
    assert args.network is not None and isinstance(args.nodes, GkeNodeAccess)
    return {
        key: create_node_pool(
            f"{name}-{key}", gpu_pool_spec(key, pool), args.network, args.nodes, parent
        )
        for key, pool in args.pools.items()
        if isinstance(pool, GkeGpuPoolConfig)
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
    """NVIDIA GPU node pools (EKS managed node groups, GKE node pools) and the device plugin.

    Attributes:
        node_pools: Pool key to EKS node group / GKE node pool id (empty locally).
        device_plugin: Name of the NVIDIA device plugin's Helm release (AWS); None where none is
            deployed (GKE installs its own).
    """

    def __init__(
        self, name: str, args: GpuNodePoolsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        # everything is checked before anything is registered
        problems = pool_problems(args.pools, args.cloud)
        problems += _attachment_problems(args)
        problems += _zone_problems(args, {path.split(".")[1] for path, _ in problems})
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
