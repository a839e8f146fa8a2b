"""mlops_platform/components/network.py: the one network hand-off, table-tested (no Pulumi engine needed)."""

from __future__ import annotations

import pytest

from mlops_platform.components import network as handoff
from mlops_platform.components.network import Network

AWS = {
    "cloud": "aws",
    "network_id": "vpc-0abc",
    "cidr": "10.30.0.0/16",
    "private_subnet_ids": ["subnet-a", "subnet-b", "subnet-c"],
    "client_security_group_ids": ["sg-cluster"],
}
GCP = {
    "cloud": "gcp",
    "network_id": "projects/p/global/networks/mlops",
    "cidr": "10.40.0.0/20",
    "private_subnet_ids": ["projects/p/regions/europe-west4/subnetworks/nodes"],
    "project": "p",
    "region": "europe-west4",
}


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        (AWS, []),
        (GCP, []),
        ({**AWS, "cidr": "10.30.0.0/33"}, ["cidr '10.30.0.0/33' is not a CIDR block"]),
        (
            {**AWS, "private_subnet_ids": []},
            ["private_subnet_ids: at least one private subnet is required on AWS"],
        ),
        (
            {**AWS, "client_security_group_ids": []},
            [
                "client_security_group_ids: the cluster's security group is required on AWS "
                "(nothing else may reach the in-VPC services)"
            ],
        ),
        ({**AWS, "project": "p"}, ["project, region: GCP only"]),
        (
            {**GCP, "private_subnet_ids": ["a", "b"]},
            ["private_subnet_ids: exactly the node subnetwork on GCP"],
        ),
        (
            {**GCP, "client_security_group_ids": ["sg-1"]},
            ["client_security_group_ids: AWS only (GCP uses firewall rules)"],
        ),
        ({**GCP, "region": None}, ["project, region: required on GCP"]),
        (
            {**GCP, "cloud": "local"},
            ["cloud 'local' must be aws or gcp (a local cluster has none)"],
        ),
        ({**AWS, "zones": ["us-east-1a", "us-east-1b", "us-east-1c"]}, []),
        (
            {**AWS, "zones": ["us-east-1a", "us-east-1b"]},
            ["zones: one per private subnet, in the same order"],
        ),
        (
            {**GCP, "zones": ["europe-west4-a"]},
            ["zones: AWS only (a GKE node pool names its zones itself)"],
        ),
    ],
    ids=[
        "aws",
        "gcp",
        "bad-cidr",
        "aws-no-subnets",
        "aws-no-groups",
        "aws-with-project",
        "gcp-two-subnetworks",
        "gcp-with-groups",
        "gcp-no-region",
        "local",
        "aws-zones",
        "aws-zones-short",
        "gcp-zones",
    ],
)
def test_a_network_is_checked_for_its_cloud(fields, problems):
    if not problems:
        Network(**fields)
        return
    with pytest.raises(ValueError) as error:
        Network(**fields)
    assert str(error.value) == "Network: " + "; ".join(problems)


@pytest.mark.parametrize(
    ("fields", "vpc_id", "subnetwork_id", "group"),
    [
        (AWS, "vpc-0abc", "subnet-a", "sg-cluster"),
        (GCP, GCP["network_id"], GCP["private_subnet_ids"][0], None),
    ],
    ids=["aws", "gcp"],
)
def test_the_consumers_names_for_the_clouds_objects(fields, vpc_id, subnetwork_id, group):
    network = Network(**fields)
    assert network.vpc_id == vpc_id
    assert network.subnetwork_id == subnetwork_id
    if group is not None:
        assert network.cluster_security_group_id == group


@pytest.mark.parametrize(("fields", "other"), [(AWS, "gcp"), (GCP, "aws")], ids=["aws", "gcp"])
def test_a_consumer_requires_its_clouds_network(fields, other):
    network = Network(**fields)
    assert network.require(fields["cloud"], "XArgs.network") is network
    with pytest.raises(ValueError) as error:
        network.require(other, "XArgs.network")
    assert str(error.value) == (
        f"XArgs.network: a {other} network is required, got the {fields['cloud']} cluster's"
    )


def test_node_pools_find_each_zones_subnet():
    network = Network(**AWS, zones=["us-east-1a", "us-east-1b", "us-east-1c"])
    assert network.subnet_ids_by_zone == {
        "us-east-1a": "subnet-a",
        "us-east-1b": "subnet-b",
        "us-east-1c": "subnet-c",
    }
    assert Network(**AWS).subnet_ids_by_zone == {}  # read back in a later layer


@pytest.mark.parametrize("fields", [AWS, GCP], ids=["aws", "gcp"])
def test_exports_hold_every_field_but_zones_and_read_back_into_the_same_network(fields):
    exported = handoff.exports(Network(**fields))
    assert set(exported) == {
        "cloud",
        "network_id",
        "cidr",
        "private_subnet_ids",
        "client_security_group_ids",
        "project",
        "region",
    }
    assert Network(**exported) == Network(**fields)
    # the zones are the infra layer's own (its node pools); a later layer reads none
    if fields["cloud"] == "aws":
        zoned = Network(**fields, zones=["us-east-1a", "us-east-1b", "us-east-1c"])
        assert handoff.exports(zoned) == exported
