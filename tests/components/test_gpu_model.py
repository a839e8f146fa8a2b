"""GPU node pools, pure layer: pool validation, specs and the device plugin's Helm values."""

import pytest
from pydantic import TypeAdapter, ValidationError

from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.cluster.model import NodePoolSpec, Taint
from mlops_platform.components.gpu import model
from mlops_platform.components.gpu.model import GpuPoolConfig, GpuPools

POOLS = TypeAdapter(GpuPools)
AWS = AwsCloud(type="aws", region="us-east-1")
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4")


def _error(validate, data) -> str:
    with pytest.raises(ValidationError) as info:
        validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


def test_defaults_scale_from_zero_with_the_gpu_taint():
    pool = GpuPoolConfig(instance_type="g6.xlarge")
    assert (pool.min_size, pool.max_size) == (0, 1)
    assert pool.spot is False
    assert pool.taints == [Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")]
    assert pool.ami_type == "AL2023_x86_64_NVIDIA"
    assert pool.gpu_driver_version == "DEFAULT"
    assert pool.disk_size_gib == 100


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "instance_type: Field required"),
        (
            {"instance_type": "g6.xlarge", "min_size": 3, "max_size": 2},
            ": Value error, min_size (3) must be <= max_size (2)",
        ),
        (
            {"instance_type": "g6.xlarge", "min_size": -1},
            "min_size: Input should be greater than or equal to 0",
        ),
        (
            {"instance_type": "g6.xlarge", "max_size": 0},
            "max_size: Input should be greater than or equal to 1",
        ),
        (
            {"instance_type": "g6.xlarge", "ami_type": "AL2_x86_64_GPU"},
            "ami_type: Input should be 'AL2023_x86_64_NVIDIA' or 'AL2023_ARM_64_NVIDIA'",
        ),
        (
            {"instance_type": "g6.xlarge", "gpu_driver_version": "535"},
            "gpu_driver_version: Input should be 'DEFAULT' or 'LATEST'",
        ),
        (
            {"instance_type": "g6.xlarge", "labels": {"nvidia.com/gpu.present": "false"}},
            ": Value error, label 'nvidia.com/gpu.present' is set on every GPU pool",
        ),
        (
            {"instance_type": "g6.xlarge", "labels": {"mlops.dev/node-pool": "x"}},
            ": Value error, label 'mlops.dev/node-pool' is set from the pool key and cannot be "
            "given",
        ),
        (
            {
                "instance_type": "g6.xlarge",
                "taints": [{"key": "gpu"}, {"key": "gpu", "value": "x"}],
            },
            ": Value error, taints: each key and effect may appear once",
        ),
        (
            {"instance_type": "g6.xlarge", "taints": [{"key": "gpu", "effect": "Drain"}]},
            "taints.0.effect: Input should be 'NoSchedule', 'PreferNoSchedule' or 'NoExecute'",
        ),
        (
            {"instance_type": "g6.xlarge", "accelerator_count": 0},
            "accelerator_count: Input should be greater than or equal to 1",
        ),
        ({"instance_type": "g6.xlarge", "gpus": 1}, "gpus: Extra inputs are not permitted"),
    ],
)
def test_invalid_pool_names_the_field(data, message):
    assert _error(GpuPoolConfig.model_validate, data) == message


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
    assert _error(POOLS.validate_python, {key: {"instance_type": "g6.xlarge"}}) == message
    assert list(POOLS.validate_python({"l4-spot": {"instance_type": "g6.xlarge"}})) == ["l4-spot"]


def test_pool_problems_include_bad_pool_names():
    pools = {
        "system": GpuPoolConfig(instance_type="g6.xlarge"),
        "A100": GpuPoolConfig(instance_type="p4d.24xlarge"),
        "ok": GpuPoolConfig(instance_type="g6.xlarge"),
    }
    assert model.pool_problems(pools, AWS) == [
        ("gpu_pools.system", "the name is reserved for the system pool"),
        (
            "gpu_pools.A100",
            "a pool name is 1-24 lowercase letters, digits or '-', starting with a letter",
        ),
    ]


def test_gcp_needs_an_accelerator_per_pool():
    pools = {
        "l4": GpuPoolConfig(instance_type="g2-standard-8", accelerator="nvidia-l4"),
        "t4": GpuPoolConfig(instance_type="n1-standard-8"),
    }
    assert model.pool_problems(pools, GCP) == [
        ("gpu_pools.t4.accelerator", "required on GCP (e.g. nvidia-l4, nvidia-tesla-t4)")
    ]
    assert model.pool_problems(pools, AWS) == []
    assert model.pool_problems(pools, LocalCloud(type="local")) == []


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
        (LocalCloud(type="local"), ["anything"], []),
    ],
)
def test_pool_zones_must_be_in_the_region(cloud, zones, problems):
    pools = {"g": GpuPoolConfig(instance_type="x", accelerator="nvidia-l4", zones=zones)}
    assert model.pool_problems(pools, cloud) == [("gpu_pools.g.zones", p) for p in problems]


def test_gpu_pool_spec_adds_pool_and_gpu_labels():
    pool = GpuPoolConfig(
        instance_type="g2-standard-8",
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
        ami_type="AL2023_x86_64_NVIDIA",
        accelerator="nvidia-l4",
        accelerator_count=2,
        gpu_driver_version="LATEST",
    )


def test_aws_pool_spec_has_no_guest_accelerator():
    spec = model.gpu_pool_spec("a10", GpuPoolConfig(instance_type="g5.2xlarge"))
    assert (spec.accelerator, spec.accelerator_count, spec.gpu_driver_version) == (None, 0, None)


def test_device_plugin_values_follow_the_pools():
    pools = {
        "t4": GpuPoolConfig(instance_type="g4dn.xlarge"),
        "a100": GpuPoolConfig(
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
