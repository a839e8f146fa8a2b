"""GPU node pools, pure layer: pool validation, specs and the device plugin's Helm values."""

import pytest
from pydantic import TypeAdapter, ValidationError

from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.cluster.model import NodePoolSpec, Taint
from mlops_platform.components.gpu import model
from mlops_platform.components.gpu.model import (
    EksGpuPoolConfig,
    ExistingGpuNodesConfig,
    GkeGpuPoolConfig,
    GpuPoolConfig,
    GpuPools,
)

POOLS = TypeAdapter(GpuPools)
POOL = TypeAdapter(GpuPoolConfig)
AWS = AwsCloud(type="aws", region="us-east-1")
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4")


def _error(validate, data) -> str:
    with pytest.raises(ValidationError) as info:
        validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


def test_defaults_scale_from_zero_with_the_gpu_taint():
    eks = EksGpuPoolConfig(instance_type="g6.xlarge")
    gke = GkeGpuPoolConfig(machine_type="g2-standard-8", accelerator="nvidia-l4")
    for pool in (eks, gke):
        assert (pool.min_size, pool.max_size) == (0, 1)
        assert pool.spot is False
        assert pool.taints == [Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")]
        assert pool.disk_size_gib == 100
    assert eks.ami_type == "AL2023_x86_64_NVIDIA"
    assert (gke.accelerator_count, gke.gpu_driver_version) == (1, "DEFAULT")
    assert ExistingGpuNodesConfig().taints == eks.taints


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"type": "eks", "instance_type": "g6.xlarge"}, EksGpuPoolConfig),
        (
            {"type": "gke", "machine_type": "g2-standard-8", "accelerator": "nvidia-l4"},
            GkeGpuPoolConfig,
        ),
        ({"type": "existing"}, ExistingGpuNodesConfig),
    ],
)
def test_the_type_picks_the_block(data, kind):
    assert type(POOL.validate_python(data)) is kind


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "eks"}, "eks.instance_type: Field required"),
        ({"type": "gke", "machine_type": "g2-standard-8"}, "gke.accelerator: Field required"),
        ({}, ": Unable to extract tag using discriminator 'type'"),
        (
            {"type": "eks", "instance_type": "g6.xlarge", "min_size": 3, "max_size": 2},
            "eks: Value error, min_size (3) must be <= max_size (2)",
        ),
        (
            {"type": "eks", "instance_type": "g6.xlarge", "min_size": -1},
            "eks.min_size: Input should be greater than or equal to 0",
        ),
        (
            {"type": "eks", "instance_type": "g6.xlarge", "max_size": 0},
            "eks.max_size: Input should be greater than or equal to 1",
        ),
        (
            {"type": "eks", "instance_type": "g6.xlarge", "ami_type": "AL2_x86_64_GPU"},
            "eks.ami_type: Input should be 'AL2023_x86_64_NVIDIA' or 'AL2023_ARM_64_NVIDIA'",
        ),
        (
            {
                "type": "gke",
                "machine_type": "g2-standard-8",
                "accelerator": "nvidia-l4",
                "gpu_driver_version": "535",
            },
            "gke.gpu_driver_version: Input should be 'DEFAULT' or 'LATEST'",
        ),
        (
            {
                "type": "eks",
                "instance_type": "g6.xlarge",
                "labels": {"nvidia.com/gpu.present": "false"},
            },
            "eks: Value error, label 'nvidia.com/gpu.present' is set on every GPU pool",
        ),
        (
            {"type": "eks", "instance_type": "g6.xlarge", "labels": {"mlops.dev/node-pool": "x"}},
            "eks: Value error, label 'mlops.dev/node-pool' is set from the pool key and cannot "
            "be given",
        ),
        (
            {
                "type": "eks",
                "instance_type": "g6.xlarge",
                "taints": [{"key": "gpu"}, {"key": "gpu", "value": "x"}],
            },
            "eks: Value error, taints: each key and effect may appear once",
        ),
        (
            {"type": "existing", "taints": [{"key": "gpu"}, {"key": "gpu", "value": "x"}]},
            "existing: Value error, taints: each key and effect may appear once",
        ),
        (
            {
                "type": "eks",
                "instance_type": "g6.xlarge",
                "taints": [{"key": "gpu", "effect": "Drain"}],
            },
            "eks.taints.0.effect: Input should be 'NoSchedule', 'PreferNoSchedule' or 'NoExecute'",
        ),
        (
            {
                "type": "gke",
                "machine_type": "g2-standard-8",
                "accelerator": "nvidia-l4",
                "accelerator_count": 0,
            },
            "gke.accelerator_count: Input should be greater than or equal to 1",
        ),
        # a setting of the other cloud's block is refused, not ignored
        (
            {"type": "eks", "instance_type": "g6.xlarge", "accelerator": "nvidia-l4"},
            "eks.accelerator: Extra inputs are not permitted",
        ),
        (
            {
                "type": "gke",
                "machine_type": "g2-standard-8",
                "accelerator": "nvidia-l4",
                "ami_type": "AL2023_x86_64_NVIDIA",
            },
            "gke.ami_type: Extra inputs are not permitted",
        ),
        ({"type": "existing", "min_size": 1}, "existing.min_size: Extra inputs are not permitted"),
    ],
)
def test_invalid_pool_names_the_field(data, message):
    assert _error(POOL.validate_python, data) == message


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("system", ": Value error, gpu_pools.system: the name is reserved for the system pool"),
        (
            "A100",
            ": Value error, gpu_pools.A100: a pool name is 1-24 lowercase letters, digits or '-', "
            "starting with a letter",
        ),
        (
            "a" * 25,
            f": Value error, gpu_pools.{'a' * 25}: a pool name is 1-24 lowercase letters, digits "
            "or '-', starting with a letter",
        ),
    ],
)
def test_pool_keys(key, message):
    eks = {"type": "eks", "instance_type": "g6.xlarge"}
    assert _error(POOLS.validate_python, {key: eks}) == message
    assert list(POOLS.validate_python({"l4-spot": eks})) == ["l4-spot"]


