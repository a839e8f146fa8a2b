"""KubernetesCluster under mocks: what each cloud registers, wired how, and what it outputs."""

import json

import pulumi
import pytest
from component_support import named, untranslated_keys

from mlops_platform import manifests, mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.cluster import (
    ClusterConfig,
    KubernetesCluster,
    KubernetesClusterArgs,
)
from mlops_platform.components.versions import EKS_ADDON_VERSIONS

# maps whose keys the user chooses (labels, tags, Helm values): not provider property names
AWS = AwsCloud(type="aws", region="us-east-1", tags={"owner": "ml-platform"})
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4", labels={"env": "prod"})
LOCAL = LocalCloud(type="local", kube_context="k3d-mlops", distribution="k3d")
# the ARN the mocks give the secrets key, so the test sees exactly that key wired in
KEY_ARN = mocks._fake_outputs("aws:kms/key:Key", "core-secrets-key", {})["arn"]
OUTPUTS = (
    "kubeconfig",
    "cluster_name",
    "endpoint",
    "oidc_provider_arn",
    "oidc_issuer",
    "workload_pool",
)


def _run(cloud, config: ClusterConfig, protect: bool = False):
    resolved: dict = {}

    def program():
        cluster = KubernetesCluster(
            "core", KubernetesClusterArgs(cloud=cloud, config=config, protect=protect)
        )
        resolved["cluster"] = cluster
        for name in OUTPUTS:
            value = getattr(cluster, name)
            if value is None:
                resolved[name] = None
            else:
                value.apply(lambda v, name=name: resolved.__setitem__(name, v))

    monitor = mocks.run(program)
    return monitor, resolved


def _children(monitor):
    return sorted(
        (r.type, r.name)
        for r in monitor.recorded
        if r.parent_type == "mlops:cluster:KubernetesCluster"
    )


# --- AWS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_prod():
    return _run(
        AWS,
        ClusterConfig(
            name="mlops-prod",
            api_allowed_cidrs=["203.0.113.0/24"],
            admin_role_arns=["arn:aws:iam::123456789012:role/platform-admins"],
        ),
        protect=True,
    )


@pytest.fixture(scope="module")
def aws_dev():
    return _run(
        AWS,
        ClusterConfig.model_validate(
            {
                "name": "mlops-dev",
                "network": {"availability_zones": 2, "nat_gateway_per_zone": False},
                "autoscaler": False,
            }
        ),
    )


def test_aws_children(aws_prod):
    monitor, _ = aws_prod
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
    expected = [
        ("aws:cloudwatch/logGroup:LogGroup", "core-control-plane-logs"),
        ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "core-default-sg"),
        ("aws:ec2/internetGateway:InternetGateway", "core-igw"),
        ("aws:ec2/launchTemplate:LaunchTemplate", "core-system-lt"),
        ("aws:ec2/routeTable:RouteTable", "core-public"),
        ("aws:ec2/vpc:Vpc", "core-vpc"),
        ("aws:eks/accessEntry:AccessEntry", "core-admin-platform-admins"),
        ("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "core-admin-platform-admins"),
        ("aws:eks/cluster:Cluster", "core-eks"),
        ("aws:eks/nodeGroup:NodeGroup", "core-system"),
        ("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "core-oidc"),
        ("aws:iam/role:Role", "core-cluster-role"),
        ("aws:iam/role:Role", "core-node-role"),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "core-cluster-amazoneksclusterpolicy",
        ),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "core-node-amazonec2containerregistrypullonly",
        ),
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "core-node-amazoneks-cni-policy"),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            "core-node-amazoneksworkernodepolicy",
        ),
        ("aws:iam/rolePolicy:RolePolicy", "core-cluster-secrets-key"),
        ("aws:kms/key:Key", "core-secrets-key"),
        ("aws:autoscaling/tag:Tag", "core-system-asg-enabled"),
        ("aws:autoscaling/tag:Tag", "core-system-asg-mlops-prod"),
        ("aws:autoscaling/tag:Tag", "core-system-asg-node-template-label-mlops-dev-node-pool"),
        ("pulumi:providers:kubernetes", "core-k8s"),
        ("aws:iam/role:Role", "core-autoscaler"),
        ("aws:iam/rolePolicy:RolePolicy", "core-autoscaler"),
        ("kubernetes:helm.sh/v3:Release", "core-autoscaler"),
        ("aws:eks/addon:Addon", "core-vpc-cni"),
        ("aws:eks/addon:Addon", "core-kube-proxy"),
        ("aws:eks/addon:Addon", "core-coredns"),
        ("aws:eks/addon:Addon", "core-aws-ebs-csi-driver"),
        ("aws:iam/role:Role", "core-ebs-csi"),
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "core-ebs-csi"),
        ("kubernetes:storage.k8s.io/v1:StorageClass", "core-gp3"),
        ("kubernetes:storage.k8s.io/v1:StorageClassPatch", "core-gp2-not-default"),
    ]
    for zone in zones:
        expected += [
            ("aws:ec2/eip:Eip", f"core-nat-{zone}"),
            ("aws:ec2/natGateway:NatGateway", f"core-nat-{zone}"),
            ("aws:ec2/routeTable:RouteTable", f"core-private-{zone}"),
            ("aws:ec2/routeTableAssociation:RouteTableAssociation", f"core-private-{zone}"),
            ("aws:ec2/routeTableAssociation:RouteTableAssociation", f"core-public-{zone}"),
            ("aws:ec2/subnet:Subnet", f"core-private-{zone}"),
            ("aws:ec2/subnet:Subnet", f"core-public-{zone}"),
        ]
    assert _children(monitor) == sorted(expected)
    component = monitor.named("core")
    assert component.type == "mlops:cluster:KubernetesCluster"


