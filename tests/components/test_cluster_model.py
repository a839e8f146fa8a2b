"""Cluster and network, pure layer: validation, subnet plan, node-pool values, kubeconfigs."""

import re
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from mlops_platform.components.cloud import Cloud
from mlops_platform.components.cluster import model
from mlops_platform.components.cluster.model import (
    ClusterConfig,
    NetworkConfig,
    NodePoolSpec,
    Taint,
)
from mlops_platform.components.gpu.model import GpuPools
from mlops_platform.components.versions import (
    CLUSTER_AUTOSCALER,
    EKS_ADDON_VERSIONS,
    KUBERNETES_VERSION,
)


def _error(cls, data) -> str:
    with pytest.raises(ValidationError) as info:
        cls.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


# --- config ----------------------------------------------------------------------------------


def test_defaults_are_private_encrypted_and_logged():
    config = ClusterConfig()
    assert config.name == "mlops"
    assert config.kubernetes_version == KUBERNETES_VERSION
    assert config.api_allowed_cidrs == []  # private endpoint only
    assert config.control_plane_log_types == [
        "api",
        "audit",
        "authenticator",
        "controllerManager",
        "scheduler",
    ]
    assert config.control_plane_log_retention_days == 90
    assert config.release_channel == "REGULAR"
    assert config.autoscaler is True
    assert config.network == NetworkConfig(
        vpc_cidr="10.0.0.0/16",
        availability_zones=3,
        nat_gateway_per_zone=True,
        pods_cidr="10.64.0.0/14",
        services_cidr="10.68.0.0/20",
        control_plane_cidr="172.16.0.0/28",
    )
    # no system pool block: the cluster's cloud decides which defaults (root config: its type)
    assert config.system_pool is None
    eks = config.system_pool_of(model.EksSystemPoolConfig)
    gke = config.system_pool_of(model.GkeSystemPoolConfig)
    assert (eks.instance_type, eks.min_size, eks.max_size) == ("m6i.large", 2, 4)
    assert (gke.machine_type, gke.min_size, gke.max_size) == ("e2-standard-4", 2, 4)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"api_allowed_cidrs": ["0.0.0.0/0"]},
            "api_allowed_cidrs: Value error, 0.0.0.0/0 would open the API "
            "server to the internet; list the operators' networks instead",
        ),
        (
            {"api_allowed_cidrs": ["203.0.113.7/24"]},
            "api_allowed_cidrs: Value error, '203.0.113.7/24' is not an IPv4 "
            "network in CIDR form (203.0.113.7/24 has host bits set)",
        ),
        (
            {"name": "Mlops_Prod"},
            "name: Value error, name 'Mlops_Prod' must start with a letter and hold only "
            "lowercase letters, digits and '-'",
        ),
        (
            {"kubernetes_version": "1.35.2"},
            "kubernetes_version: String should match pattern '^1\\.\\d+$'",
        ),
        (
            {"control_plane_log_types": ["api", "api"]},
            "control_plane_log_types: Value error, each log type may be listed once",
        ),
        (
            {"control_plane_log_types": ["kubelet"]},
            "control_plane_log_types.0: Input should be 'api', 'audit', 'authenticator', "
            "'controllerManager' or 'scheduler'",
        ),
        (
            {"control_plane_log_retention_days": 100},
            "control_plane_log_retention_days: Value error, 100 is not a CloudWatch retention "
            "period; use one of 1, 3, 5, 7, 14, 30, 60, 90, 120, "
            "150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
        ),
        (
            {"admin_role_arns": ["arn:aws:iam::123456789012:user/alice"]},
            "admin_role_arns: Value error, "
            "'arn:aws:iam::123456789012:user/alice' is not an IAM role ARN",
        ),
        (
            {"volume_kms_key_arn": "alias/aws/ebs"},
            "volume_kms_key_arn: Value error, 'alias/aws/ebs' is not a KMS key ARN "
            "(arn:aws:kms:<region>:<account>:key/<key id>)",
        ),
        (
            {"release_channel": "UNSPECIFIED"},
            "release_channel: Input should be 'RAPID', 'REGULAR', 'STABLE' or 'EXTENDED'",
        ),
        (
            {"network": {"availability_zones": 1}},
            "network.availability_zones: Input should be greater than or equal to 2",
        ),
        (
            {"network": {"pods_cidr": "10.0.128.0/17"}},
            "network: Value error, vpc_cidr 10.0.0.0/16 overlaps pods_cidr 10.0.128.0/17",
        ),
        (
            {"network": {"control_plane_cidr": "172.16.0.0/24"}},
            "network: Value error, control_plane_cidr: 172.16.0.0/24 must be a /28",
        ),
        (
            {"network": {"vpc_cidr": "10.0.0.0/24", "availability_zones": 3}},
            "network: Value error, vpc_cidr: 10.0.0.0/24 is too small for 3 zones; use a /22 or "
            "larger",
        ),
        (
            {"network": {"vpc_cidr": "10.0.0.0/33"}},
            "network: Value error, vpc_cidr: '10.0.0.0/33' is not an IPv4 network in CIDR form "
            "('33' is not a valid netmask)",
        ),
        (
            {"system_pool": {"type": "eks", "min_size": 5, "max_size": 3}},
            "system_pool.eks: Value error, min_size (5) must be <= max_size (3)",
        ),
        (
            {"system_pool": {"type": "gke", "min_size": 0}},
            "system_pool.gke.min_size: Input should be greater than or equal to 1",
        ),
        (
            {"system_pool": {"type": "eks", "labels": {"mlops.dev/node-pool": "other"}}},
            "system_pool.eks: Value error, label 'mlops.dev/node-pool' is set from the pool key "
            "and cannot be given",
        ),
        (
            {"system_pool": {"type": "eks", "labels": {"team": "ml platform"}}},
            "system_pool.eks: Value error, label 'team': value 'ml platform' must be at most 63 "
            "alphanumerics, '-', '_' or '.'",
        ),
        (
            {"system_pool": {"type": "eks", "labels": {"Bad_Prefix/x": "1"}}},
            "system_pool.eks: Value error, label key 'Bad_Prefix/x': prefix must be a DNS "
            "subdomain",
        ),
        ({"region": "us-east-1"}, "region: Extra inputs are not permitted"),
        # each cloud's block takes only its own node settings
        (
            {"system_pool": {"type": "gke", "instance_type": "m6i.large"}},
            "system_pool.gke.instance_type: Extra inputs are not permitted",
        ),
        (
            {"system_pool": {"type": "eks", "machine_type": "e2-standard-4"}},
            "system_pool.eks.machine_type: Extra inputs are not permitted",
        ),
        (
            {"system_pool": {"type": "existing", "min_size": 2}},
            "system_pool.existing.min_size: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_cluster_config_names_the_field(data, message):
    assert _error(ClusterConfig, data) == message


def test_taint_validation():
    assert _error(Taint, {"key": "nvidia.com/gpu", "effect": "Evict"}) == (
        "effect: Input should be 'NoSchedule', 'PreferNoSchedule' or 'NoExecute'"
    )
    assert _error(Taint, {"key": "a b"}) == (
        ": Value error, taint key 'a b': name must be 1-63 alphanumerics, '-', '_' or '.'"
    )


def test_config_is_frozen():
    config = ClusterConfig()
    with pytest.raises(ValidationError):
        config.name = "other"


# --- subnet plan -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vpc", "zones", "private", "public"),
    [
        (
            "10.0.0.0/16",
            ["a", "b", "c"],
            ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"],
            ["10.0.192.0/22", "10.0.196.0/22", "10.0.200.0/22"],
        ),
        (
            "10.0.0.0/16",
            ["a", "b"],
            ["10.0.0.0/18", "10.0.64.0/18"],
            ["10.0.192.0/22", "10.0.196.0/22"],
        ),
        (
            "10.8.0.0/16",
            ["a", "b", "c", "d"],
            ["10.8.0.0/19", "10.8.32.0/19", "10.8.64.0/19", "10.8.96.0/19"],
            ["10.8.224.0/23", "10.8.226.0/23", "10.8.228.0/23", "10.8.230.0/23"],
        ),
        (
            "10.0.0.0/22",
            ["a", "b"],
            ["10.0.0.0/24", "10.0.1.0/24"],
            ["10.0.3.0/28", "10.0.3.16/28"],
        ),
    ],
)
def test_subnet_plan(vpc, zones, private, public):
    plan = model.subnet_plan(vpc, zones)
    assert [p.zone for p in plan] == zones
    assert [p.private_cidr for p in plan] == private
    assert [p.public_cidr for p in plan] == public


