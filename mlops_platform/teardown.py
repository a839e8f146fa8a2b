"""`mlops teardown-check`: before the infra layer is destroyed, wait until the cloud resources
that Kubernetes made for the cluster are gone, and name what is left.

Destroying the ml and platform layers deletes the `LoadBalancer` Services (the Istio gateway)
and the volume claims (Prometheus, Grafana, KFP, Strimzi...), but the cloud objects behind them
are deleted afterwards, asynchronously, by controllers in the cluster: the AWS Load Balancer
Controller or the in-tree service controller, the EBS CSI driver. They are not in any Pulumi
state, so nothing waits for them: `pulumi destroy` of the infra layer then removes the nodes
and the cluster under those controllers, and the load balancers (with their security groups and
network interfaces) hold the subnets and the VPC, which the destroy waits on until it fails, while
the volumes stay and are billed. This check runs between the layers:

    pulumi -C deploy/ml destroy -s prod
    pulumi -C deploy/platform destroy -s prod
    uv run mlops teardown-check --stack prod      # exit 0: nothing left; 1: names what is
    pulumi -C deploy/infra destroy -s prod

What belongs to the cluster is found by the tags those controllers write (`find_aws`; on GCP
the descriptions and labels GKE writes, `find_gcp`); the search is boto3's / google-cloud-
compute's, with the credentials of the environment and the stack's region (and project).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Tags Kubernetes' AWS integrations write on what they create for a cluster.
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"  # in-tree controllers; our gp3 class's volumes
LBC_CLUSTER_TAG = "elbv2.k8s.aws/cluster"  # AWS Load Balancer Controller: the cluster name
LBC_SERVICE_TAG = "service.k8s.aws/stack"  # ... the Service, `<namespace>/<name>`
LBC_INGRESS_TAG = "ingress.k8s.aws/stack"  # ... the Ingress (group)
IN_TREE_SERVICE_TAG = "kubernetes.io/service-name"  # in-tree controller: `<namespace>/<name>`
CSI_TAG = "ebs.csi.aws.com/cluster"  # EBS CSI driver: on every volume it creates ("true")
CSI_CLUSTER_TAG = "KubernetesCluster"  # EBS CSI driver with --k8s-tag-cluster-id
PVC_NAMESPACE_TAG = "kubernetes.io/created-for/pvc/namespace"
PVC_NAME_TAG = "kubernetes.io/created-for/pvc/name"
# describe_tags takes at most 20 load balancers per call (ELB and ELBv2 alike).
TAGS_BATCH = 20


@dataclass(frozen=True)
class Leftover:
    """One cloud resource Kubernetes created for the cluster that still exists."""

    kind: str  # "load balancer", "classic load balancer", "security group", "EBS volume"
    id: str  # ARN, name or id
    owner: str  # what in the cluster made it: `Service ns/name`, `PVC ns/name`, or the tag

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.owner})"


def _tags(pairs: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {pair["Key"]: pair["Value"] for pair in pairs or ()}


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def belongs_to(tags: Mapping[str, str], cluster: str) -> bool:
    """Whether a load balancer's or security group's tags say it was made for `cluster`."""
    return f"{CLUSTER_TAG_PREFIX}{cluster}" in tags or tags.get(LBC_CLUSTER_TAG) == cluster


def _load_balancer_owner(tags: Mapping[str, str]) -> str:
    for key, what in (
        (LBC_SERVICE_TAG, "Service"),
        (IN_TREE_SERVICE_TAG, "Service"),
        (LBC_INGRESS_TAG, "Ingress"),
    ):
        if key in tags:
            return f"{what} {tags[key]}"
    return "tagged for the cluster"


def _elbv2_leftovers(elbv2: Any, cluster: str) -> list[Leftover]:
    arns = [
        lb["LoadBalancerArn"]
        for page in elbv2.get_paginator("describe_load_balancers").paginate()
        for lb in page["LoadBalancers"]
    ]
    found = []
    for batch in _batches(arns, TAGS_BATCH):
        for description in elbv2.describe_tags(ResourceArns=list(batch))["TagDescriptions"]:
            tags = _tags(description.get("Tags"))
            if belongs_to(tags, cluster):
                found.append(
                    Leftover(
                        "load balancer", description["ResourceArn"], _load_balancer_owner(tags)
                    )
                )
    return found


def _classic_elb_leftovers(elb: Any, cluster: str) -> list[Leftover]:
    names = [
        lb["LoadBalancerName"]
        for page in elb.get_paginator("describe_load_balancers").paginate()
        for lb in page["LoadBalancerDescriptions"]
    ]
    found = []
    for batch in _batches(names, TAGS_BATCH):
        for description in elb.describe_tags(LoadBalancerNames=list(batch))["TagDescriptions"]:
            tags = _tags(description.get("Tags"))
            if belongs_to(tags, cluster):
                found.append(
                    Leftover(
                        "classic load balancer",
                        description["LoadBalancerName"],
                        _load_balancer_owner(tags),
                    )
                )
    return found


def _security_group_leftovers(ec2: Any, cluster: str) -> list[Leftover]:
    """The Load Balancer Controller's own security groups (they hold the VPC too). Not the
    `kubernetes.io/cluster/<name>` ones: EKS tags the cluster's own security group so, and it
    goes with the cluster, in the infra layer's destroy."""
    pages = ec2.get_paginator("describe_security_groups").paginate(
        Filters=[{"Name": f"tag:{LBC_CLUSTER_TAG}", "Values": [cluster]}]
    )
    return [
        Leftover("security group", group["GroupId"], _load_balancer_owner(_tags(group.get("Tags"))))
        for page in pages
        for group in page["SecurityGroups"]
    ]