def test_aws_subnets_follow_the_plan_and_are_tagged_for_load_balancers(aws_prod):
    monitor, _ = aws_prod
    private = named(monitor, "aws:ec2/subnet:Subnet", "core-private-us-east-1b")
    assert private.inputs["cidrBlock"] == "10.0.64.0/18"
    assert private.inputs["availabilityZone"] == "us-east-1b"
    assert private.inputs["mapPublicIpOnLaunch"] is False
    assert private.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
    public = [
        r for r in monitor.of_type("aws:ec2/subnet:Subnet") if r.name == "core-public-us-east-1b"
    ]
    assert public[0].inputs["cidrBlock"] == "10.0.196.0/22"
    assert public[0].inputs["tags"]["kubernetes.io/role/elb"] == "1"
    assert monitor.named("core-vpc").inputs["cidrBlock"] == "10.0.0.0/16"
    assert monitor.named("core-default-sg").inputs.get("ingress", []) == []


def test_aws_private_routes_go_through_the_zone_nat(aws_prod):
    monitor, _ = aws_prod
    route_table = named(monitor, "aws:ec2/routeTable:RouteTable", "core-private-us-east-1c")
    assert route_table.inputs["routes"] == [
        {"cidrBlock": "0.0.0.0/0", "natGatewayId": "core-nat-us-east-1c-id"}
    ]
    nat = named(monitor, "aws:ec2/natGateway:NatGateway", "core-nat-us-east-1c")
    assert nat.inputs["subnetId"] == "core-public-us-east-1c-id"


def test_aws_single_nat_gateway_for_development(aws_dev):
    monitor, _ = aws_dev
    assert [r.name for r in monitor.of_type("aws:ec2/natGateway:NatGateway")] == [
        "core-nat-us-east-1a"
    ]
    for zone in ("us-east-1a", "us-east-1b"):
        route_table = named(monitor, "aws:ec2/routeTable:RouteTable", f"core-private-{zone}")
        assert route_table.inputs["routes"][0]["natGatewayId"] == "core-nat-us-east-1a-id"
    assert len(monitor.of_type("aws:ec2/subnet:Subnet")) == 4