# --- node pools ----------------------------------------------------------------------------------

GPU = NodePoolSpec(
    key="a100",
    instance_type="p4d.24xlarge",
    min_size=0,
    max_size=2,
    disk_size_gib=200,
    spot=True,
    labels={"mlops.dev/node-pool": "a100", "team": "research"},
    taints=(Taint(key="nvidia.com/gpu", value="present"),),
    ami_type="AL2023_x86_64_NVIDIA",
)


def test_system_pool_spec_per_cloud():
    aws = model.system_pool_spec(model.EksSystemPoolConfig(labels={"tier": "platform"}))
    gcp = model.system_pool_spec(model.GkeSystemPoolConfig(machine_type="e2-standard-8"))
    assert aws == NodePoolSpec(
        key="system",
        instance_type="m6i.large",
        min_size=2,
        max_size=4,
        disk_size_gib=50,
        labels={"tier": "platform", "mlops.dev/node-pool": "system"},
    )
    assert gcp.instance_type == "e2-standard-8"
    assert aws.ami_type == "AL2023_x86_64_STANDARD"
    assert aws.taints == ()


def test_eks_node_group_inputs():
    assert model.eks_node_group_inputs("mlops-prod", GPU) == {
        "ami_type": "AL2023_x86_64_NVIDIA",
        "capacity_type": "SPOT",
        "instance_types": ["p4d.24xlarge"],
        "scaling_config": {"min_size": 0, "desired_size": 0, "max_size": 2},
        "labels": {"mlops.dev/node-pool": "a100", "team": "research"},
        "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}],
        "update_config": {"max_unavailable_percentage": 33},
    }