def _volume_leftovers(ec2: Any, cluster: str) -> list[Leftover]:
    """EBS volumes the CSI driver (or the in-tree plugin) created for the cluster's claims:
    tagged `kubernetes.io/cluster/<name>` (the platform's gp3 class, or the driver's
    `--k8s-tag-cluster-id`) or `KubernetesCluster=<name>` (the same flag, older drivers)."""
    found: dict[str, Leftover] = {}
    for filters in (
        [{"Name": "tag-key", "Values": [f"{CLUSTER_TAG_PREFIX}{cluster}"]}],
        [{"Name": f"tag:{CSI_CLUSTER_TAG}", "Values": [cluster]}],
    ):
        for page in ec2.get_paginator("describe_volumes").paginate(Filters=filters):
            for volume in page["Volumes"]:
                if volume.get("State") == "deleted":
                    continue
                tags = _tags(volume.get("Tags"))
                claim = (tags.get(PVC_NAMESPACE_TAG), tags.get(PVC_NAME_TAG))
                owner = (
                    f"PVC {claim[0]}/{claim[1]}"
                    if all(claim)
                    else ("EBS CSI driver" if CSI_TAG in tags else "tagged for the cluster")
                )
                found[volume["VolumeId"]] = Leftover("EBS volume", volume["VolumeId"], owner)
    return list(found.values())


def find_aws(cluster: str, clients: Mapping[str, Any]) -> list[Leftover]:
    """Every load balancer, load-balancer security group and EBS volume tagged for `cluster`.
    `clients`: boto3 clients `elbv2`, `elb` and `ec2` of the cluster's region."""
    return [
        *_elbv2_leftovers(clients["elbv2"], cluster),
        *_classic_elb_leftovers(clients["elb"], cluster),
        *_security_group_leftovers(clients["ec2"], cluster),
        *_volume_leftovers(clients["ec2"], cluster),
    ]


def wait_until_gone(
    find: Callable[[], list[Leftover]],
    timeout: float,
    interval: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    report: Callable[[list[Leftover]], None] = lambda _: None,
) -> list[Leftover]:
    """Look every `interval` seconds until nothing is left or `timeout` has passed: what is
    left then (empty: all gone). `report` hears every look that still finds something."""
    deadline = clock() + timeout
    while True:
        left = find()
        if not left:
            return []
        report(left)
        remaining = deadline - clock()
        if remaining <= 0:
            return left
        sleep(min(interval, remaining))


# -- GCP ----------------------------------------------------------------------------------------
# GKE's service controller describes the forwarding rule of a LoadBalancer Service with a JSON
# object naming the Service (`kubernetes.io/service-name`; `networking.gke.io/service-name` for
# the load balancers GKE builds on backend services); the Persistent Disk CSI driver describes a
# disk with the claim it was made for, and GKE labels it with the cluster's name.
GKE_CLUSTER_LABEL = "goog-k8s-cluster-name"
GCP_SERVICE_KEYS = ("kubernetes.io/service-name", "networking.gke.io/service-name")
GCP_PVC_NAMESPACE = "kubernetes.io/created-for/pvc/namespace"
GCP_PVC_NAME = "kubernetes.io/created-for/pvc/name"