def test_eks_cluster_is_encrypted_logged_and_restricted(aws_prod):
    monitor, _ = aws_prod
    key = monitor.named("core-secrets-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    assert (key.protect, key.retain_on_delete) == (True, True)
    cluster = monitor.named("core-eks")
    inputs = cluster.inputs
    assert inputs["name"] == "mlops-prod"
    assert inputs["version"] == ClusterConfig().kubernetes_version
    assert inputs["encryptionConfig"] == {
        "provider": {"keyArn": KEY_ARN},
        "resources": ["secrets"],
    }
    assert inputs["enabledClusterLogTypes"] == [
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    ]
    assert inputs["vpcConfig"] == {
        "subnetIds": [f"core-private-us-east-1{z}-id" for z in "abc"],
        "endpointPrivateAccess": True,
        "endpointPublicAccess": True,
        "publicAccessCidrs": ["203.0.113.0/24"],
    }
    assert inputs["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": True,
    }
    assert inputs["deletionProtection"] is True
    assert inputs["roleArn"] == "arn:aws:role:us-east-1:123456789012:core-cluster-role"
    assert inputs["tags"] == {"owner": "ml-platform"}
    assert cluster.protect is True
    assert monitor.named("core-control-plane-logs").urn in cluster.depends_on
    key_policy = monitor.named("core-cluster-secrets-key")
    assert key_policy.urn in cluster.depends_on
    assert key_policy.inputs["role"] == "core-cluster-role-id"
    assert json.loads(key_policy.inputs["policy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
            "Resource": KEY_ARN,
        }
    ]
    logs = monitor.named("core-control-plane-logs")
    assert logs.inputs["name"] == "/aws/eks/mlops-prod/cluster"
    assert logs.inputs["retentionInDays"] == 90
    assert logs.retain_on_delete is True


def test_eks_endpoint_is_private_by_default(aws_dev):
    monitor, _ = aws_dev
    cluster = monitor.named("core-eks")
    assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in cluster.inputs["vpcConfig"]
    assert cluster.inputs["deletionProtection"] is False
    assert cluster.protect is False
    assert monitor.named("core-secrets-key").protect is False


def test_eks_oidc_provider_for_irsa(aws_prod):
    monitor, resolved = aws_prod
    oidc = monitor.named("core-oidc")
    issuer = resolved["oidc_issuer"]
    assert issuer.startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    assert oidc.inputs["url"] == issuer
    assert oidc.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert "thumbprintLists" not in oidc.inputs
    assert resolved["oidc_provider_arn"] == (
        "arn:aws:openIdConnectProvider:us-east-1:123456789012:core-oidc"
    )


def test_eks_admin_access_entry(aws_prod):
    monitor, _ = aws_prod
    association = named(
        monitor,
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
        "core-admin-platform-admins",
    )
    assert association.inputs["policyArn"] == (
        "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    )
    assert association.inputs["principalArn"] == "arn:aws:iam::123456789012:role/platform-admins"
    assert association.inputs["accessScope"] == {"type": "cluster"}


def test_eks_system_node_group(aws_prod):
    monitor, _ = aws_prod
    group = monitor.named("core-system")
    inputs = group.inputs
    assert inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert inputs["capacityType"] == "ON_DEMAND"
    assert inputs["instanceTypes"] == ["m6i.large"]
    assert inputs["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 4}
    assert inputs["labels"] == {"mlops.dev/node-pool": "system"}
    assert inputs.get("taints", []) == []
    assert inputs["clusterName"] == "mlops-prod"
    assert inputs["nodeRoleArn"] == "arn:aws:role:us-east-1:123456789012:core-node-role"
    assert inputs["launchTemplate"] == {"id": "core-system-lt-id", "version": "1"}
    assert group.ignore_changes == ["scalingConfig.desiredSize"]
    template = monitor.named("core-system-lt")
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    for dependency in ("core-node-amazoneksworkernodepolicy", "core-private-us-east-1a"):
        assert any(urn.endswith(f"::{dependency}") for urn in group.depends_on), dependency
    tag = named(monitor, "aws:autoscaling/tag:Tag", "core-system-asg-mlops-prod")
    assert tag.inputs["tag"] == {
        "key": "k8s.io/cluster-autoscaler/mlops-prod",
        "value": "owned",
        "propagateAtLaunch": False,
    }
    assert tag.inputs["autoscalingGroupName"].startswith("eks-core-system-")


def test_eks_outputs_and_kubeconfig(aws_prod):
    monitor, resolved = aws_prod
    assert resolved["cluster_name"] == "mlops-prod"
    assert resolved["endpoint"].endswith(".gr7.us-east-1.eks.amazonaws.com")
    assert resolved["workload_pool"] is None
    kubeconfig = json.loads(resolved["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == resolved["endpoint"]
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "aws"
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:2] == ["--region", "us-east-1"]
    provider = monitor.named("core-k8s")
    assert provider.secret_inputs == {"kubeconfig"}
    assert json.loads(provider.inputs["kubeconfig"]) == kubeconfig
    assert any(urn.endswith("::core-system") for urn in provider.depends_on)
    assert isinstance(resolved["cluster"].provider, pulumi.ProviderResource)


def _role_arn(name):
    return mocks._fake_outputs("aws:iam/role:Role", name, {})["arn"]


def test_eks_cluster_autoscaler_with_irsa(aws_prod):
    monitor, resolved = aws_prod
    role = named(monitor, "aws:iam/role:Role", "core-autoscaler")
    issuer = resolved["oidc_issuer"].removeprefix("https://")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": resolved["oidc_provider_arn"]},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{issuer}:sub": "system:serviceaccount:kube-system:cluster-autoscaler",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
        }
    ]
    policy = named(monitor, "aws:iam/rolePolicy:RolePolicy", "core-autoscaler")
    assert policy.inputs["role"] == "core-autoscaler-id"
    writes = json.loads(policy.inputs["policy"])["Statement"][1]
    assert writes["Condition"]["StringEquals"] == {
        "aws:ResourceTag/k8s.io/cluster-autoscaler/mlops-prod": "owned",
        "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
    }
    release = named(monitor, "kubernetes:helm.sh/v3:Release", "core-autoscaler")
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]) == (
        "cluster-autoscaler",
        "9.59.0",
        {"repo": "https://kubernetes.github.io/autoscaler"},
    )
    assert inputs["namespace"] == "kube-system"
    assert inputs["values"]["autoDiscovery"] == {"clusterName": "mlops-prod"}
    assert inputs["values"]["awsRegion"] == "us-east-1"
    assert inputs["values"]["rbac"]["serviceAccount"] == {
        "name": "cluster-autoscaler",
        "annotations": {"eks.amazonaws.com/role-arn": _role_arn("core-autoscaler")},
    }
    assert release.provider.split("::")[-2] == "core-k8s"
    assert policy.urn in release.depends_on