def test_on_demand_and_effects_map_to_the_api_enums():
    spec = NodePoolSpec(
        key="x",
        instance_type="m6i.large",
        min_size=1,
        max_size=1,
        disk_size_gib=20,
        taints=(
            Taint(key="a", effect="PreferNoSchedule"),
            Taint(key="b", value="v", effect="NoExecute"),
        ),
    )
    inputs = model.eks_node_group_inputs("c", spec)
    assert inputs["capacity_type"] == "ON_DEMAND"
    assert inputs["taints"] == [
        {"key": "a", "value": "", "effect": "PREFER_NO_SCHEDULE"},
        {"key": "b", "value": "v", "effect": "NO_EXECUTE"},
    ]
    assert model.gke_node_pool_inputs(spec)["node_config"]["taints"] == inputs["taints"]


def test_autoscaler_tags_let_a_pool_scale_from_zero():
    assert model.autoscaler_tags("mlops-prod", GPU) == {
        "k8s.io/cluster-autoscaler/enabled": "true",
        "k8s.io/cluster-autoscaler/mlops-prod": "owned",
        "k8s.io/cluster-autoscaler/node-template/label/mlops.dev/node-pool": "a100",
        "k8s.io/cluster-autoscaler/node-template/label/team": "research",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "present:NoSchedule",
    }


def test_launch_template_requires_imdsv2_and_encrypts_the_root_volume():
    assert model.launch_template_inputs(GPU) == {
        "metadata_options": {
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 1,
        },
        "block_device_mappings": [
            {
                "device_name": "/dev/xvda",
                "ebs": {
                    "volume_size": 200,
                    "volume_type": "gp3",
                    "encrypted": "true",
                    "delete_on_termination": "true",
                },
            }
        ],
    }


def test_select_zones():
    available = ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert model.select_zones(GPU, available, "gpu_pools.a100") == available
    pinned = NodePoolSpec(**{**GPU.__dict__, "zones": ("us-east-1b",)})
    assert model.select_zones(pinned, available, "gpu_pools.a100.zones") == ["us-east-1b"]
    wrong = NodePoolSpec(**{**GPU.__dict__, "zones": ("us-west-2a", "us-east-1a")})
    with pytest.raises(ValueError) as info:
        model.select_zones(wrong, available, "gpu_pools.a100.zones")
    assert str(info.value) == (
        "gpu_pools.a100.zones: us-west-2a not among the cluster's zones "
        "(us-east-1a, us-east-1b, us-east-1c)"
    )


def test_gke_node_pool_inputs_with_accelerators():
    spec = NodePoolSpec(
        **{
            **GPU.__dict__,
            "instance_type": "g2-standard-8",
            "accelerator": "nvidia-l4",
            "accelerator_count": 1,
            "gpu_driver_version": "LATEST",
            "zones": ("europe-west4-a",),
        }
    )
    assert model.gke_node_pool_inputs(spec) == {
        "initial_node_count": 0,
        "autoscaling": {
            "total_min_node_count": 0,
            "total_max_node_count": 2,
            "location_policy": "ANY",
        },
        "management": {"auto_repair": True, "auto_upgrade": True},
        "node_locations": ["europe-west4-a"],
        "node_config": {
            "machine_type": "g2-standard-8",
            "spot": True,
            "disk_size_gb": 200,
            "disk_type": "pd-balanced",
            "image_type": "COS_CONTAINERD",
            "labels": {"mlops.dev/node-pool": "a100", "team": "research"},
            "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}],
            "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "shielded_instance_config": {
                "enable_secure_boot": True,
                "enable_integrity_monitoring": True,
            },
            "metadata": {"disable-legacy-endpoints": "true"},
            "guest_accelerators": [
                {
                    "type": "nvidia-l4",
                    "count": 1,
                    "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
                }
            ],
        },
    }


