"""What a cloud implementation hands back to the component, and what node pools attach to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.network import Network


@dataclass(frozen=True)
class EksNodeWiring:
    """Everything an EKS managed node group needs from its cluster."""

    cluster_name: str
    cluster: pulumi.Output[str]  # the cluster's name as an output: orders node groups after it
    node_role_arn: pulumi.Output[str]
    subnet_ids_by_zone: Mapping[str, pulumi.Output[str]]
    tags: Mapping[str, str]
    depends_on: Sequence[pulumi.Resource]


@dataclass(frozen=True)
class GkeNodeWiring:
    """Everything a GKE node pool needs from its cluster."""

    cluster_id: pulumi.Output[str]
    project: str
    location: str
    service_account_email: pulumi.Output[str]
    labels: Mapping[str, str]
    depends_on: Sequence[pulumi.Resource]


@dataclass(frozen=True)
class ClusterParts:
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str] | None
    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str] | None
    oidc_provider_arn: pulumi.Output[str] | None = None
    oidc_issuer: pulumi.Output[str] | None = None
    workload_pool: pulumi.Output[str] | None = None
    node_wiring: EksNodeWiring | GkeNodeWiring | None = None
    network: Network | None = None  # the hand-off to what attaches to it (none locally)
    # what in-cluster components with volumes wait for: the storage driver and default class
    # the platform installs (EKS); empty where the cloud or the local cluster provides them
    prerequisites: Sequence[pulumi.Resource] = ()