def test_eks_without_autoscaler(aws_dev):
    monitor, _ = aws_dev
    assert monitor.of_type("kubernetes:helm.sh/v3:Release") == []
    assert sorted(r.name for r in monitor.of_type("aws:iam/role:Role")) == [
        "core-cluster-role",
        "core-ebs-csi",
        "core-node-role",
    ]


# --- EKS prerequisites: managed add-ons, EBS CSI driver, default StorageClass ------------------


def _depends_on_names(record) -> set[str]:
    return {urn.rsplit("::", 1)[-1] for urn in record.depends_on}


def test_eks_managed_addons_are_pinned_and_adopt_the_bootstrapped_ones(aws_prod):
    monitor, _ = aws_prod
    addons = {r.name: r for r in monitor.of_type("aws:eks/addon:Addon")}
    assert {name: r.inputs["addonVersion"] for name, r in addons.items()} == {
        "core-vpc-cni": EKS_ADDON_VERSIONS["vpc-cni"],
        "core-kube-proxy": EKS_ADDON_VERSIONS["kube-proxy"],
        "core-coredns": EKS_ADDON_VERSIONS["coredns"],
        "core-aws-ebs-csi-driver": EKS_ADDON_VERSIONS["aws-ebs-csi-driver"],
    }
    for name, addon in addons.items():
        assert addon.inputs["addonName"] == name.removeprefix("core-"), name
        assert addon.inputs["clusterName"] == "mlops-prod", name
        assert addon.inputs["resolveConflictsOnCreate"] == "OVERWRITE", name
        assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE", name
        assert addon.inputs["tags"] == {"owner": "ml-platform"}, name
        assert addon.parent_type == "mlops:cluster:KubernetesCluster", name
        assert untranslated_keys(addon.inputs) == [], name
    # Deployments need a node to become ACTIVE; the DaemonSets do not wait for the pool.
    assert "core-system" in _depends_on_names(addons["core-coredns"])
    assert "core-system" in _depends_on_names(addons["core-aws-ebs-csi-driver"])
    assert "core-system" not in _depends_on_names(addons["core-vpc-cni"])
    assert "core-system" not in _depends_on_names(addons["core-kube-proxy"])
    for name in ("core-vpc-cni", "core-kube-proxy", "core-coredns"):
        assert "serviceAccountRoleArn" not in addons[name].inputs, name