def test_a_system_pool_block_of_another_cloud_is_refused_by_the_cluster():
    config = ClusterConfig(system_pool={"type": "gke", "machine_type": "e2-standard-8"})
    assert config.system_pool_of(model.GkeSystemPoolConfig).machine_type == "e2-standard-8"
    with pytest.raises(ValueError) as info:
        config.system_pool_of(model.EksSystemPoolConfig)
    assert str(info.value) == (
        "cluster.system_pool.type: 'gke' is not this cluster's node type ('eks')"
    )


def test_gke_cpu_pool_has_no_accelerators_and_starts_with_a_node():
    inputs = model.gke_node_pool_inputs(model.system_pool_spec(model.GkeSystemPoolConfig()))
    assert "guest_accelerators" not in inputs["node_config"]
    assert "node_locations" not in inputs
    assert inputs["initial_node_count"] == 1
    assert inputs["autoscaling"]["location_policy"] == "BALANCED"


# --- kubeconfigs -------------------------------------------------------------------------------


def test_eks_kubeconfig_uses_short_lived_tokens():
    config = model.eks_kubeconfig("mlops", "https://x.eks.amazonaws.com", "Q0E=", "eu-west-1")
    assert config["clusters"] == [
        {
            "name": "mlops",
            "cluster": {
                "server": "https://x.eks.amazonaws.com",
                "certificate-authority-data": "Q0E=",
            },
        }
    ]
    assert config["current-context"] == "mlops"
    assert config["contexts"] == [
        {"name": "mlops", "context": {"cluster": "mlops", "user": "mlops"}}
    ]
    assert config["users"] == [
        {
            "name": "mlops",
            "user": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": "aws",
                    "args": [
                        "--region",
                        "eu-west-1",
                        "eks",
                        "get-token",
                        "--cluster-name",
                        "mlops",
                        "--output",
                        "json",
                    ],
                    "interactiveMode": "Never",
                }
            },
        }
    ]


def test_gke_kubeconfig_uses_the_auth_plugin():
    config = model.gke_kubeconfig("mlops", "10.0.0.2", "Q0E=")
    assert config["clusters"][0]["cluster"] == {
        "server": "https://10.0.0.2",
        "certificate-authority-data": "Q0E=",
    }
    assert config["users"][0]["user"]["exec"] == {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "gke-gcloud-auth-plugin",
        "provideClusterInfo": True,
        "interactiveMode": "Never",
        "installHint": "gcloud components install gke-gcloud-auth-plugin",
    }


def test_workload_pool():
    assert model.workload_pool("acme-ml") == "acme-ml.svc.id.goog"


def test_readme_examples_validate():
    root = Path(__file__).resolve().parents[2] / "mlops_platform" / "components"
    checked = []
    for readme in (root / "cluster" / "README.md", root / "gpu" / "README.md"):
        for block in re.findall(r"```yaml\n(.*?)```", readme.read_text(), re.S):
            document = yaml.safe_load(block)
            values = document.get("config", document)
            if "mlops:cloud" in values:
                TypeAdapter(Cloud).validate_python(values["mlops:cloud"])
            if "mlops:cluster" in values:
                ClusterConfig.model_validate(values["mlops:cluster"])
            if "mlops:gpu_pools" in values:
                TypeAdapter(GpuPools).validate_python(values["mlops:gpu_pools"])
            checked += sorted(values)
    assert checked == ["mlops:cloud", "mlops:cluster", "mlops:protect_stateful", "mlops:gpu_pools"]


def test_autoscaler_policy_writes_only_this_clusters_groups():
    policy = model.autoscaler_policy("mlops-prod")
    reads, writes = policy["Statement"]
    assert reads["Resource"] == "*"
    assert all(":Describe" in a or ":Get" in a for a in reads["Action"])
    assert writes == {
        "Effect": "Allow",
        "Action": [
            "autoscaling:SetDesiredCapacity",
            "autoscaling:TerminateInstanceInAutoScalingGroup",
        ],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "aws:ResourceTag/k8s.io/cluster-autoscaler/mlops-prod": "owned",
                "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
            }
        },
    }


