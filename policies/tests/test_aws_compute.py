"""EKS clusters, node groups, launch templates and cost tags (prod and dev plans)."""

from __future__ import annotations

import json

import pytest
from crossguard import aws
from harness import (
    DELETE,
    PLAN_UNKNOWN,
    edited,
    entry,
    load_plan,
    of_type,
    resource_args,
    violations,
)

PROD = load_plan("prod")
DEV = load_plan("dev")
CLUSTER = entry(PROD, "mlops-eks")
ALL_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]


def check(policy, resource, path=None, value=None, plan=PROD, config=None) -> list[str]:
    inputs = resource["inputs"] if path is None else edited(resource["inputs"], path, value)
    return violations(policy, resource_args(plan, resource, inputs, config=config))


def test_planned_clusters_pass():
    for plan in (PROD, DEV):
        cluster = entry(plan, "mlops-eks")
        for policy in (aws.eks_private_endpoint, aws.eks_secrets_encryption):
            assert check(policy, cluster, plan=plan) == []
        assert check(aws.eks_control_plane_logs, cluster, plan=plan) == []


def test_dev_cluster_is_public_but_restricted():
    assert entry(DEV, "mlops-eks")["inputs"]["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]


@pytest.mark.parametrize("value", [True, DELETE], ids=["true", "unset-defaults-to-public"])
def test_public_endpoint_without_cidrs(value):
    assert check(aws.eks_private_endpoint, CLUSTER, "vpcConfig.endpointPublicAccess", value) == [
        "Cluster 'mlops-eks': vpcConfig.endpointPublicAccess must be false, or "
        "vpcConfig.publicAccessCidrs must list the allowed networks (unset means 0.0.0.0/0)"
    ]


@pytest.mark.parametrize(
    "open_", [["0.0.0.0/0"], ["::/0"], ["0.0.0.0/1", "128.0.0.0/1"]], ids=["v4", "v6", "halves"]
)
def test_public_endpoint_open_to_the_internet(open_):
    dev_cluster = entry(DEV, "mlops-eks")
    cidrs = ["203.0.113.0/24", *open_]
    assert check(
        aws.eks_private_endpoint, dev_cluster, "vpcConfig.publicAccessCidrs", cidrs, plan=DEV
    ) == [
        f"Cluster 'mlops-eks': vpcConfig.publicAccessCidrs {json.dumps(cidrs)} together cover "
        "every public address (open to the internet)"
    ]


def test_public_endpoint_with_a_value_that_is_no_cidr():
    dev_cluster = entry(DEV, "mlops-eks")
    cidrs = ["203.0.113.0/24", "office"]
    assert check(
        aws.eks_private_endpoint, dev_cluster, "vpcConfig.publicAccessCidrs", cidrs, plan=DEV
    ) == ["Cluster 'mlops-eks': vpcConfig.publicAccessCidrs has \"office\", which is not a CIDR"]


def test_secrets_not_encrypted():
    assert check(aws.eks_secrets_encryption, CLUSTER, "encryptionConfig.resources", []) == [
        "Cluster 'mlops-eks': encryptionConfig.resources must contain \"secrets\""
    ]


@pytest.mark.parametrize(("key", "shown"), [("", '""'), (DELETE, "unset")])
def test_secrets_key_missing(key, shown):
    assert check(aws.eks_secrets_encryption, CLUSTER, "encryptionConfig.provider.keyArn", key) == [
        f"Cluster 'mlops-eks': encryptionConfig.provider.keyArn must name a KMS key, got {shown}"
    ]


def test_no_encryption_config_at_all():
    assert check(aws.eks_secrets_encryption, CLUSTER, "encryptionConfig", DELETE) == [
        "Cluster 'mlops-eks': encryptionConfig.resources must contain \"secrets\"",
        "Cluster 'mlops-eks': encryptionConfig.provider.keyArn must name a KMS key, got unset",
    ]


def test_missing_control_plane_log_types():
    enabled = ["api", "authenticator", "scheduler"]
    assert check(aws.eks_control_plane_logs, CLUSTER, "enabledClusterLogTypes", enabled) == [
        "Cluster 'mlops-eks': enabledClusterLogTypes must include audit, controllerManager"
    ]


def test_configured_minimum_log_types():
    enabled = ["api", "audit"]
    minimum = {"requiredLogTypes": ["api", "audit"]}
    assert (
        check(
            aws.eks_control_plane_logs, CLUSTER, "enabledClusterLogTypes", enabled, config=minimum
        )
        == []
    )
    assert check(
        aws.eks_control_plane_logs, CLUSTER, "enabledClusterLogTypes", ["api"], config=minimum
    ) == ["Cluster 'mlops-eks': enabledClusterLogTypes must include audit"]
    assert aws.EKS_LOG_SETTINGS.properties["requiredLogTypes"]["default"] == ALL_LOG_TYPES


GPU_GROUP = entry(PROD, "mlops-gpu-a100", "aws:eks/nodeGroup:NodeGroup")
SYSTEM_GROUP = entry(PROD, "mlops-system", "aws:eks/nodeGroup:NodeGroup")
GPU_TAINT_MESSAGE = (
    "NodeGroup 'mlops-gpu-a100': a GPU node group (amiType \"AL2023_x86_64_NVIDIA\") needs a "
    "taint nvidia.com/gpu with effect NO_SCHEDULE in taints, so only GPU workloads land on it"
)


def test_planned_node_groups_pass():
    for name in ("mlops-system", "mlops-gpu-a100", "mlops-gpu-l4"):
        group = entry(PROD, name, "aws:eks/nodeGroup:NodeGroup")
        assert check(aws.eks_gpu_node_group_taint, group) == []


@pytest.mark.parametrize(
    "taints",
    [
        [],
        [{"key": "nvidia.com/gpu", "value": "present", "effect": "PREFER_NO_SCHEDULE"}],
        [{"key": "dedicated", "value": "gpu", "effect": "NO_SCHEDULE"}],
    ],
    ids=["none", "prefer-no-schedule", "other-key"],
)
def test_gpu_node_group_without_gpu_taint(taints):
    assert check(aws.eks_gpu_node_group_taint, GPU_GROUP, "taints", taints) == [GPU_TAINT_MESSAGE]


def test_gpu_instance_type_on_a_standard_ami_is_a_gpu_group():
    group = {
        **SYSTEM_GROUP,
        "inputs": edited(SYSTEM_GROUP["inputs"], "instanceTypes", ["g5.xlarge"]),
    }
    assert check(aws.eks_gpu_node_group_taint, group) == [
        "NodeGroup 'mlops-system': a GPU node group (amiType \"AL2023_x86_64_STANDARD\") needs a "
        "taint nvidia.com/gpu with effect NO_SCHEDULE in taints, so only GPU workloads land on it"
    ]


@pytest.mark.parametrize(
    ("ami_type", "instance_type", "gpu"),
    [
        ("AL2023_x86_64_NVIDIA", "m6i.xlarge", True),
        ("BOTTLEROCKET_ARM_64_NVIDIA", "m7g.xlarge", True),
        ("AL2_x86_64_GPU", "m6i.xlarge", True),
        ("AL2023_x86_64_STANDARD", "p4d.24xlarge", True),
        ("AL2023_ARM_64_STANDARD", "m7g.xlarge", False),
        ("AL2023_x86_64_STANDARD", "m6i.xlarge", False),
    ],
)
def test_gpu_node_group_detection(ami_type, instance_type, gpu):
    assert aws.is_gpu_node_group({"amiType": ami_type, "instanceTypes": [instance_type]}) is gpu


TEMPLATE = entry(PROD, "mlops-gpu-a100-lt")


def test_planned_launch_templates_require_imdsv2():
    for name in ("mlops-system-lt", "mlops-gpu-a100-lt", "mlops-gpu-l4-lt"):
        assert check(aws.imdsv2_required, entry(PROD, name)) == []


@pytest.mark.parametrize(
    ("path", "value", "shown"),
    [
        ("metadataOptions.httpTokens", "optional", '"optional"'),
        ("metadataOptions.httpTokens", DELETE, "unset"),
        ("metadataOptions", DELETE, "unset"),
    ],
)
def test_launch_template_without_imdsv2(path, value, shown):
    assert check(aws.imdsv2_required, TEMPLATE, path, value) == [
        "LaunchTemplate 'mlops-gpu-a100-lt': metadataOptions.httpTokens must be \"required\" "
        f"(IMDSv2 only), got {shown}"
    ]


def test_ec2_instance_is_checked_too():
    instance = {**TEMPLATE, "type": aws.EC2_INSTANCE, "name": "bastion"}
    assert check(aws.imdsv2_required, instance, "metadataOptions.httpTokens", "optional") == [
        "Instance 'bastion': metadataOptions.httpTokens must be \"required\" (IMDSv2 only), "
        'got "optional"'
    ]


ARTIFACTS = entry(PROD, "mlops-artifacts")


def test_tags_come_from_the_resource_and_the_provider_default_tags():
    # one AWS provider per layer that creates AWS resources (infra, ml), alike
    providers = of_type(PROD, "pulumi:providers:aws")
    assert [p["layer"] for p in providers] == ["infra", "ml"]
    for provider in providers:
        assert '"cost-center": "ml-platform"' in provider["inputs"]["defaultTags"]
    args = resource_args(PROD, ARTIFACTS, edited(ARTIFACTS["inputs"], "tags", {"team": "ml"}))
    assert aws.effective_tags(args) == {
        "managed-by": "mlops-platform",
        "environment": "prod",
        "cost-center": "ml-platform",
        "team": "ml",
    }
    assert violations(aws.aws_required_tags, args) == []


def test_missing_cost_tags_without_provider_defaults():
    args = resource_args(
        PROD, ARTIFACTS, edited(ARTIFACTS["inputs"], "tags", {"environment": "prod"})
    )
    args.provider = None
    assert violations(aws.aws_required_tags, args) == [
        "Bucket 'mlops-artifacts': tags (with the provider's defaultTags) must include cost-center"
    ]


def test_configured_required_tags():
    args = resource_args(PROD, ARTIFACTS, config={"requiredTags": ["environment", "owner"]})
    assert violations(aws.aws_required_tags, args) == [
        "Bucket 'mlops-artifacts': tags (with the provider's defaultTags) must include owner"
    ]


def test_untaggable_types_are_skipped():
    role_policy = next(r for r in PROD["resources"] if r["type"] == "aws:iam/rolePolicy:RolePolicy")
    assert "aws:iam/rolePolicy:RolePolicy" not in aws.TAGGABLE_TYPES
    args = resource_args(PROD, role_policy, config={"requiredTags": ["owner"]})
    assert violations(aws.aws_required_tags, args) == []
    assert {
        "aws:s3/bucket:Bucket",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:ec2/vpc:Vpc",
    } <= aws.TAGGABLE_TYPES


def test_key_arn_computed_in_preview_counts_as_set():
    # In a first preview the key ARN is another resource's output, unknown until apply.
    assert (
        check(aws.eks_secrets_encryption, CLUSTER, "encryptionConfig.provider.keyArn", PLAN_UNKNOWN)
        == []
    )
