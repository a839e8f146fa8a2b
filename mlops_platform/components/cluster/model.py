"""Cluster and network config, and the plain values derived from it (no Pulumi here).

Everything a reviewer might want to check - the subnet plan, node-group shapes, taints, cluster
autoscaler tags, kubeconfigs - is computed here from validated config, so it is table-tested
without an engine.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.versions import EKS_ADDON_VERSIONS, KUBERNETES_VERSION

# Nodes of every pool carry this label with the pool key as value; selectors and the device
# plugin's node affinity use it, so it may not be overridden by pool labels.
POOL_LABEL = "mlops.dev/node-pool"

ControlPlaneLogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
ALL_CONTROL_PLANE_LOG_TYPES: tuple[ControlPlaneLogType, ...] = (
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
)
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip

# Kubernetes label syntax (k8s.io/apimachinery validation), hand-written because none of our
# dependencies exposes it: an optional DNS-subdomain prefix, a name of at most 63 characters.
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_RESOURCE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[-a-z]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a valid Kubernetes label or taint key, or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"label key {key!r}: prefix must be a DNS subdomain"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return f"label key {key!r}: name must be 1-63 alphanumerics, '-', '_' or '.'"
    return None


def label_value_problem(key: str, value: str) -> str | None:
    if len(value) > 63 or not _LABEL_NAME.match(value):
        return f"label {key!r}: value {value!r} must be at most 63 alphanumerics, '-', '_' or '.'"
    return None


def check_labels(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        problem = label_key_problem(key) or label_value_problem(key, value)
        if problem:
            raise ValueError(problem)
        if key == POOL_LABEL:
            raise ValueError(f"label {POOL_LABEL!r} is set from the pool key and cannot be given")


def _network(value: str, field_name: str | None = None) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as exc:
        where = f"{field_name}: " if field_name else ""
        raise ValueError(f"{where}{value!r} is not an IPv4 network in CIDR form ({exc})") from None


class Taint(StrictModel):
    """A Kubernetes node taint."""

    key: str = Field(description="Taint key, e.g. nvidia.com/gpu.")
    value: str = Field(default="", description="Taint value (may be empty).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        default="NoSchedule", description="What happens to pods that do not tolerate the taint."
    )

    @model_validator(mode="after")
    def _syntax(self) -> Taint:
        problem = label_key_problem(self.key) or label_value_problem(self.key, self.value)
        if problem:
            raise ValueError(problem.replace("label", "taint", 1))
        return self


GPU_TAINT = Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")


class NetworkConfig(StrictModel):
    """Address plan of the cluster network (AWS VPC or GCP VPC + subnetwork)."""

    vpc_cidr: str = Field(
        default="10.0.0.0/16",
        description="AWS: the VPC range, split into one private and one public subnet per zone. "
        "GCP: the node subnetwork's primary range.",
    )
    availability_zones: int = Field(
        default=3,
        ge=2,
        le=6,
        description="AWS: number of availability zones to spread subnets and nodes over (EKS "
        "needs at least two).",
    )
    nat_gateway_per_zone: bool = Field(
        default=True,
        description="AWS: one NAT gateway per zone, so losing a zone does not cut egress of the "
        "others. False uses a single NAT gateway (cheaper, for development).",
    )
    pods_cidr: str = Field(
        default="10.64.0.0/14", description="GCP: secondary range for pod IPs (VPC-native)."
    )
    services_cidr: str = Field(
        default="10.68.0.0/20", description="GCP: secondary range for Service cluster IPs."
    )
    control_plane_cidr: str = Field(
        default="172.16.0.0/28",
        description="GCP: the /28 the private GKE control plane is peered into.",
    )

    @model_validator(mode="after")
    def _plan(self) -> NetworkConfig:
        ranges = {
            name: _network(getattr(self, name), name)
            for name in ("vpc_cidr", "pods_cidr", "services_cidr", "control_plane_cidr")
        }
        if ranges["control_plane_cidr"].prefixlen != 28:
            raise ValueError(f"control_plane_cidr: {self.control_plane_cidr} must be a /28")
        names = list(ranges)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if ranges[first].overlaps(ranges[second]):
                    raise ValueError(f"{first} {ranges[first]} overlaps {second} {ranges[second]}")
        subnet_plan(self.vpc_cidr, [f"zone-{i}" for i in range(self.availability_zones)])
        return self


class _SystemPoolSize(StrictModel):
    """What the system pool's node settings share on both clouds."""

    min_size: int = Field(
        default=2, ge=1, description="Fewest nodes (>= 1: the platform runs here)."
    )
    max_size: int = Field(default=4, ge=1, description="Most nodes the autoscaler may add.")
    disk_size_gib: int = Field(default=50, ge=20, description="Root disk size, GiB (encrypted).")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")

    @model_validator(mode="after")
    def _sizes(self) -> _SystemPoolSize:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) must be <= max_size ({self.max_size})")
        check_labels(self.labels)
        return self