def test_autoscaler_values():
    assert model.autoscaler_values("mlops-prod", "eu-west-1", "arn:aws:iam::1:role/ca") == {
        "cloudProvider": "aws",
        "awsRegion": "eu-west-1",
        "autoDiscovery": {"clusterName": "mlops-prod"},
        "rbac": {
            "serviceAccount": {
                "name": "cluster-autoscaler",
                "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/ca"},
            }
        },
        "extraArgs": {"balance-similar-node-groups": True, "expander": "least-waste"},
        "nodeSelector": {"mlops.dev/node-pool": "system"},
        "resources": {
            "requests": {"cpu": "100m", "memory": "300Mi"},
            "limits": {"memory": "600Mi"},
        },
    }


# The autoscaler's minor version must equal the cluster's; bumping one without the other fails.
AUTOSCALER_APP_MINOR = {"9.59.0": "1.35"}


def test_autoscaler_chart_matches_the_kubernetes_minor():
    assert AUTOSCALER_APP_MINOR[CLUSTER_AUTOSCALER.version] == KUBERNETES_VERSION


# --- EKS prerequisites ------------------------------------------------------------------------


def test_eks_addons_pinned_for_the_cluster_minor():
    specs = {spec.name: spec for spec in model.eks_addon_specs(KUBERNETES_VERSION)}
    assert list(specs) == ["vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"]
    assert {name: spec.version for name, spec in specs.items()} == EKS_ADDON_VERSIONS
    assert [name for name, spec in specs.items() if spec.needs_nodes] == [
        "coredns",
        "aws-ebs-csi-driver",
    ]
    assert [name for name, spec in specs.items() if spec.service_account] == ["aws-ebs-csi-driver"]
    assert specs["aws-ebs-csi-driver"].service_account == "ebs-csi-controller-sa"
    # kube-proxy must run the cluster's minor; every pin is an EKS add-on version string
    assert EKS_ADDON_VERSIONS["kube-proxy"].startswith(f"v{KUBERNETES_VERSION}.")
    for version in EKS_ADDON_VERSIONS.values():
        assert re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", version), version
    assert model.eks_addon_inputs(specs["coredns"]) == {
        "addon_name": "coredns",
        "addon_version": EKS_ADDON_VERSIONS["coredns"],
        "resolve_conflicts_on_create": "OVERWRITE",
        "resolve_conflicts_on_update": "OVERWRITE",
    }


def test_eks_addons_for_an_unpinned_minor_is_an_error():
    with pytest.raises(ValueError) as info:
        model.eks_addon_specs("1.34")
    assert str(info.value) == (
        f"cluster.kubernetes_version: 1.34 has no pinned EKS add-on versions "
        f"(mlops_platform/components/versions.py EKS_ADDON_VERSIONS is for {KUBERNETES_VERSION}); "
        "pin the add-ons for it in the same change"
    )


@pytest.mark.parametrize(
    ("key", "parameters"),
    [
        (
            None,
            {
                "type": "gp3",
                "encrypted": "true",
                "csi.storage.k8s.io/fstype": "ext4",
                "tagSpecification_1": "kubernetes.io/cluster/mlops-prod=owned",
            },
        ),
        (
            "arn:aws:kms:eu-west-1:123456789012:key/abcd",
            {
                "type": "gp3",
                "encrypted": "true",
                "csi.storage.k8s.io/fstype": "ext4",
                "tagSpecification_1": "kubernetes.io/cluster/mlops-prod=owned",
                "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/abcd",
            },
        ),
    ],
)
def test_gp3_storage_class(key, parameters):
    storage_class = model.gp3_storage_class("mlops-prod", key)
    assert storage_class["metadata"] == {
        "name": "gp3",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    }
    assert storage_class["provisioner"] == "ebs.csi.aws.com"
    assert storage_class["parameters"] == parameters
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    assert storage_class["allowVolumeExpansion"] is True
    assert storage_class["reclaimPolicy"] == "Delete"


def test_gp2_patch_clears_the_default_and_keeps_the_provisioner():
    patch = model.gp2_not_default_patch()
    assert patch["metadata"]["name"] == "gp2"
    assert patch["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "false",
        "pulumi.com/patchForce": "true",
    }
    assert patch["provisioner"] == "kubernetes.io/aws-ebs"


def test_ebs_csi_kms_policy_is_scoped_to_the_key_and_to_aws_resources():
    key = "arn:aws:kms:eu-west-1:123456789012:key/abcd"
    grants, use = model.ebs_csi_kms_policy(key)["Statement"]
    assert grants == {
        "Effect": "Allow",
        "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
        "Resource": key,
        "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
    }
    assert use["Resource"] == key
    assert "kms:Decrypt" in use["Action"] and "kms:GenerateDataKey*" in use["Action"]