def test_ebs_csi_driver_has_its_own_irsa_role(aws_prod):
    monitor, resolved = aws_prod
    role = named(monitor, "aws:iam/role:Role", "core-ebs-csi")
    issuer = resolved["oidc_issuer"].removeprefix("https://")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Federated": resolved["oidc_provider_arn"]},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{issuer}:sub": "system:serviceaccount:kube-system:ebs-csi-controller-sa",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
        }
    ]
    attachment = named(monitor, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "core-ebs-csi")
    assert attachment.inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    )
    assert role.urn in attachment.depends_on  # role=role.name, known after apply
    addon = named(monitor, "aws:eks/addon:Addon", "core-aws-ebs-csi-driver")
    assert addon.inputs["serviceAccountRoleArn"] == _role_arn("core-ebs-csi")
    assert attachment.urn in addon.depends_on
    # no customer key: EBS uses aws/ebs, and the role gets no KMS grant
    assert [r.name for r in monitor.of_type("aws:iam/rolePolicy:RolePolicy")] == [
        "core-cluster-secrets-key",
        "core-autoscaler",
    ]


def test_default_storage_class_is_encrypted_gp3_and_gp2_is_not_default(aws_prod):
    monitor, resolved = aws_prod
    gp3 = named(monitor, "kubernetes:storage.k8s.io/v1:StorageClass", "core-gp3")
    assert gp3.inputs == {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "gp3",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": {
            "type": "gp3",
            "encrypted": "true",
            "csi.storage.k8s.io/fstype": "ext4",
            # what `mlops teardown-check` finds a cluster's volumes by
            "tagSpecification_1": "kubernetes.io/cluster/mlops-prod=owned",
        },
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }
    assert gp3.provider.split("::")[-2] == "core-k8s"
    assert "core-aws-ebs-csi-driver" in _depends_on_names(gp3)
    gp2 = named(monitor, "kubernetes:storage.k8s.io/v1:StorageClassPatch", "core-gp2-not-default")
    assert gp2.inputs["metadata"] == {
        "name": "gp2",
        "annotations": {
            "storageclass.kubernetes.io/is-default-class": "false",
            "pulumi.com/patchForce": "true",
        },
    }
    assert gp2.provider.split("::")[-2] == "core-k8s"
    for record in (gp3, gp2):  # both are complete, valid StorageClass objects
        manifests.validate(record.inputs)
    prerequisites = sorted(r._name for r in resolved["cluster"].prerequisites)
    assert prerequisites == [
        "core-aws-ebs-csi-driver",
        "core-coredns",
        "core-gp2-not-default",
        "core-gp3",
        "core-kube-proxy",
        "core-vpc-cni",
    ]


def test_customer_key_encrypts_volumes_and_the_driver_may_use_it():
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    monitor, _ = _run(AWS, ClusterConfig(name="mlops-prod", volume_kms_key_arn=key))
    gp3 = named(monitor, "kubernetes:storage.k8s.io/v1:StorageClass", "core-gp3")
    assert gp3.inputs["parameters"]["kmsKeyId"] == key
    grant = named(monitor, "aws:iam/rolePolicy:RolePolicy", "core-ebs-csi-kms")
    assert grant.inputs["role"] == "core-ebs-csi-id"
    statements = json.loads(grant.inputs["policy"])["Statement"]
    assert {statement["Resource"] for statement in statements} == {key}
    addon = named(monitor, "aws:eks/addon:Addon", "core-aws-ebs-csi-driver")
    assert grant.urn in addon.depends_on