class EksSystemPoolConfig(_SystemPoolSize):
    """AWS: the system pool as an EKS managed node group."""

    type: Literal["eks"] = Field(default="eks", description="An EKS managed node group (AWS).")
    instance_type: str = Field(default="m6i.large", description="EC2 instance type.")


class GkeSystemPoolConfig(_SystemPoolSize):
    """GCP: the system pool as a GKE node pool."""

    type: Literal["gke"] = Field(default="gke", description="A GKE node pool (GCP).")
    machine_type: str = Field(default="e2-standard-4", description="Compute Engine machine type.")


class ExistingNodesConfig(StrictModel):
    """Local: the existing cluster's own nodes run the platform; nothing is created, so there is
    nothing to set."""

    type: Literal["existing"] = Field(
        default="existing", description="The local cluster's own nodes (nothing is created)."
    )


# The system pool, a `type:` block: only the chosen cloud's node settings are accepted.
SystemPoolConfig = Annotated[
    EksSystemPoolConfig | GkeSystemPoolConfig | ExistingNodesConfig, Field(discriminator="type")
]
# The node block each cloud runs (mlops_platform/config.py BACKENDS fills `type` in from the cloud).
SYSTEM_POOL_TYPES: dict[str, type[StrictModel]] = {
    "aws": EksSystemPoolConfig,
    "gcp": GkeSystemPoolConfig,
    "local": ExistingNodesConfig,
}

_Pool = TypeVar("_Pool", EksSystemPoolConfig, GkeSystemPoolConfig, ExistingNodesConfig)


# The cluster settings only one cloud reads (their descriptions start with that cloud), by
# dotted path under `cluster`: set on a stack of another cloud they would be ignored, so the
# root config refuses them (mlops_platform.config.wrong_cloud_problems; a test keeps this
# table equal to the descriptions).
CLOUD_ONLY_SETTINGS: dict[str, str] = {
    "network.availability_zones": "aws",
    "network.nat_gateway_per_zone": "aws",
    "network.pods_cidr": "gcp",
    "network.services_cidr": "gcp",
    "network.control_plane_cidr": "gcp",
    "control_plane_log_types": "aws",
    "control_plane_log_retention_days": "aws",
    "admin_role_arns": "aws",
    "oidc_thumbprints": "aws",
    "release_channel": "gcp",
    "binary_authorization": "gcp",
    "autoscaler": "aws",
    "volume_kms_key_arn": "aws",
}


