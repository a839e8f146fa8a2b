"""EKS in its own VPC: the thin resource layer over `model.py`.

Resources use the AWS provider the caller passed to the component (its region must be
`cloud.region`, which the kubeconfig's `aws eks get-token` uses).
"""

from __future__ import annotations

import json
import re

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from mlops_platform.components.cloud import AwsCloud
from mlops_platform.components.cluster.model import (
    AUTOSCALER_NAMESPACE,
    AUTOSCALER_SERVICE_ACCOUNT,
    EBS_CSI_ADDON,
    EBS_CSI_MANAGED_POLICY,
    EBS_CSI_NAMESPACE,
    ClusterConfig,
    EksAddonSpec,
    EksSystemPoolConfig,
    NodePoolSpec,
    autoscaler_policy,
    autoscaler_tags,
    autoscaler_values,
    ebs_csi_kms_policy,
    eks_addon_inputs,
    eks_addon_specs,
    eks_kubeconfig,
    eks_node_group_inputs,
    gp2_not_default_patch,
    gp3_storage_class,
    launch_template_inputs,
    select_zones,
    subnet_plan,
    system_pool_spec,
)
from mlops_platform.components.cluster.wiring import ClusterParts, EksNodeAccess
from mlops_platform.components.identity.model import irsa_trust_policy
from mlops_platform.components.network import Network
from mlops_platform.components.versions import CLUSTER_AUTOSCALER

CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
# Pull-only registry access (not ReadOnly): nodes never need to list or describe repositories.
NODE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryPullOnly",
)
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def secrets_key_policy(key_arn: str) -> str:
    """What the cluster role needs to envelope-encrypt secrets with the key (the AWS managed
    cluster policy grants no KMS access)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                    "Resource": key_arn,
                }
            ],
        }
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def build(name: str, cloud: AwsCloud, config: ClusterConfig, protect: bool, parent) -> ClusterParts:
    child = pulumi.ResourceOptions(parent=parent)
    invoke = pulumi.InvokeOptions(parent=parent)
    tags = dict(cloud.tags)
    partition = aws.get_partition(opts=invoke).partition
    zones = _zones(config, invoke)

    vpc, private_subnets, private_routes = _network(name, config, zones, tags, child)

    secrets_key = aws.kms.Key(
        f"{name}-secrets-key",
        description=f"Envelope encryption of Kubernetes secrets in EKS cluster {config.name}",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect),
    )
    # Created before the cluster, so EKS writes into a group with a retention instead of
    # creating one that keeps logs forever.
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-control-plane-logs",
        name=f"/aws/eks/{config.name}/cluster",
        retention_in_days=config.control_plane_log_retention_days,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=protect),
    )

    cluster_role = aws.iam.Role(
        f"{name}-cluster-role",
        assume_role_policy=assume_role_policy("eks.amazonaws.com"),
        tags=tags,
        opts=child,
    )
    cluster_attachments: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-cluster-{_slug(policy)}",
            role=cluster_role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/{policy}",
            opts=child,
        )
        for policy in CLUSTER_POLICIES
    ]
    cluster_attachments.append(
        aws.iam.RolePolicy(
            f"{name}-cluster-secrets-key",
            role=cluster_role.id,
            policy=secrets_key.arn.apply(secrets_key_policy),
            opts=child,
        )
    )
    node_role = aws.iam.Role(
        f"{name}-node-role",
        assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
        tags=tags,
        opts=child,
    )
    node_attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-node-{_slug(policy)}",
            role=node_role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/{policy}",
            opts=child,
        )
        for policy in NODE_POLICIES
    ]

    public_endpoint = bool(config.api_allowed_cidrs)
    # mypy cannot type the conditional `**` spread in the vpc_config TypedDict literal
    cluster = aws.eks.Cluster(  # type: ignore[call-overload]
        f"{name}-eks",
        name=config.name,
        version=config.kubernetes_version,
        role_arn=cluster_role.arn,
        vpc_config={
            "subnet_ids": [private_subnets[zone].id for zone in zones],
            "endpoint_private_access": True,
            "endpoint_public_access": public_endpoint,
            **({"public_access_cidrs": list(config.api_allowed_cidrs)} if public_endpoint else {}),
        },
        encryption_config={"provider": {"key_arn": secrets_key.arn}, "resources": ["secrets"]},
        enabled_cluster_log_types=list(config.control_plane_log_types),
        access_config={
            "authentication_mode": "API",
            "bootstrap_cluster_creator_admin_permissions": True,
        },
        upgrade_policy={"support_type": "STANDARD"},
        deletion_protection=protect,
        tags=tags,
        opts=pulumi.ResourceOptions(
            parent=parent, protect=protect, depends_on=[*cluster_attachments, log_group, vpc]
        ),
    )

    issuer = cluster.identities.apply(lambda ids: ids[0].oidcs[0].issuer)
    oidc = aws.iam.OpenIdConnectProvider(
        f"{name}-oidc",
        url=issuer,
        client_id_lists=["sts.amazonaws.com"],
        thumbprint_lists=list(config.oidc_thumbprints) or None,
        tags=tags,
        opts=child,
    )

    for role_arn in config.admin_role_arns:
        role_name = _slug(role_arn.rsplit("/", 1)[-1])
        entry = aws.eks.AccessEntry(
            f"{name}-admin-{role_name}",
            cluster_name=cluster.name,
            principal_arn=role_arn,
            type="STANDARD",
            tags=tags,
            opts=child,
        )
        aws.eks.AccessPolicyAssociation(
            f"{name}-admin-{role_name}",
            cluster_name=cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=f"arn:{partition}:eks::aws:cluster-access-policy/{CLUSTER_ADMIN_POLICY}",
            access_scope={"type": "cluster"},
            opts=child,
        )

    network = Network(
        cloud="aws",
        network_id=vpc.id,
        cidr=config.network.vpc_cidr,
        private_subnet_ids=[private_subnets[zone].id for zone in zones],
        # The group EKS attaches to the control plane and to every managed node group (the
        # platform's launch templates set none): allowing it lets pods on any node connect.
        client_security_group_ids=[cluster.vpc_config.cluster_security_group_id],
        zones=zones,
    )
    access = EksNodeAccess(
        cluster_name=config.name,
        cluster=cluster.name,
        node_role_arn=node_role.arn,
        tags=tags,
        # nodes must reach the API and ECR through NAT before they can join
        ready=[*node_attachments, *private_routes],
    )
    system_pool = create_node_group(
        f"{name}-system",
        system_pool_spec(config.system_pool_of(EksSystemPoolConfig)),
        network,
        access,
        parent,
        "cluster.system_pool",
    )

    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda v: json.dumps(eks_kubeconfig(v[0], v[1], v[2], region=cloud.region))
        )
    )
    provider = k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        # in-cluster components need somewhere to run: they wait for the system pool
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[system_pool]),
    )
    if config.autoscaler:
        _cluster_autoscaler(name, config, cloud, oidc, issuer, provider, tags, parent)
    prerequisites = _prerequisites(
        name, config, cluster, oidc, issuer, system_pool, provider, tags, partition, parent
    )
    return ClusterParts(
        provider=provider,
        kubeconfig=kubeconfig,
        cluster_name=cluster.name,
        endpoint=cluster.endpoint,
        oidc_provider_arn=oidc.arn,
        oidc_issuer=issuer,
        node_access=access,
        prerequisites=prerequisites,
        network=network,
    )


def _cluster_autoscaler(name, config, cloud, oidc, issuer, provider, tags, parent) -> None:
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        f"{name}-autoscaler",
        assume_role_policy=pulumi.Output.all(oidc.arn, issuer).apply(
            lambda values: json.dumps(
                irsa_trust_policy(
                    values[0], values[1], AUTOSCALER_NAMESPACE, AUTOSCALER_SERVICE_ACCOUNT
                )
            )
        ),
        tags=tags,
        opts=child,
    )
    policy = aws.iam.RolePolicy(
        f"{name}-autoscaler",
        role=role.id,
        policy=json.dumps(autoscaler_policy(config.name)),
        opts=child,
    )
    k8s.helm.v3.Release(
        f"{name}-autoscaler",
        name="cluster-autoscaler",
        namespace=AUTOSCALER_NAMESPACE,
        chart=CLUSTER_AUTOSCALER.chart,
        version=CLUSTER_AUTOSCALER.version,
        repository_opts={"repo": CLUSTER_AUTOSCALER.repo},
        values=autoscaler_values(config.name, cloud.region, role.arn),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider, depends_on=[policy]),
    )


def _prerequisites(
    name, config, cluster, oidc, issuer, system_pool, provider, tags, partition, parent
) -> list[pulumi.Resource]:
    """Managed add-ons (vpc-cni, kube-proxy, coredns, EBS CSI driver with its IRSA role), the
    default encrypted gp3 StorageClass, and EKS's gp2 class made non-default. Returns what
    in-cluster components with volumes should wait for."""
    child = pulumi.ResourceOptions(parent=parent)
    specs = eks_addon_specs(config.kubernetes_version)
    addons: dict[str, aws.eks.Addon] = {}
    for spec in specs:
        depends_on: list[pulumi.Resource] = [system_pool] if spec.needs_nodes else []
        role_arn = None
        if spec.service_account is not None:
            role, grants = _ebs_csi_role(name, config, spec, oidc, issuer, tags, partition, child)
            role_arn = role.arn
            depends_on += grants
        addons[spec.name] = aws.eks.Addon(
            f"{name}-{spec.name}",
            cluster_name=cluster.name,
            service_account_role_arn=role_arn,
            tags=tags,
            **eks_addon_inputs(spec),
            opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on),
        )
    on_cluster = pulumi.ResourceOptions(parent=parent, provider=provider)
    gp3_class = gp3_storage_class(config.name, config.volume_kms_key_arn)
    gp3 = k8s.storage.v1.StorageClass(
        f"{name}-gp3",
        metadata=gp3_class["metadata"],
        provisioner=gp3_class["provisioner"],
        parameters=gp3_class["parameters"],
        reclaim_policy=gp3_class["reclaimPolicy"],
        volume_binding_mode=gp3_class["volumeBindingMode"],
        allow_volume_expansion=gp3_class["allowVolumeExpansion"],
        opts=pulumi.ResourceOptions.merge(
            on_cluster, pulumi.ResourceOptions(depends_on=[addons[EBS_CSI_ADDON]])
        ),
    )
    gp2_patch = gp2_not_default_patch()
    gp2 = k8s.storage.v1.StorageClassPatch(
        f"{name}-gp2-not-default",
        metadata=gp2_patch["metadata"],
        provisioner=gp2_patch["provisioner"],
        opts=on_cluster,
    )
    return [*addons.values(), gp3, gp2]


def _ebs_csi_role(name, config, spec: EksAddonSpec, oidc, issuer, tags, partition, child):
    """IRSA role of the EBS CSI controller: only kube-system:ebs-csi-controller-sa may assume it."""
    service_account = spec.service_account
    assert service_account is not None  # the EBS CSI add-on's spec names it
    role = aws.iam.Role(
        f"{name}-ebs-csi",
        assume_role_policy=pulumi.Output.all(oidc.arn, issuer).apply(
            lambda values: json.dumps(
                irsa_trust_policy(values[0], values[1], EBS_CSI_NAMESPACE, service_account)
            )
        ),
        tags=tags,
        opts=child,
    )
    grants: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi",
            role=role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/{EBS_CSI_MANAGED_POLICY}",
            opts=child,
        )
    ]
    if config.volume_kms_key_arn is not None:
        grants.append(
            aws.iam.RolePolicy(
                f"{name}-ebs-csi-kms",
                role=role.id,
                policy=json.dumps(ebs_csi_kms_policy(config.volume_kms_key_arn)),
                opts=child,
            )
        )
    return role, grants


def _zones(config: ClusterConfig, invoke: pulumi.InvokeOptions) -> list[str]:
    available = aws.get_availability_zones(state="available", opts=invoke).names
    wanted = config.network.availability_zones
    if len(available) < wanted:
        raise ValueError(
            f"cluster.network.availability_zones: {wanted} wanted, the region has "
            f"{len(available)} ({', '.join(available)})"
        )
    return sorted(available)[:wanted]


def _network(name, config: ClusterConfig, zones, tags, child):
    network = config.network
    plan = subnet_plan(network.vpc_cidr, zones)
    vpc = aws.ec2.Vpc(
        f"{name}-vpc",
        cidr_block=network.vpc_cidr,
        enable_dns_support=True,
        enable_dns_hostnames=True,
        tags={**tags, "Name": f"{config.name}"},
        opts=child,
    )
    # The default security group allows all traffic between its members; with no rules it is
    # unusable, so nothing lands in it by accident (CIS AWS 5.4).
    aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags=tags, opts=child)
    igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=child)
    public_rt = aws.ec2.RouteTable(
        f"{name}-public",
        vpc_id=vpc.id,
        routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
        tags={**tags, "Name": f"{config.name}-public"},
        opts=child,
    )
    public_subnets: dict[str, aws.ec2.Subnet] = {}
    private_subnets: dict[str, aws.ec2.Subnet] = {}
    for zone_plan in plan:
        zone = zone_plan.zone
        public_subnets[zone] = aws.ec2.Subnet(
            f"{name}-public-{zone}",
            vpc_id=vpc.id,
            availability_zone=zone,
            cidr_block=zone_plan.public_cidr,
            map_public_ip_on_launch=False,
            tags={**tags, "Name": f"{config.name}-public-{zone}", "kubernetes.io/role/elb": "1"},
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-{zone}",
            subnet_id=public_subnets[zone].id,
            route_table_id=public_rt.id,
            opts=child,
        )
        private_subnets[zone] = aws.ec2.Subnet(
            f"{name}-private-{zone}",
            vpc_id=vpc.id,
            availability_zone=zone,
            cidr_block=zone_plan.private_cidr,
            map_public_ip_on_launch=False,
            tags={
                **tags,
                "Name": f"{config.name}-private-{zone}",
                "kubernetes.io/role/internal-elb": "1",
            },
            opts=child,
        )
    nat_zones = zones if network.nat_gateway_per_zone else zones[:1]
    nat_gateways = {}
    for zone in nat_zones:
        eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags=tags, opts=child)
        nat_gateways[zone] = aws.ec2.NatGateway(
            f"{name}-nat-{zone}",
            allocation_id=eip.id,
            subnet_id=public_subnets[zone].id,
            tags={**tags, "Name": f"{config.name}-nat-{zone}"},
            opts=pulumi.ResourceOptions(parent=child.parent, depends_on=[igw]),
        )
    private_routes = []
    for zone in zones:
        nat = nat_gateways.get(zone, nat_gateways[nat_zones[0]])
        private_rt = aws.ec2.RouteTable(
            f"{name}-private-{zone}",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
            tags={**tags, "Name": f"{config.name}-private-{zone}"},
            opts=child,
        )
        private_routes.append(
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}",
                subnet_id=private_subnets[zone].id,
                route_table_id=private_rt.id,
                opts=child,
            )
        )
    return vpc, private_subnets, private_routes


def create_node_group(
    name: str, spec: NodePoolSpec, network: Network, access: EksNodeAccess, parent, field_name: str
) -> aws.eks.NodeGroup:
    """A managed node group in the network's private subnets (of the spec's zones), with a
    hardened launch template and autoscaler hints on its ASG."""
    child = pulumi.ResourceOptions(parent=parent)
    subnets = network.require("aws", f"{field_name}: the network").subnet_ids_by_zone
    zones = select_zones(spec, list(subnets), f"{field_name}.zones")
    template = aws.ec2.LaunchTemplate(
        f"{name}-lt",
        description=f"EKS node group {spec.key}: IMDSv2 only, encrypted root volume",
        update_default_version=True,
        tags=dict(access.tags),
        # instances and volumes carry the stack's tags too (cost allocation, ownership)
        tag_specifications=[
            {"resource_type": kind, "tags": dict(access.tags)} for kind in ("instance", "volume")
        ]
        if access.tags
        else None,
        **launch_template_inputs(spec),
        opts=child,
    )
    node_group = aws.eks.NodeGroup(
        name,
        cluster_name=access.cluster,
        node_role_arn=access.node_role_arn,
        subnet_ids=[subnets[zone] for zone in zones],
        launch_template={"id": template.id, "version": template.latest_version.apply(str)},
        tags=dict(access.tags),
        **eks_node_group_inputs(access.cluster_name, spec),
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=list(access.ready),
            # the cluster autoscaler owns the desired size once the group exists
            ignore_changes=["scalingConfig.desiredSize"],
        ),
    )
    # EKS does not copy node group tags to the Auto Scaling group it creates, and the
    # autoscaler reads node-template hints from the ASG: tag it directly.
    asg_name = node_group.resources.apply(
        # typed optional, but EKS reports the Auto Scaling group of every created node group
        lambda res: res[0].autoscaling_groups[0].name  # type: ignore[index]
    )
    for key, value in autoscaler_tags(access.cluster_name, spec).items():
        aws.autoscaling.Tag(
            f"{name}-asg-{_slug(key.removeprefix('k8s.io/cluster-autoscaler/'))}",
            autoscaling_group_name=asg_name,
            tag={"key": key, "value": value, "propagate_at_launch": False},
            opts=child,
        )
    return node_group
