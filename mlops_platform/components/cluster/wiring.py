"""What a cloud implementation hands back to the component, and how node pools join it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.network import Network


@dataclass(frozen=True)
class EksNodeAccess:
    """What an EKS managed node group needs from its cluster beside the network (the
    `Network` hand-off: each zone's private subnet): the cluster and the node role."""

    cluster_name: str
    cluster: pulumi.Output[str]  # the cluster's name as an output: orders node groups after it
    node_role_arn: pulumi.Output[str]
    tags: Mapping[str, str]
    # what nodes wait for before they can join: the node role's policies, the routes to NAT
    ready: Sequence[pulumi.Resource]


@dataclass(frozen=True)
class GkeNodeAccess:
    """What a GKE node pool needs from its cluster beside the network (the `Network`
    hand-off: project and region): the cluster and the nodes' service account."""

    cluster_id: pulumi.Output[str]
    service_account_email: pulumi.Output[str]
    labels: Mapping[str, str]
    ready: Sequence[pulumi.Resource]


NodeAccess = EksNodeAccess | GkeNodeAccess


@dataclass(frozen=True)
class ClusterParts:
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str] | None
    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str] | None
    oidc_provider_arn: pulumi.Output[str] | None = None
    oidc_issuer: pulumi.Output[str] | None = None
    workload_pool: pulumi.Output[str] | None = None
    node_access: NodeAccess | None = None  # how node pools join the cluster (none locally)
    network: Network | None = None  # the hand-off to what attaches to it (none locally)
    # what in-cluster components with volumes wait for: the storage driver and default class
    # the platform installs (EKS); empty where the cloud or the local cluster provides them
    prerequisites: Sequence[pulumi.Resource] = ()
