"""The one network hand-off: what the cluster's network hands to every component that attaches
to it (MLflow's database, Kafka, Feast's online store, the GPU node pools), on every cloud.

The cluster component produces it, the infra layer exports it (`exports`, read back by
`mlops_platform/handoff.py` `network_from`), and the consumers take this one type instead of a
cloud-specific object each: a consumer reads the fields its backend needs and `require`s the
cloud it runs on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pulumi

NetworkCloud = Literal["aws", "gcp"]


@dataclass(frozen=True)
class Network:
    """A cluster's network, as the attaching components need it.

    - `network_id`: the AWS VPC id; the GCP VPC network's id (`projects/P/global/networks/N`,
      what Cloud SQL's private IP and Memorystore's authorized network take).
    - `cidr`: the AWS VPC's CIDR; the GCP node subnetwork's primary range.
    - `private_subnet_ids`: AWS: one private subnet per zone (RDS, MSK, ElastiCache subnet
      groups); GCP: the node subnetwork (`projects/P/regions/R/subnetworks/S`: Managed Kafka's
      Private Service Connect endpoints).
    - `client_security_group_ids`: AWS only: the groups the cluster's pods carry (the EKS cluster
      security group, on the control plane and every managed node group): in-VPC services
      admit these and nothing else.
    - `project`, `region`: GCP only, where the private services (and node pools) are created.
    - `zones`: AWS: the zone of each private subnet, in the same order, for node pools that
      keep to some zones. Known where the network is made (the infra layer, which attaches the
      node pools); not exported, so empty in a later layer, whose consumers need no zone.
    """

    cloud: NetworkCloud
    network_id: pulumi.Input[str]
    cidr: str
    private_subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_ids: Sequence[pulumi.Input[str]] = ()
    project: str | None = None
    region: str | None = None
    zones: Sequence[str] = ()

    def __post_init__(self) -> None:
        # frozen and comparable: whatever sequences were given, tuples are kept
        for name in ("private_subnet_ids", "client_security_group_ids", "zones"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = network_problems(self)
        if problems:
            raise ValueError("Network: " + "; ".join(problems))

    def require(self, cloud: str, consumer: str) -> Network:
        """This network, if it is of `cloud`; else an error naming the consumer's field."""
        if self.cloud != cloud:
            raise ValueError(
                f"{consumer}: a {cloud} network is required, got the {self.cloud} cluster's"
            )
        return self

    # The names the consumers use for the cloud's own objects.
    @property
    def vpc_id(self) -> pulumi.Input[str]:
        return self.network_id

    @property
    def subnetwork_id(self) -> pulumi.Input[str]:
        return self.private_subnet_ids[0]

    @property
    def cluster_security_group_id(self) -> pulumi.Input[str]:
        return self.client_security_group_ids[0]

    @property
    def subnet_ids_by_zone(self) -> dict[str, pulumi.Input[str]]:
        """AWS: each zone's private subnet (empty where the zones are not known)."""
        if not self.zones:
            return {}
        return dict(zip(self.zones, self.private_subnet_ids, strict=True))


def network_problems(network: Network) -> list[str]:
    """What is wrong with a network for its cloud, as readable problems (empty: valid)."""
    problems = []
    try:
        ipaddress.ip_network(network.cidr)
    except ValueError:
        problems.append(f"cidr {network.cidr!r} is not a CIDR block")
    if network.cloud not in ("aws", "gcp"):
        problems.append(f"cloud {network.cloud!r} must be aws or gcp (a local cluster has none)")
    elif network.cloud == "aws":
        if not network.private_subnet_ids:
            problems.append("private_subnet_ids: at least one private subnet is required on AWS")
        if not network.client_security_group_ids:
            problems.append(
                "client_security_group_ids: the cluster's security group is required on AWS "
                "(nothing else may reach the in-VPC services)"
            )
        if network.project is not None or network.region is not None:
            problems.append("project, region: GCP only")
        if network.zones and len(network.zones) != len(network.private_subnet_ids):
            problems.append("zones: one per private subnet, in the same order")
    else:
        if len(network.private_subnet_ids) != 1:
            problems.append("private_subnet_ids: exactly the node subnetwork on GCP")
        if network.client_security_group_ids:
            problems.append("client_security_group_ids: AWS only (GCP uses firewall rules)")
        if not network.project or not network.region:
            problems.append("project, region: required on GCP")
        if network.zones:
            problems.append("zones: AWS only (a GKE node pool names its zones itself)")
    return problems


# -- the stack-output form (mlops_platform/handoff.py) -------------------------------------------------


def exports(network: Network) -> dict[str, Any]:
    """What the infra layer exports: plain keys, the cloud's objects as Outputs (not `zones`:
    only the infra layer's node pools use them)."""
    return {
        "cloud": network.cloud,
        "network_id": network.network_id,
        "cidr": network.cidr,
        "private_subnet_ids": list(network.private_subnet_ids),
        "client_security_group_ids": list(network.client_security_group_ids),
        "project": network.project,
        "region": network.region,
    }
