"""GCS buckets, GKE cluster and GPU node pools (prod-gcp plan)."""

from __future__ import annotations

import pytest
from crossguard import gcp
from harness import DELETE, PLAN_UNKNOWN, edited, entry, load_plan, resource_args, violations
from pulumi_policy.proxy import UnknownValueError

PLAN = load_plan("prod-gcp")
BUCKET = entry(PLAN, "mlops-artifacts", gcp.GCS_BUCKET)
CLUSTER = entry(PLAN, "mlops-gke")
GPU_POOL = entry(PLAN, "mlops-gpu-l4", gcp.GKE_NODE_POOL)


def check(policy, resource, path=None, value=None) -> list[str]:
    inputs = resource["inputs"] if path is None else edited(resource["inputs"], path, value)
    return violations(policy, resource_args(PLAN, resource, inputs))


def test_planned_gcp_resources_pass():
    for bucket in [r for r in PLAN["resources"] if r["type"] == gcp.GCS_BUCKET]:
        assert check(gcp.gcs_bucket_hardening, bucket) == []
    assert check(gcp.gke_cluster_hardening, CLUSTER) == []
    for pool in [r for r in PLAN["resources"] if r["type"] == gcp.GKE_NODE_POOL]:
        assert check(gcp.gke_gpu_node_pool_taint, pool) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("uniformBucketLevelAccess", False, "uniformBucketLevelAccess must be true, got false"),
        ("uniformBucketLevelAccess", DELETE, "uniformBucketLevelAccess must be true, got unset"),
        (
            "publicAccessPrevention",
            "inherited",
            'publicAccessPrevention must be "enforced", got "inherited"',
        ),
        ("publicAccessPrevention", DELETE, 'publicAccessPrevention must be "enforced", got unset'),
        ("versioning.enabled", False, "versioning.enabled must be true, got false"),
        ("versioning", DELETE, "versioning.enabled must be true, got unset"),
    ],
)
def test_gcs_bucket(path, value, message):
    assert check(gcp.gcs_bucket_hardening, BUCKET, path, value) == [
        f"Bucket 'mlops-artifacts': {message}"
    ]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "privateClusterConfig.enablePrivateNodes",
            False,
            "privateClusterConfig.enablePrivateNodes must be true, got false",
        ),
        (
            "privateClusterConfig",
            DELETE,
            "privateClusterConfig.enablePrivateNodes must be true, got unset",
        ),
        (
            "workloadIdentityConfig",
            DELETE,
            "workloadIdentityConfig.workloadPool must be set (<project>.svc.id.goog), got unset",
        ),
        (
            "workloadIdentityConfig.workloadPool",
            "",
            'workloadIdentityConfig.workloadPool must be set (<project>.svc.id.goog), got ""',
        ),
        ("enableShieldedNodes", False, "enableShieldedNodes must be true, got false"),
        (
            "releaseChannel",
            DELETE,
            "releaseChannel.channel must be RAPID, REGULAR, STABLE or EXTENDED, got unset",
        ),
        (
            "releaseChannel.channel",
            "UNSPECIFIED",
            'releaseChannel.channel must be RAPID, REGULAR, STABLE or EXTENDED, got "UNSPECIFIED"',
        ),
        ("enableLegacyAbac", True, "enableLegacyAbac must be false, got true"),
        (
            "masterAuth.clientCertificateConfig.issueClientCertificate",
            True,
            "masterAuth.clientCertificateConfig.issueClientCertificate must be false, got true",
        ),
    ],
)
def test_gke_cluster(path, value, message):
    assert check(gcp.gke_cluster_hardening, CLUSTER, path, value) == [
        f"Cluster 'mlops-gke': {message}"
    ]


def test_gke_defaults_that_are_already_secure_pass_when_unset():
    # GKE defaults: shielded nodes on, legacy ABAC off, no client certificate.
    inputs = CLUSTER["inputs"]
    for path in ("enableShieldedNodes", "enableLegacyAbac", "masterAuth"):
        inputs = edited(inputs, path, DELETE)
    assert violations(gcp.gke_cluster_hardening, resource_args(PLAN, CLUSTER, inputs)) == []


@pytest.mark.parametrize(
    "taints",
    [[], [{"key": "nvidia.com/gpu", "value": "present", "effect": "PREFER_NO_SCHEDULE"}]],
    ids=["none", "prefer-no-schedule"],
)
def test_gpu_pool_without_taint(taints):
    assert check(gcp.gke_gpu_node_pool_taint, GPU_POOL, "nodeConfig.taints", taints) == [
        "NodePool 'mlops-gpu-l4': a pool with guest accelerators (nvidia-l4) needs a taint "
        "nvidia.com/gpu with effect NO_SCHEDULE in nodeConfig.taints"
    ]


def test_pool_without_accelerators_needs_no_taint():
    inputs = edited(GPU_POOL["inputs"], "nodeConfig.guestAccelerators", [])
    inputs = edited(inputs, "nodeConfig.taints", [])
    assert violations(gcp.gke_gpu_node_pool_taint, resource_args(PLAN, GPU_POOL, inputs)) == []


def test_workload_pool_computed_in_preview_counts_as_set():
    path = "workloadIdentityConfig.workloadPool"
    assert check(gcp.gke_cluster_hardening, CLUSTER, path, PLAN_UNKNOWN) == []


def test_unknown_value_a_policy_needs_defers_it_to_the_update():
    with pytest.raises(UnknownValueError):
        check(gcp.gcs_bucket_hardening, BUCKET, "publicAccessPrevention", PLAN_UNKNOWN)