def test_pool_problems_include_bad_pool_names():
    pools = {
        "system": EksGpuPoolConfig(instance_type="g6.xlarge"),
        "A100": EksGpuPoolConfig(instance_type="p4d.24xlarge"),
        "ok": EksGpuPoolConfig(instance_type="g6.xlarge"),
    }
    assert model.pool_problems(pools, AWS) == [
        ("gpu_pools.system", "the name is reserved for the system pool"),
        (
            "gpu_pools.A100",
            "a pool name is 1-24 lowercase letters, digits or '-', starting with a letter",
        ),
    ]


def test_a_pool_of_another_clouds_type_is_refused_by_the_component_check():
    """The root config fills the type in from the cloud; a component used on its own (an
    example, a program of one's own) is checked against the cloud it is given."""
    l4 = GkeGpuPoolConfig(machine_type="g2-standard-8", accelerator="nvidia-l4")
    a10 = EksGpuPoolConfig(instance_type="g5.xlarge")
    pools = {"l4": l4, "a10": a10, "rtx": ExistingGpuNodesConfig()}
    assert model.pool_problems(pools, GCP) == [
        ("gpu_pools.a10.type", "'eks' is not the gcp cluster's node type ('gke')"),
        ("gpu_pools.rtx.type", "'existing' is not the gcp cluster's node type ('gke')"),
    ]
    assert model.pool_problems(pools, AWS) == [
        ("gpu_pools.l4.type", "'gke' is not the aws cluster's node type ('eks')"),
        ("gpu_pools.rtx.type", "'existing' is not the aws cluster's node type ('eks')"),
    ]
    assert [path for path, _ in model.pool_problems(pools, LocalCloud(type="local"))] == [
        "gpu_pools.l4.type",
        "gpu_pools.a10.type",
    ]


@pytest.mark.parametrize(
    ("cloud", "zones", "problems"),
    [
        (AWS, ["us-east-1a", "us-east-1f"], []),
        (AWS, ["us-east-1-a", "us-west-2a"], ["us-east-1-a, us-west-2a not in region us-east-1"]),
        (GCP, ["europe-west4-a"], []),
        (
            GCP,
            ["europe-west4a", "us-central1-a"],
            ["europe-west4a, us-central1-a not in region europe-west4"],
        ),
    ],
)
def test_pool_zones_must_be_in_the_region(cloud, zones, problems):
    pool = (
        EksGpuPoolConfig(instance_type="x", zones=zones)
        if cloud.type == "aws"
        else GkeGpuPoolConfig(machine_type="x", accelerator="nvidia-l4", zones=zones)
    )
    pools = {"g": pool}
    assert model.pool_problems(pools, cloud) == [("gpu_pools.g.zones", p) for p in problems]


def test_gpu_pool_spec_adds_pool_and_gpu_labels():
    pool = GkeGpuPoolConfig(
        machine_type="g2-standard-8",
        accelerator="nvidia-l4",
        accelerator_count=2,
        spot=True,
        min_size=0,
        max_size=4,
        labels={"team": "vision"},
        zones=["europe-west4-a"],
        gpu_driver_version="LATEST",
    )
    assert model.gpu_pool_spec("l4", pool) == NodePoolSpec(
        key="l4",
        instance_type="g2-standard-8",
        min_size=0,
        max_size=4,
        disk_size_gib=100,
        spot=True,
        labels={"team": "vision", "mlops.dev/node-pool": "l4", "nvidia.com/gpu.present": "true"},
        taints=(Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule"),),
        zones=("europe-west4-a",),
        accelerator="nvidia-l4",
        accelerator_count=2,
        gpu_driver_version="LATEST",
    )


def test_aws_pool_spec_has_no_guest_accelerator():
    spec = model.gpu_pool_spec("a10", EksGpuPoolConfig(instance_type="g5.2xlarge"))
    assert (spec.accelerator, spec.accelerator_count, spec.gpu_driver_version) == (None, 0, None)
    assert (spec.instance_type, spec.ami_type) == ("g5.2xlarge", "AL2023_x86_64_NVIDIA")


def test_device_plugin_values_follow_the_pools():
    pools = {
        "t4": ExistingGpuNodesConfig(),
        "a100": EksGpuPoolConfig(
            instance_type="p4d.24xlarge",
            taints=[
                {"key": "nvidia.com/gpu", "value": "present"},
                {"key": "dedicated", "value": "training", "effect": "NoExecute"},
            ],
        ),
    }
    assert model.device_plugin_values(pools) == {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "mlops.dev/node-pool",
                                    "operator": "In",
                                    "values": ["a100", "t4"],
                                }
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "training", "effect": "NoExecute"},
            {
                "key": "nvidia.com/gpu",
                "operator": "Equal",
                "value": "present",
                "effect": "NoSchedule",
            },
        ],
        "priorityClassName": "system-node-critical",
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "gfd": {"enabled": False},
    }