class ClusterConfig(StrictModel):
    """The Kubernetes cluster: EKS on AWS, GKE on GCP, an existing context locally."""

    name: str = Field(
        default="mlops",
        max_length=40,
        description="Cluster name, unique per account/project and region: set one per stack "
        "(e.g. mlops-prod). Local: unused (the kube context names the cluster).",
    )
    kubernetes_version: str = Field(
        default=KUBERNETES_VERSION,
        pattern=r"^1\.\d+$",
        description="Kubernetes minor version of the control plane (GKE: minimum version).",
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="Address plan.")
    api_allowed_cidrs: list[str] = Field(
        default_factory=list,
        description="Networks allowed to reach the API server's public endpoint. Empty: the "
        "endpoint is private only (run `pulumi up` from inside the network). Never 0.0.0.0/0.",
    )
    control_plane_log_types: list[ControlPlaneLogType] = Field(
        default_factory=lambda: list(ALL_CONTROL_PLANE_LOG_TYPES),
        description="AWS: control-plane log streams sent to CloudWatch.",
    )
    control_plane_log_retention_days: int = Field(
        default=90, description="AWS: retention of the control-plane log group, days."
    )
    admin_role_arns: list[str] = Field(
        default_factory=list,
        description="AWS: IAM roles granted cluster-admin through EKS access entries (the "
        "identity running `pulumi up` is admin already).",
    )
    oidc_thumbprints: list[str] = Field(
        default_factory=list,
        description="AWS: SHA-1 thumbprints of the OIDC issuer's CA. Empty: IAM verifies the "
        "EKS issuer's certificate against its own trusted root CAs, so nothing is pinned.",
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE", "EXTENDED"] = Field(
        default="REGULAR", description="GCP: GKE release channel (automatic upgrades)."
    )
    binary_authorization: bool = Field(
        default=False,
        description="GCP: enforce the project's Binary Authorization policy on admitted images.",
    )
    system_pool: SystemPoolConfig | None = Field(
        default=None,
        description="The system CPU pool that runs the platform's own services (no taint), a "
        "`type:` block with only that cloud's node settings: `eks` (AWS: `instance_type`), "
        "`gke` (GCP: `machine_type`), both with `min_size`, `max_size`, `disk_size_gib` and "
        "`labels`; `existing` locally (nothing to set). The type follows the stack's cloud: "
        "omit it (or the whole block) and the cloud's own is used with its defaults.",
    )
    autoscaler: bool = Field(
        default=True,
        description="AWS: deploy the Kubernetes cluster autoscaler (IRSA role scoped to this "
        "cluster's node groups), which is what scales pools, from zero too. GKE scales natively.",
    )
    volume_kms_key_arn: str | None = Field(
        default=None,
        description="AWS: customer-managed KMS key that encrypts the EBS volumes of the default "
        "`gp3` StorageClass (the EBS CSI driver's role is granted its use). Null: EBS encrypts "
        "with the account's AWS-managed `aws/ebs` key.",
    )

    def system_pool_of(self, kind: type[_Pool]) -> _Pool:
        """The system pool's settings for the cloud whose block is `kind`: the block given, or
        that cloud's defaults; a block of another cloud is an error naming the field."""
        pool = self.system_pool
        if pool is None:
            return kind()
        if not isinstance(pool, kind):
            wanted = kind.model_fields["type"].default
            raise ValueError(
                f"cluster.system_pool.type: {pool.type!r} is not this cluster's node type "
                f"({wanted!r})"
            )
        return pool

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RESOURCE_NAME.match(value):
            raise ValueError(
                f"name {value!r} must start with a letter and hold only lowercase letters, "
                "digits and '-'"
            )
        return value

    @field_validator("api_allowed_cidrs")
    @classmethod
    def _api_cidrs(cls, values: list[str]) -> list[str]:
        for value in values:
            network = _network(value)
            if network.prefixlen == 0:
                raise ValueError(
                    f"{value} would open the API server to the internet; "
                    "list the operators' networks instead"
                )
        return values

    @field_validator("control_plane_log_types")
    @classmethod
    def _log_types(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError("each log type may be listed once")
        return values

    @field_validator("control_plane_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"{value} is not a CloudWatch retention "
                f"period; use one of {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        return value

    @field_validator("volume_kms_key_arn")
    @classmethod
    def _volume_key(cls, value: str | None) -> str | None:
        if value is not None and not _KMS_KEY_ARN.match(value):
            raise ValueError(
                f"{value!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>)"
            )
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _admin_roles(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.match(r"^arn:aws[-a-z]*:iam::\d{12}:role/.+$", value):
                raise ValueError(f"{value!r} is not an IAM role ARN")
        return values


# --- network -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneSubnets:
    zone: str
    private_cidr: str
    public_cidr: str


def subnet_plan(vpc_cidr: str, zones: Sequence[str]) -> list[ZoneSubnets]:
    """Split the VPC: a large private subnet per zone (nodes and pods, VPC CNI), and small
    public subnets (NAT gateways, internet-facing load balancers) in the one block left over.

    With a /16 and three zones: private /18s at .0, .64, .128; public /22s inside .192/18.
    """
    vpc = _network(vpc_cidr, "vpc_cidr")
    count = len(zones)
    # one block per zone plus one, shared by the public subnets
    private_prefix = vpc.prefixlen + math.ceil(math.log2(count + 1))
    public_prefix = private_prefix + 4
    if public_prefix > 28:  # AWS subnets are at most /28
        largest = 28 - (public_prefix - vpc.prefixlen)
        raise ValueError(
            f"vpc_cidr: {vpc_cidr} is too small for {count} zones; use a /{largest} or larger"
        )
    blocks = list(vpc.subnets(new_prefix=private_prefix))
    public = list(blocks[-1].subnets(new_prefix=public_prefix))
    return [
        ZoneSubnets(zone=zone, private_cidr=str(blocks[i]), public_cidr=str(public[i]))
        for i, zone in enumerate(zones)
    ]


# --- node pools ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodePoolSpec:
    """A node pool as both clouds need it, decided before any resource exists."""

    key: str
    instance_type: str
    min_size: int
    max_size: int
    disk_size_gib: int
    spot: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    zones: tuple[str, ...] = ()
    # AWS AMI type: the standard AL2023 image for CPU pools, the NVIDIA one for GPU pools
    ami_type: str = "AL2023_x86_64_STANDARD"
    # GCP only: accelerators attached to each node and the driver GKE installs for them
    accelerator: str | None = None
    accelerator_count: int = 0
    gpu_driver_version: str | None = None


def system_pool_spec(config: EksSystemPoolConfig | GkeSystemPoolConfig) -> NodePoolSpec:
    instance_type = (
        config.instance_type if isinstance(config, EksSystemPoolConfig) else config.machine_type
    )
    return NodePoolSpec(
        key="system",
        instance_type=instance_type,
        min_size=config.min_size,
        max_size=config.max_size,
        disk_size_gib=config.disk_size_gib,
        labels={**config.labels, POOL_LABEL: "system"},
    )


_API_EFFECT = {
    "NoSchedule": "NO_SCHEDULE",
    "PreferNoSchedule": "PREFER_NO_SCHEDULE",
    "NoExecute": "NO_EXECUTE",
}


def autoscaler_tags(cluster_name: str, spec: NodePoolSpec) -> dict[str, str]:
    """Tags the cluster autoscaler reads from an Auto Scaling group to build a node template.

    A group at zero nodes has no node to look at; without the label and taint hints the
    autoscaler cannot tell that a pending GPU pod would fit, and never scales the group up.
    """
    tags = {
        "k8s.io/cluster-autoscaler/enabled": "true",
        f"k8s.io/cluster-autoscaler/{cluster_name}": "owned",
    }
    for key, value in sorted(spec.labels.items()):
        tags[f"k8s.io/cluster-autoscaler/node-template/label/{key}"] = value
    for taint in spec.taints:
        tags[f"k8s.io/cluster-autoscaler/node-template/taint/{taint.key}"] = (
            f"{taint.value}:{taint.effect}"
        )
    return tags


def eks_node_group_inputs(cluster_name: str, spec: NodePoolSpec) -> dict[str, Any]:
    """Arguments of `aws.eks.NodeGroup` that follow from the spec (desired size starts at min:
    the autoscaler owns it afterwards)."""
    return {
        "ami_type": spec.ami_type,
        "capacity_type": "SPOT" if spec.spot else "ON_DEMAND",
        "instance_types": [spec.instance_type],
        "scaling_config": {
            "min_size": spec.min_size,
            "desired_size": spec.min_size,
            "max_size": spec.max_size,
        },
        "labels": dict(sorted(spec.labels.items())),
        "taints": [
            {"key": t.key, "value": t.value, "effect": _API_EFFECT[t.effect]} for t in spec.taints
        ],
        "update_config": {"max_unavailable_percentage": 33},
    }


def launch_template_inputs(spec: NodePoolSpec) -> dict[str, Any]:
    """Node hardening a managed node group cannot express without a launch template.

    IMDSv2 only, with a hop limit of 1 so pods cannot borrow the node role (they use IRSA);
    an encrypted gp3 root volume of the configured size.
    """
    return {
        "metadata_options": {
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 1,
        },
        "block_device_mappings": [
            {
                "device_name": "/dev/xvda",
                "ebs": {
                    "volume_size": spec.disk_size_gib,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "delete_on_termination": "true",
                },
            }
        ],
    }


def select_zones(spec: NodePoolSpec, available: Sequence[str], field_name: str) -> list[str]:
    """Zones a pool's nodes may use: its own list (checked against the cluster's) or all."""
    if not spec.zones:
        return list(available)
    unknown = [zone for zone in spec.zones if zone not in available]
    if unknown:
        raise ValueError(
            f"{field_name}: {', '.join(unknown)} not among the cluster's zones "
            f"({', '.join(available)})"
        )
    return list(spec.zones)


GKE_OAUTH_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def gke_node_pool_inputs(spec: NodePoolSpec) -> dict[str, Any]:
    """Arguments of `gcp.container.NodePool` that follow from the spec.

    Access is governed by the node service account's IAM roles, hence the broad OAuth scope;
    pods reach the metadata server only through Workload Identity (GKE_METADATA).
    """
    node_config: dict[str, Any] = {
        "machine_type": spec.instance_type,
        "spot": spec.spot,
        "disk_size_gb": spec.disk_size_gib,
        "disk_type": "pd-balanced",
        "image_type": "COS_CONTAINERD",
        "labels": dict(sorted(spec.labels.items())),
        "taints": [
            {"key": t.key, "value": t.value, "effect": _API_EFFECT[t.effect]} for t in spec.taints
        ],
        "oauth_scopes": GKE_OAUTH_SCOPES,
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": {
            "enable_secure_boot": True,
            "enable_integrity_monitoring": True,
        },
        "metadata": {"disable-legacy-endpoints": "true"},
    }
    if spec.accelerator:
        node_config["guest_accelerators"] = [
            {
                "type": spec.accelerator,
                "count": spec.accelerator_count,
                "gpu_driver_installation_config": {"gpu_driver_version": spec.gpu_driver_version},
            }
        ]
    inputs: dict[str, Any] = {
        "initial_node_count": 1 if spec.min_size > 0 else 0,
        "autoscaling": {
            "total_min_node_count": spec.min_size,
            "total_max_node_count": spec.max_size,
            "location_policy": "ANY" if spec.spot else "BALANCED",
        },
        "management": {"auto_repair": True, "auto_upgrade": True},
        "node_config": node_config,
    }
    if spec.zones:
        inputs["node_locations"] = list(spec.zones)
    return inputs


# --- kubeconfigs -----------------------------------------------------------------------------


def _kubeconfig(name: str, server: str, ca_data: str, exec_: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": ca_data}}
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "users": [{"name": name, "user": {"exec": exec_}}],
    }


def eks_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> dict[str, Any]:
    """Short-lived tokens from `aws eks get-token`: no long-lived credential in the state."""
    return _kubeconfig(
        cluster_name,
        endpoint,
        ca_data,
        {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": [
                "--region",
                region,
                "eks",
                "get-token",
                "--cluster-name",
                cluster_name,
                "--output",
                "json",
            ],
            "interactiveMode": "Never",
        },
    )


def gke_kubeconfig(cluster_name: str, endpoint: str, ca_data: str) -> dict[str, Any]:
    """Tokens from `gke-gcloud-auth-plugin` (the only GKE auth since 1.26)."""
    return _kubeconfig(
        cluster_name,
        f"https://{endpoint}",
        ca_data,
        {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "gke-gcloud-auth-plugin",
            "provideClusterInfo": True,
            "interactiveMode": "Never",
            "installHint": "gcloud components install gke-gcloud-auth-plugin",
        },
    )


def workload_pool(project: str) -> str:
    return f"{project}.svc.id.goog"


# --- cluster autoscaler (EKS) -----------------------------------------------------------------

AUTOSCALER_NAMESPACE = "kube-system"
AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"


def autoscaler_policy(cluster_name: str) -> dict[str, Any]:
    """Read anything it needs to plan; change only Auto Scaling groups tagged as this
    cluster's (the tags `autoscaler_tags` puts on every node group's ASG)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "autoscaling:DescribeAutoScalingGroups",
                    "autoscaling:DescribeAutoScalingInstances",
                    "autoscaling:DescribeLaunchConfigurations",
                    "autoscaling:DescribeScalingActivities",
                    "autoscaling:DescribeTags",
                    "ec2:DescribeImages",
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplateVersions",
                    "ec2:GetInstanceTypesFromInstanceRequirements",
                    "eks:DescribeNodegroup",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": [
                    "autoscaling:SetDesiredCapacity",
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned",
                        "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
                    }
                },
            },
        ],
    }


def autoscaler_values(cluster_name: str, region: str, role_arn: Any) -> dict[str, Any]:
    """Helm values: auto-discovery by the tags on the node groups' ASGs, IRSA, on the system
    pool. `role_arn` may be a Pulumi output."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "rbac": {
            "serviceAccount": {
                "name": AUTOSCALER_SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
        "extraArgs": {"balance-similar-node-groups": True, "expander": "least-waste"},
        "nodeSelector": {POOL_LABEL: "system"},
        "resources": {
            "requests": {"cpu": "100m", "memory": "300Mi"},
            "limits": {"memory": "600Mi"},
        },
    }


# --- EKS prerequisites: managed add-ons, the EBS CSI driver, the default StorageClass ---------

# The core add-ons EKS bootstraps as self-managed ones at cluster creation; declaring them as
# managed add-ons pins their versions (mlops_platform/components/versions.py) and lets EKS patch them.
CORE_ADDONS = ("vpc-cni", "kube-proxy", "coredns")
EBS_CSI_ADDON = "aws-ebs-csi-driver"
EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_MANAGED_POLICY = "service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
DEFAULT_STORAGE_CLASS = "gp3"
# EKS creates `gp2` (in-tree provisioner) in every cluster; since 1.30 not as the default.
EKS_GP2_CLASS = "gp2"
EKS_GP2_PROVISIONER = "kubernetes.io/aws-ebs"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class EksAddonSpec:
    name: str
    version: str
    # runs pods that need a node (a Deployment): created after the system node group, or EKS
    # reports it DEGRADED and the create times out
    needs_nodes: bool
    service_account: str | None = None  # IRSA: the role is bound to kube-system:<this>


def eks_addon_specs(kubernetes_version: str) -> list[EksAddonSpec]:
    """The managed add-ons of an EKS cluster, at the versions pinned for its minor version."""
    if kubernetes_version != KUBERNETES_VERSION:
        raise ValueError(
            f"cluster.kubernetes_version: {kubernetes_version} has no pinned EKS add-on versions "
            f"(mlops_platform/components/versions.py EKS_ADDON_VERSIONS is for {KUBERNETES_VERSION}); "
            "pin the add-ons for it in the same change"
        )
    needs_nodes = {"vpc-cni": False, "kube-proxy": False, "coredns": True, EBS_CSI_ADDON: True}
    return [
        EksAddonSpec(
            name=name,
            version=EKS_ADDON_VERSIONS[name],
            needs_nodes=needs_nodes[name],
            service_account=EBS_CSI_SERVICE_ACCOUNT if name == EBS_CSI_ADDON else None,
        )
        for name in (*CORE_ADDONS, EBS_CSI_ADDON)
    ]


def eks_addon_inputs(spec: EksAddonSpec) -> dict[str, Any]:
    """`aws.eks.Addon` arguments. OVERWRITE on create adopts the self-managed add-on EKS
    bootstrapped (NONE would fail on its fields); OVERWRITE on update keeps the add-on as
    declared here rather than preserving edits made by hand in the cluster."""
    return {
        "addon_name": spec.name,
        "addon_version": spec.version,
        "resolve_conflicts_on_create": "OVERWRITE",
        "resolve_conflicts_on_update": "OVERWRITE",
    }


def ebs_csi_kms_policy(key_arn: str) -> dict[str, Any]:
    """What the EBS CSI driver needs to create and attach volumes encrypted with a customer key
    (the managed AmazonEBSCSIDriverPolicy grants no KMS access): the policy of the EKS user
    guide's "KMS encryption" step, scoped to the one key; grants only for AWS resources (EBS)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": key_arn,
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                "Resource": key_arn,
            },
        ],
    }


def cluster_tag(cluster_name: str) -> str:
    """The tag key Kubernetes' AWS integrations put on what they create for a cluster."""
    return f"kubernetes.io/cluster/{cluster_name}"


def gp3_storage_class(cluster_name: str, kms_key_arn: str | None = None) -> dict[str, Any]:
    """The cluster's default class: encrypted gp3 through the EBS CSI driver, bound only once a
    pod is scheduled (an EBS volume lives in one zone: the pod's), expandable in place.

    Its volumes are tagged `kubernetes.io/cluster/<name>=owned` (the driver's `tagSpecification_*`
    parameters, since v1.6.0): the driver itself only adds `ebs.csi.aws.com/cluster=true`, which
    says nothing of which cluster, and `mlops teardown-check` finds what a cluster left by it."""
    parameters = {
        "type": "gp3",
        "encrypted": "true",
        "csi.storage.k8s.io/fstype": "ext4",
        "tagSpecification_1": f"{cluster_tag(cluster_name)}=owned",
    }
    if kms_key_arn is not None:
        parameters["kmsKeyId"] = kms_key_arn
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": DEFAULT_STORAGE_CLASS,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
        },
        "provisioner": EBS_CSI_PROVISIONER,
        "parameters": parameters,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


def gp2_not_default_patch() -> dict[str, Any]:
    """Server-side patch of EKS's own `gp2` class: never the default, whatever EKS version the
    cluster was created at (before 1.30 EKS annotated it default; two defaults make a claim
    without a class land on whichever was created last). `patchForce` takes the annotation over
    from EKS's field manager; the provisioner is stated (the same immutable value EKS set) so
    the patch is a complete, valid StorageClass."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": EKS_GP2_CLASS,
            "annotations": {DEFAULT_CLASS_ANNOTATION: "false", "pulumi.com/patchForce": "true"},
        },
        "provisioner": EKS_GP2_PROVISIONER,
    }
