"""What one layer hands to the next: exported by the earlier stack, read through a
`pulumi.StackReference` by the later one, and turned back into the objects the components take.

Each hand-off has both halves side by side (`*_exports` and `*_from`), so what is exported is
exactly what is read. Sizes a later layer needs up front (how many subnets, which buckets) come
from the validated config, which every layer of an environment shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components import network as network_handoff
from mlops_platform.components.cluster import KubernetesCluster
from mlops_platform.components.network import Network
from mlops_platform.components.storage import ObjectStore
from mlops_platform.config import PlatformConfig

# Project of each layer (deploy/<layer>/Pulumi.yaml); the stack name is the environment's.
PROJECT_PREFIX = "mlops-"


def project_of(layer: str) -> str:
    return f"{PROJECT_PREFIX}{layer}"


def layer_of_project(project: str) -> str | None:
    return project.removeprefix(PROJECT_PREFIX) if project.startswith(PROJECT_PREFIX) else None


def reference_name(organization: str, layer: str, stack: str) -> str:
    """`org/project/stack`, what `pulumi.StackReference` resolves on every backend (the
    self-managed backends use the organization `organization`)."""
    return f"{organization}/{project_of(layer)}/{stack}"


def _item(output: pulumi.Output[Any], *path: str | int) -> pulumi.Output[Any]:
    def pick(value: Any) -> Any:
        for key in path:
            value = value[key]
        return value

    return output.apply(pick)


# -- the cluster ------------------------------------------------------------------------------


def cluster_exports(cluster: KubernetesCluster) -> dict[str, Any]:
    network = cluster.network
    exported: dict[str, Any] = {
        "cluster_name": cluster.cluster_name,
        "kubeconfig": pulumi.Output.secret(cluster.kubeconfig) if cluster.kubeconfig else None,
        "oidc_provider_arn": cluster.oidc_provider_arn,
        "oidc_issuer": cluster.oidc_issuer,
        "workload_pool": cluster.workload_pool,
        # the one network hand-off (mlops_platform/components/network.py), for what attaches to the network
        "network": network_handoff.exports(network) if network is not None else None,
    }
    return exported


@dataclass(frozen=True)
class ClusterHandoff:
    """The parts of `KubernetesCluster` later layers use (`ClusterIdentity` for identities)."""

    provider: k8s.Provider
    network: Network | None
    oidc_provider_arn: pulumi.Output[str] | None = None
    oidc_issuer: pulumi.Output[str] | None = None
    workload_pool: pulumi.Output[str] | None = None


def cluster_from(
    infra: pulumi.StackReference, platform: PlatformConfig, provider_name: str
) -> ClusterHandoff:
    """The cluster of the infra layer, with a Kubernetes provider of this layer's own.

    The provider keeps the name the single-stack program gave it (a child of the cluster
    component): the alias lets a state moved from that stack keep its provider."""
    cloud = platform.cloud
    alias = pulumi.Alias(
        parent=pulumi.create_urn(
            provider_name.removesuffix("-k8s"), "mlops:cluster:KubernetesCluster"
        )
    )
    if cloud.type == "local":
        provider = k8s.Provider(
            provider_name,
            context=cloud.kube_context,
            opts=pulumi.ResourceOptions(aliases=[alias]),
        )
        return ClusterHandoff(provider=provider, network=None)
    provider = k8s.Provider(
        provider_name,
        kubeconfig=infra.get_output("kubeconfig"),
        opts=pulumi.ResourceOptions(aliases=[alias]),
    )
    network = network_from(infra, platform)
    return ClusterHandoff(
        provider=provider,
        network=network,
        oidc_provider_arn=infra.get_output("oidc_provider_arn"),
        oidc_issuer=infra.get_output("oidc_issuer"),
        workload_pool=infra.get_output("workload_pool"),
    )


def network_from(infra: pulumi.StackReference, platform: PlatformConfig) -> Network:
    """The infra layer's `network` export as the hand-off again. How many subnets and groups
    there are, the CIDR, project and region come from the config every layer shares; the ids
    are the infra layer's outputs."""
    out = infra.get_output("network")
    cloud = platform.cloud
    if cloud.type == "aws":
        return Network(
            cloud="aws",
            network_id=_item(out, "network_id"),
            cidr=platform.cluster.network.vpc_cidr,
            private_subnet_ids=[
                _item(out, "private_subnet_ids", i)
                for i in range(platform.cluster.network.availability_zones)
            ],
            client_security_group_ids=[_item(out, "client_security_group_ids", 0)],
        )
    if cloud.type == "gcp":
        return Network(
            cloud="gcp",
            network_id=_item(out, "network_id"),
            cidr=platform.cluster.network.vpc_cidr,
            private_subnet_ids=[_item(out, "private_subnet_ids", 0)],
            project=cloud.project,
            region=cloud.region,
        )
    raise ValueError(f"cloud {cloud.type!r}: a local cluster hands over no network")


# -- the object store -------------------------------------------------------------------------


def storage_exports(store: ObjectStore, identities: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level exports: `storage`, and locally the MinIO users' keys (a secret) for the
    identities' credential Secrets."""
    return {
        "storage": {
            "bucket_names": store.bucket_names,
            "bucket_uris": store.bucket_uris,
            "bucket_arns": store.bucket_arns,
            "endpoint": store.endpoint,
            "kms_key_arn": store.kms_key_arn,
        },
        "minio_secret_keys": pulumi.Output.secret(
            {key: store.minio_secret_key(key) for key in identities}
        )
        if store.endpoint is not None
        else None,
    }


@dataclass(frozen=True)
class StorageHandoff:
    """The parts of `ObjectStore` later layers use, read from the infra layer."""

    bucket_names: dict[str, pulumi.Output[str]]
    bucket_uris: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    endpoint: pulumi.Output[str] | None
    kms_key_arn: pulumi.Output[str] | None
    _minio_secret_keys: pulumi.Output[dict[str, str]] | None = field(default=None)

    def minio_secret_key(self, identity: str) -> pulumi.Output[str]:
        if self._minio_secret_keys is None:
            raise ValueError(f"workload_identities.{identity}: no MinIO user (local stacks only)")
        return pulumi.Output.secret(_item(self._minio_secret_keys, identity))


def storage_from(infra: pulumi.StackReference, platform: PlatformConfig) -> StorageHandoff:
    buckets = sorted(platform.storage.buckets)
    storage = infra.get_output("storage")

    def per_bucket(key: str) -> dict[str, pulumi.Output[str]]:
        return {bucket: _item(storage, key, bucket) for bucket in buckets}

    local = platform.cloud.type == "local"
    return StorageHandoff(
        bucket_names=per_bucket("bucket_names"),
        bucket_uris=per_bucket("bucket_uris"),
        bucket_arns=per_bucket("bucket_arns") if platform.cloud.type == "aws" else {},
        endpoint=_item(storage, "endpoint") if local else None,
        kms_key_arn=_item(storage, "kms_key_arn") if platform.cloud.type == "aws" else None,
        _minio_secret_keys=infra.get_output("minio_secret_keys") if local else None,
    )