def test_unpinned_kubernetes_version_on_eks_is_an_error():
    with pytest.raises(Exception) as info:
        _run(AWS, ClusterConfig(kubernetes_version="1.34"))
    assert "cluster.kubernetes_version: 1.34 has no pinned EKS add-on versions" in str(info.value)


def test_too_few_zones_in_the_region_is_an_error():
    with pytest.raises(Exception) as info:
        _run(AWS, ClusterConfig.model_validate({"network": {"availability_zones": 4}}))
    assert "cluster.network.availability_zones: 4 wanted, the region has 3 " in str(info.value)


# --- GCP -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcp_prod():
    return _run(
        GCP,
        ClusterConfig(
            name="mlops-prod", api_allowed_cidrs=["203.0.113.0/24"], release_channel="STABLE"
        ),
        protect=True,
    )


def test_gcp_children(gcp_prod):
    monitor, _ = gcp_prod
    assert _children(monitor) == sorted(
        [
            ("gcp:compute/firewall:Firewall", "core-control-plane-webhooks"),
            ("gcp:compute/network:Network", "core-network"),
            ("gcp:compute/router:Router", "core-router"),
            ("gcp:compute/routerNat:RouterNat", "core-nat"),
            ("gcp:compute/subnetwork:Subnetwork", "core-nodes"),
            ("gcp:container/cluster:Cluster", "core-gke"),
            ("gcp:container/nodePool:NodePool", "core-system"),
            ("gcp:projects/iAMMember:IAMMember", "core-nodes-artifactregistry.reader"),
            ("gcp:projects/iAMMember:IAMMember", "core-nodes-container.defaultNodeServiceAccount"),
            ("gcp:serviceaccount/account:Account", "core-nodes-sa"),
            ("pulumi:providers:kubernetes", "core-k8s"),
        ]
    )