def _description(text: str) -> dict[str, Any]:
    """The JSON object Kubernetes writes into a description, or {} for anything else."""
    try:
        value = json.loads(text or "")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def gcp_forwarding_rule_leftovers(rules: Iterable[Any]) -> list[Leftover]:
    """The forwarding rules (load balancer frontends, billed by the hour) of Kubernetes
    Services. A rule says which Service, not which cluster: in a project and region shared with
    another cluster, its LoadBalancer Services are listed too (by namespace/name)."""
    found = []
    for rule in rules:
        described = _description(rule.description)
        service = next((described[key] for key in GCP_SERVICE_KEYS if key in described), None)
        if service is not None:
            found.append(Leftover("forwarding rule", rule.name, f"Service {service}"))
    return found


def gcp_disk_leftovers(
    scoped_disks: Iterable[tuple[str, Iterable[Any]]], cluster: str
) -> list[Leftover]:
    """Persistent disks GKE labelled as this cluster's that a claim was made for (not the
    nodes' boot disks, which go with the node pools). `scoped_disks`: (zone or region, disks)
    pairs, as `aggregatedList` returns them."""
    found = []
    for scope, disks in scoped_disks:
        for disk in disks:
            if disk.labels.get(GKE_CLUSTER_LABEL) != cluster:
                continue
            described = _description(disk.description)
            claim = (described.get(GCP_PVC_NAMESPACE), described.get(GCP_PVC_NAME))
            if not all(claim):
                continue
            where = _last(scope)
            found.append(
                Leftover("persistent disk", f"{where}/{disk.name}", f"PVC {claim[0]}/{claim[1]}")
            )
    return found


def find_gcp(cluster: str, project: str, region: str, clients: Mapping[str, Any]) -> list[Leftover]:
    """Every forwarding rule of a Kubernetes Service in `region` and every claim's disk of
    `cluster`. `clients`: google-cloud-compute's `forwarding_rules` (`ForwardingRulesClient`)
    and `disks` (`DisksClient`), or anything with their `list` / `aggregated_list`."""
    rules = clients["forwarding_rules"].list(project=project, region=region)
    disks = (
        (scope, listed.disks) for scope, listed in clients["disks"].aggregated_list(project=project)
    )
    return [*gcp_forwarding_rule_leftovers(rules), *gcp_disk_leftovers(disks, cluster)]


def gcp_clients(**client_kwargs: Any) -> dict[str, Any]:
    """google-cloud-compute clients with Application Default Credentials (gcloud auth
    application-default login, or the workload's own identity); `client_kwargs` go to each."""
    from google.cloud import compute_v1

    return {
        "forwarding_rules": compute_v1.ForwardingRulesClient(**client_kwargs),
        "disks": compute_v1.DisksClient(**client_kwargs),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. prod")
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for the controllers to delete what is left (default 600)",
    )
    parser.add_argument(
        "--interval", type=float, default=15.0, help="seconds between looks (default 15)"
    )


def main(args: argparse.Namespace) -> int:
    from mlops_platform.config import ConfigError, load_stack_file
    from mlops_platform.plan import stack_file_path

    try:
        platform = load_stack_file(stack_file_path(args.stack))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cloud = platform.cloud
    cluster = platform.cluster.name
    if cloud.type == "local":
        print(f"{args.stack}: a local cluster; the platform creates nothing outside it")
        return 0
    where = cloud.region if cloud.type == "aws" else f"{cloud.project}, {cloud.region}"
    find = _finder(cloud, cluster)

    def report(left: list[Leftover]) -> None:
        print(f"waiting for {len(left)} resources of cluster {cluster} to go", file=sys.stderr)

    left = wait_until_gone(find, args.timeout, args.interval, report=report)
    if left:
        print(
            f"error: after {args.timeout:g} s, Kubernetes-made resources of cluster {cluster} "
            f"({where}) are left; delete them (or the objects that own them) before "
            "`pulumi -C deploy/infra destroy`:",
            file=sys.stderr,
        )
        for leftover in left:
            print(f"  - {leftover}", file=sys.stderr)
        return 1
    print(f"{args.stack}: no load balancer or volume of cluster {cluster} is left in {where}")
    return 0


def _finder(cloud: Any, cluster: str) -> Callable[[], list[Leftover]]:
    """The look for the stack's cloud, with clients made once (the cloud SDK's own credentials
    and the stack's region)."""
    if cloud.type == "gcp":
        gcp = gcp_clients()
        return lambda: find_gcp(cluster, cloud.project, cloud.region, gcp)
    import boto3

    session = boto3.session.Session(region_name=cloud.region)
    clients = {name: session.client(name) for name in ("elbv2", "elb", "ec2")}
    return lambda: find_aws(cluster, clients)
