"""mlops_platform/teardown.py against moto's EC2, ELB and ELBv2: what Kubernetes made for the cluster is
found by its tags, waited for, named when it stays, and the check passes once it is gone."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from mlops_platform import cli, teardown

REGION = "us-east-1"  # stacks/Pulumi.prod.yaml
CLUSTER = "mlops-prod"


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        clients = {name: boto3.client(name, region_name=REGION) for name in ("elbv2", "elb", "ec2")}
        yield clients


def _network(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.30.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    return vpc, subnets


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _volume(ec2, tags: dict[str, str]) -> str:
    return ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=20,
        VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": _tags(tags)}],
    )["VolumeId"]


def _kubernetes_made(clients):
    """What the ml and platform layers' Services and claims leave in the account: the Istio
    gateway's NLB (Load Balancer Controller), a classic ELB (in-tree controller), the
    controller's security group, two claims' volumes, and look-alikes of another cluster."""
    ec2, elbv2, elb = clients["ec2"], clients["elbv2"], clients["elb"]
    vpc, subnets = _network(ec2)
    gateway = elbv2.create_load_balancer(
        Name="k8s-istioing-istioing-0123456789",
        Subnets=subnets,
        Type="network",
        Scheme="internet-facing",
        Tags=_tags(
            {
                "elbv2.k8s.aws/cluster": CLUSTER,
                "service.k8s.aws/stack": "istio-ingress/istio-ingressgateway",
                "service.k8s.aws/resource": "LoadBalancer",
            }
        ),
    )["LoadBalancers"][0]["LoadBalancerArn"]
    elbv2.create_load_balancer(
        Name="k8s-other-cluster",
        Subnets=subnets,
        Type="network",
        Tags=_tags({"elbv2.k8s.aws/cluster": "someone-else"}),
    )
    elbv2.create_load_balancer(Name="untagged", Subnets=subnets, Type="application")
    elb.create_load_balancer(
        LoadBalancerName="a1b2c3d4e5f6",
        Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
        Subnets=subnets[:1],
        Tags=_tags(
            {
                f"kubernetes.io/cluster/{CLUSTER}": "owned",
                "kubernetes.io/service-name": "serving/churn-public",
            }
        ),
    )
    group = ec2.create_security_group(
        GroupName="k8s-traffic-mlopsprod-0123456789",
        Description="[k8s] Shared Backend SecurityGroup for LoadBalancer",
        VpcId=vpc,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": _tags({"elbv2.k8s.aws/cluster": CLUSTER, "elbv2.k8s.aws/resource": "x"}),
            }
        ],
    )["GroupId"]
    # EKS tags the cluster's own security group so: it goes with the cluster, not reported
    ec2.create_security_group(
        GroupName="eks-cluster-sg-mlops-prod",
        Description="EKS created security group",
        VpcId=vpc,
        TagSpecifications=[
            {
                "ResourceType": "security-group",
                "Tags": _tags({f"kubernetes.io/cluster/{CLUSTER}": "owned"}),
            }
        ],
    )
    prometheus = _volume(
        ec2,
        {
            "ebs.csi.aws.com/cluster": "true",
            f"kubernetes.io/cluster/{CLUSTER}": "owned",  # the platform's gp3 class
            "kubernetes.io/created-for/pvc/namespace": "monitoring",
            "kubernetes.io/created-for/pvc/name": "prometheus-db-0",
        },
    )
    tagged_by_flag = _volume(ec2, {"ebs.csi.aws.com/cluster": "true", "KubernetesCluster": CLUSTER})
    _volume(ec2, {"ebs.csi.aws.com/cluster": "true", "KubernetesCluster": "someone-else"})
    _volume(ec2, {"Name": "a hand-made volume"})
    return {
        "gateway": gateway,
        "classic": "a1b2c3d4e5f6",
        "group": group,
        "prometheus": prometheus,
        "tagged_by_flag": tagged_by_flag,
    }


def test_finds_only_what_kubernetes_made_for_this_cluster_and_names_its_owner(aws):
    made = _kubernetes_made(aws)
    assert sorted(str(left) for left in teardown.find_aws(CLUSTER, aws)) == sorted(
        [
            f"load balancer {made['gateway']} (Service istio-ingress/istio-ingressgateway)",
            "classic load balancer a1b2c3d4e5f6 (Service serving/churn-public)",
            f"security group {made['group']} (tagged for the cluster)",
            f"EBS volume {made['prometheus']} (PVC monitoring/prometheus-db-0)",
            f"EBS volume {made['tagged_by_flag']} (EBS CSI driver)",
        ]
    )
    assert teardown.find_aws("mlops-dev", aws) == []


class _Clock:
    """Time that passes only when the check sleeps; the controllers delete things meanwhile."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def test_waits_while_the_controllers_delete_and_passes_once_all_is_gone(aws):
    made = _kubernetes_made(aws)
    ec2, elbv2, elb = aws["ec2"], aws["elbv2"], aws["elb"]

    def controllers(looks: int) -> None:
        # one look after another, the way the controllers and the CSI driver catch up
        if looks == 1:
            elbv2.delete_load_balancer(LoadBalancerArn=made["gateway"])
            elb.delete_load_balancer(LoadBalancerName=made["classic"])
        elif looks == 2:
            ec2.delete_security_group(GroupId=made["group"])
            ec2.delete_volume(VolumeId=made["prometheus"])
        elif looks == 3:
            ec2.delete_volume(VolumeId=made["tagged_by_flag"])

    clock = _Clock(controllers)
    seen: list[int] = []
    left = teardown.wait_until_gone(
        lambda: teardown.find_aws(CLUSTER, aws),
        timeout=600,
        interval=15,
        clock=clock,
        sleep=clock.sleep,
        report=lambda left: seen.append(len(left)),
    )
    assert left == []
    assert seen == [5, 3, 1]  # it looked again until nothing was left
    assert clock.sleeps == [15, 15, 15]


def test_gives_up_at_the_timeout_and_names_what_is_left(aws):
    made = _kubernetes_made(aws)
    clock = _Clock()
    left = teardown.wait_until_gone(
        lambda: teardown.find_aws(CLUSTER, aws),
        timeout=40,
        interval=15,
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.sleeps == [15, 15, 10]  # never past the timeout
    assert {leftover.id for leftover in left} == {
        made["gateway"],
        made["classic"],
        made["group"],
        made["prometheus"],
        made["tagged_by_flag"],
    }


def test_the_command_exits_1_naming_what_is_left_and_0_once_it_is_gone(aws, capsys):
    made = _kubernetes_made(aws)
    assert cli.main(["teardown-check", "--stack", "prod", "--timeout", "0"]) == 1
    err = capsys.readouterr().err
    assert "Kubernetes-made resources of cluster mlops-prod (us-east-1) are left" in err
    assert f"  - EBS volume {made['prometheus']} (PVC monitoring/prometheus-db-0)" in err
    assert "  - classic load balancer a1b2c3d4e5f6 (Service serving/churn-public)" in err

    aws["elbv2"].delete_load_balancer(LoadBalancerArn=made["gateway"])
    aws["elb"].delete_load_balancer(LoadBalancerName=made["classic"])
    aws["ec2"].delete_security_group(GroupId=made["group"])
    for volume in (made["prometheus"], made["tagged_by_flag"]):
        aws["ec2"].delete_volume(VolumeId=volume)
    assert cli.main(["teardown-check", "--stack", "prod", "--timeout", "0"]) == 0
    assert "no load balancer or volume of cluster mlops-prod" in capsys.readouterr().out