def test_gcp_network(gcp_prod):
    monitor, _ = gcp_prod
    assert monitor.named("core-network").inputs["autoCreateSubnetworks"] is False
    subnetwork = monitor.named("core-nodes").inputs
    assert subnetwork["ipCidrRange"] == "10.0.0.0/16"
    assert subnetwork["privateIpGoogleAccess"] is True
    assert subnetwork["secondaryIpRanges"] == [
        {"rangeName": "pods", "ipCidrRange": "10.64.0.0/14"},
        {"rangeName": "services", "ipCidrRange": "10.68.0.0/20"},
    ]
    nat = monitor.named("core-nat").inputs
    assert nat["sourceSubnetworkIpRangesToNat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"
    assert nat["region"] == "europe-west4"
    assert monitor.named("core-router").inputs["network"] == "core-network-id"


def test_gke_control_plane_reaches_istio_webhooks_on_the_nodes(gcp_prod):
    monitor, _ = gcp_prod
    rule = monitor.named("core-control-plane-webhooks")
    cluster = monitor.named("core-gke").inputs
    nodes = mocks._fake_outputs(
        "gcp:serviceaccount/account:Account",
        "core-nodes-sa",
        {"accountId": monitor.named("core-nodes-sa").inputs["accountId"]},
    )["email"]
    assert rule.inputs == {
        "project": "acme-ml",
        "network": "core-network-id",
        "direction": "INGRESS",
        "description": "GKE control plane of mlops-prod to admission webhooks on its nodes",
        "sourceRanges": [cluster["privateClusterConfig"]["masterIpv4CidrBlock"]],
        "targetServiceAccounts": [nodes],
        "allows": [{"protocol": "tcp", "ports": ["15017"]}],
    }


def test_gke_cluster_is_private_with_workload_identity(gcp_prod):
    monitor, _ = gcp_prod
    cluster = monitor.named("core-gke")
    inputs = cluster.inputs
    assert inputs["name"] == "mlops-prod"
    assert inputs["location"] == "europe-west4"
    assert inputs["removeDefaultNodePool"] is True
    assert inputs["privateClusterConfig"] == {
        "enablePrivateNodes": True,
        "enablePrivateEndpoint": False,
        "masterIpv4CidrBlock": "172.16.0.0/28",
    }
    assert inputs["masterAuthorizedNetworksConfig"] == {
        "cidrBlocks": [{"cidrBlock": "203.0.113.0/24", "displayName": "operators-0"}],
        "gcpPublicCidrsAccessEnabled": False,
    }
    assert inputs["workloadIdentityConfig"] == {"workloadPool": "acme-ml.svc.id.goog"}
    assert inputs["enableShieldedNodes"] is True
    assert inputs["releaseChannel"] == {"channel": "STABLE"}
    assert inputs["ipAllocationPolicy"] == {
        "clusterSecondaryRangeName": "pods",
        "servicesSecondaryRangeName": "services",
    }
    assert inputs["binaryAuthorization"] == {"evaluationMode": "DISABLED"}
    assert inputs["deletionProtection"] is True
    assert cluster.ignore_changes == ["nodeConfig", "initialNodeCount"]
    assert inputs["resourceLabels"] == {"env": "prod"}
    assert (
        inputs["nodeConfig"]["serviceAccount"] == "mlops-prod-nodes@project.iam.gserviceaccount.com"
    )
    assert inputs["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert cluster.protect is True


def test_gke_private_endpoint_without_operator_networks():
    monitor, _ = _run(GCP, ClusterConfig(binary_authorization=True))
    inputs = monitor.named("core-gke").inputs
    assert inputs["privateClusterConfig"]["enablePrivateEndpoint"] is True
    assert inputs["masterAuthorizedNetworksConfig"] == {
        "cidrBlocks": [],
        "gcpPublicCidrsAccessEnabled": False,
    }
    assert inputs["binaryAuthorization"] == {"evaluationMode": "PROJECT_SINGLETON_POLICY_ENFORCE"}
    assert inputs["deletionProtection"] is False


def test_gke_node_service_account_is_least_privilege(gcp_prod):
    monitor, _ = gcp_prod
    members = monitor.of_type("gcp:projects/iAMMember:IAMMember")
    assert sorted(m.inputs["role"] for m in members) == [
        "roles/artifactregistry.reader",
        "roles/container.defaultNodeServiceAccount",
    ]
    assert {m.inputs["member"] for m in members} == {
        "serviceAccount:mlops-prod-nodes@project.iam.gserviceaccount.com"
    }


def test_gke_system_pool(gcp_prod):
    monitor, _ = gcp_prod
    pool = monitor.named("core-system").inputs
    assert pool["namePrefix"] == "system-"
    assert pool["cluster"] == "core-gke-id"
    assert pool["autoscaling"] == {
        "totalMinNodeCount": 2,
        "totalMaxNodeCount": 4,
        "locationPolicy": "BALANCED",
    }
    assert pool["nodeConfig"]["machineType"] == "e2-standard-4"
    assert pool["nodeConfig"]["shieldedInstanceConfig"] == {
        "enableSecureBoot": True,
        "enableIntegrityMonitoring": True,
    }
    assert "guestAccelerators" not in pool["nodeConfig"]


def test_gke_outputs(gcp_prod):
    monitor, resolved = gcp_prod
    assert resolved["workload_pool"] == "acme-ml.svc.id.goog"
    assert resolved["oidc_provider_arn"] is None
    assert resolved["oidc_issuer"] is None
    assert resolved["cluster_name"] == "mlops-prod"
    kubeconfig = json.loads(resolved["kubeconfig"])
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.0.0.2"
    assert kubeconfig["users"][0]["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
    assert monitor.named("core-k8s").secret_inputs == {"kubeconfig"}


# --- local -----------------------------------------------------------------------------------


def test_local_creates_only_the_provider():
    monitor, resolved = _run(LOCAL, ClusterConfig())
    assert [(r.type, r.name) for r in monitor.recorded] == [
        ("mlops:cluster:KubernetesCluster", "core"),
        ("pulumi:providers:kubernetes", "core-k8s"),
    ]
    provider = monitor.named("core-k8s")
    assert provider.inputs["context"] == "k3d-mlops"
    assert "kubeconfig" not in provider.inputs
    assert provider.parent_name == "core"
    assert resolved["cluster_name"] == "k3d-mlops"
    assert resolved["kubeconfig"] is None
    assert resolved["endpoint"] is None
    assert resolved["oidc_provider_arn"] is None
    assert resolved["workload_pool"] is None
    assert resolved["cluster"].node_access is None
    # k3d brings its own default class and metrics-server: nothing to install or wait for
    assert resolved["cluster"].prerequisites == []


def test_gke_installs_no_prerequisites(gcp_prod):
    # GKE serves the PD CSI driver, `standard-rwo` (default) and metrics.k8s.io itself
    monitor, resolved = gcp_prod
    assert resolved["cluster"].prerequisites == []
    assert monitor.of_type("aws:eks/addon:Addon") == []
    assert [r for r in monitor.recorded if r.type.startswith("kubernetes:")] == []


def test_every_input_key_is_a_provider_property_aws_prod(aws_prod):
    monitor = aws_prod[0]
    assert [(r.name, key) for r in monitor.recorded for key in untranslated_keys(r.inputs)] == []


def test_every_input_key_is_a_provider_property_gcp_prod(gcp_prod):
    monitor = gcp_prod[0]
    assert [(r.name, key) for r in monitor.recorded for key in untranslated_keys(r.inputs)] == []


# --- network handed to in-VPC services ------------------------------------------------------


def _network(cloud, config: ClusterConfig) -> dict:
    resolved: dict = {}

    def program():
        cluster = KubernetesCluster("core", KubernetesClusterArgs(cloud=cloud, config=config))
        network = cluster.network
        resolved["type"] = type(network).__name__
        if network is None:
            return
        for field, value in vars(network).items():
            if isinstance(value, pulumi.Output):
                value.apply(lambda v, field=field: resolved.__setitem__(field, v))
            elif isinstance(value, (list, tuple)):
                pulumi.Output.all(*value).apply(
                    lambda v, field=field: resolved.__setitem__(field, v)
                )
            else:
                resolved[field] = value

    monitor = mocks.run(program)
    return {"monitor": monitor, **resolved}


def test_aws_network_is_the_vpc_private_subnets_and_cluster_security_group():
    network = _network(AWS, ClusterConfig(name="core"))
    monitor = network.pop("monitor")
    vpc = named(monitor, "aws:ec2/vpc:Vpc", "core-vpc")
    private = sorted(  # one per zone, in zone order (names end with the zone)
        (r for r in monitor.of_type("aws:ec2/subnet:Subnet") if "private" in r.name),
        key=lambda r: r.name,
    )
    cluster = named(monitor, "aws:eks/cluster:Cluster", "core-eks")
    assert network == {
        "type": "Network",
        "cloud": "aws",
        "network_id": f"{vpc.name}-id",  # the mocks' physical ids
        "cidr": vpc.inputs["cidrBlock"],
        "private_subnet_ids": [f"{s.name}-id" for s in private],
        "client_security_group_ids": [
            mocks._fake_outputs(cluster.type, cluster.name, {})["vpcConfig"][
                "clusterSecurityGroupId"
            ]
        ],
        "project": None,
        "region": None,
        # the zone of each private subnet, for node pools that keep to some zones
        "zones": ["us-east-1a", "us-east-1b", "us-east-1c"],
    }


def test_gcp_network_is_the_vpc_and_node_subnetwork():
    network = _network(GCP, ClusterConfig(name="core"))
    network.pop("monitor")
    assert (network["type"], network["cloud"]) == ("Network", "gcp")
    assert (network["project"], network["region"]) == ("acme-ml", "europe-west4")
    assert network["network_id"].startswith("core-network")
    assert network["cidr"] == "10.0.0.0/16"  # the node subnetwork's primary range
    [subnetwork] = network["private_subnet_ids"]
    assert subnetwork.startswith("core-nodes")
    assert list(network["client_security_group_ids"]) == []
    assert list(network["zones"]) == []  # a GKE node pool names its zones itself


def test_local_cluster_has_no_cloud_network():
    assert _network(LOCAL, ClusterConfig())["type"] == "NoneType"
