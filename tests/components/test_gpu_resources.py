"""GpuNodePools under mocks: node groups / node pools per cloud and the device plugin release."""

import pytest
from component_support import named, untranslated_keys

from mlops_platform import mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.cluster import (
    ClusterConfig,
    KubernetesCluster,
    KubernetesClusterArgs,
)
from mlops_platform.components.gpu import (
    EksGpuPoolConfig,
    ExistingGpuNodesConfig,
    GkeGpuPoolConfig,
    GpuNodePools,
    GpuNodePoolsArgs,
)
from mlops_platform.components.network import Network
from mlops_platform.components.versions import NVIDIA_DEVICE_PLUGIN

# maps whose keys the user chooses (labels, tags, Helm values): not provider property names
AWS = AwsCloud(type="aws", region="us-east-1", tags={"owner": "ml-platform"})
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4")
LOCAL = LocalCloud(type="local")

AWS_POOLS = {
    "a10g": EksGpuPoolConfig(
        instance_type="g5.2xlarge",
        spot=True,
        max_size=3,
        zones=["us-east-1b"],
        labels={"team": "cv"},
    ),
    "h100": EksGpuPoolConfig(instance_type="p5.48xlarge", min_size=1, max_size=2),
}
GCP_POOLS = {
    "l4": GkeGpuPoolConfig(
        machine_type="g2-standard-8",
        accelerator="nvidia-l4",
        spot=True,
        max_size=4,
        zones=["europe-west4-a", "europe-west4-b"],
    ),
}


def _run(cloud, pools):
    resolved: dict = {}

    def program():
        cluster = KubernetesCluster(
            "core",
            KubernetesClusterArgs(cloud=cloud, config=ClusterConfig(name="mlops-prod")),
        )
        gpus = GpuNodePools(
            "gpu",
            GpuNodePoolsArgs(
                cloud=cloud,
                pools=pools,
                kubernetes=cluster.provider,
                network=cluster.network,
                nodes=cluster.node_access,
            ),
        )
        resolved["gpus"] = gpus
        for key, pool_id in gpus.node_pools.items():
            pool_id.apply(
                lambda v, key=key: resolved.setdefault("node_pools", {}).__setitem__(key, v)
            )

    return mocks.run(program), resolved


def _children(monitor):
    return sorted(
        (r.type, r.name) for r in monitor.recorded if r.parent_type == "mlops:gpu:NodePools"
    )


@pytest.fixture(scope="module")
def aws_run():
    return _run(AWS, AWS_POOLS)


def test_aws_children(aws_run):
    monitor, resolved = aws_run
    tags = [
        "enabled",
        "mlops-prod",
        "node-template-label-mlops-dev-node-pool",
        "node-template-label-nvidia-com-gpu-present",
        "node-template-taint-nvidia-com-gpu",
    ]
    expected = [("kubernetes:helm.sh/v3:Release", "gpu-device-plugin")]
    for key in ("a10g", "h100"):
        expected += [
            ("aws:eks/nodeGroup:NodeGroup", f"gpu-{key}"),
            ("aws:ec2/launchTemplate:LaunchTemplate", f"gpu-{key}-lt"),
        ]
        expected += [("aws:autoscaling/tag:Tag", f"gpu-{key}-asg-{tag}") for tag in tags]
    expected.append(("aws:autoscaling/tag:Tag", "gpu-a10g-asg-node-template-label-team"))
    assert _children(monitor) == sorted(expected)
    assert monitor.named("gpu").type == "mlops:gpu:NodePools"
    assert resolved["node_pools"] == {"a10g": "gpu-a10g-id", "h100": "gpu-h100-id"}


def test_eks_gpu_node_group(aws_run):
    monitor, _ = aws_run
    group = named(monitor, "aws:eks/nodeGroup:NodeGroup", "gpu-a10g")
    inputs = group.inputs
    assert inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert inputs["capacityType"] == "SPOT"
    assert inputs["instanceTypes"] == ["g5.2xlarge"]
    assert inputs["scalingConfig"] == {"minSize": 0, "desiredSize": 0, "maxSize": 3}
    assert inputs["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
    ]
    assert inputs["labels"] == {
        "mlops.dev/node-pool": "a10g",
        "nvidia.com/gpu.present": "true",
        "team": "cv",
    }
    assert inputs["subnetIds"] == ["core-private-us-east-1b-id"]
    assert inputs["clusterName"] == "mlops-prod"
    assert inputs["nodeRoleArn"] == "arn:aws:role:us-east-1:123456789012:core-node-role"
    assert inputs["launchTemplate"] == {"id": "gpu-a10g-lt-id", "version": "1"}
    assert inputs["tags"] == {"owner": "ml-platform"}
    h100 = named(monitor, "aws:eks/nodeGroup:NodeGroup", "gpu-h100").inputs
    assert h100["capacityType"] == "ON_DEMAND"
    assert h100["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 2}
    assert h100["subnetIds"] == [f"core-private-us-east-1{z}-id" for z in "abc"]
    template = named(monitor, "aws:ec2/launchTemplate:LaunchTemplate", "gpu-h100-lt")
    assert template.inputs["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 100
    assert template.inputs["tagSpecifications"] == [
        {"resourceType": "instance", "tags": {"owner": "ml-platform"}},
        {"resourceType": "volume", "tags": {"owner": "ml-platform"}},
    ]


def test_eks_gpu_pool_scales_from_zero(aws_run):
    monitor, _ = aws_run
    tags = {
        r.inputs["tag"]["key"]: r.inputs["tag"]["value"]
        for r in monitor.of_type("aws:autoscaling/tag:Tag")
        if r.name.startswith("gpu-a10g-")
    }
    assert tags == {
        "k8s.io/cluster-autoscaler/enabled": "true",
        "k8s.io/cluster-autoscaler/mlops-prod": "owned",
        "k8s.io/cluster-autoscaler/node-template/label/mlops.dev/node-pool": "a10g",
        "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu.present": "true",
        "k8s.io/cluster-autoscaler/node-template/label/team": "cv",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "present:NoSchedule",
    }
    tag = named(monitor, "aws:autoscaling/tag:Tag", "gpu-a10g-asg-enabled")
    assert tag.inputs["autoscalingGroupName"].startswith("eks-gpu-a10g-")
    assert any(urn.endswith("::gpu-a10g") for urn in tag.depends_on)


def test_eks_device_plugin_release(aws_run):
    monitor, _ = aws_run
    release = monitor.named("gpu-device-plugin")
    assert release.type == "kubernetes:helm.sh/v3:Release"
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]) == (
        "nvidia-device-plugin",
        "0.20.0",
        {"repo": "https://nvidia.github.io/k8s-device-plugin"},
    )
    assert NVIDIA_DEVICE_PLUGIN.version == "0.20.0"
    assert inputs["name"] == "nvidia-device-plugin"
    assert inputs["namespace"] == "kube-system"
    assert inputs["values"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}
    ]
    terms = inputs["values"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "mlops.dev/node-pool", "operator": "In", "values": ["a10g", "h100"]}
            ]
        }
    ]
    assert release.provider.startswith(
        "urn:pulumi:test::mlops::mlops:cluster:KubernetesCluster$pulumi:providers:kubernetes::core-k8s::"
    )
    assert release.parent_name == "gpu"


def test_gke_gpu_node_pool_and_no_device_plugin():
    monitor, resolved = _run(GCP, GCP_POOLS)
    assert _children(monitor) == [("gcp:container/nodePool:NodePool", "gpu-l4")]
    assert monitor.of_type("kubernetes:helm.sh/v3:Release") == []
    pool = monitor.named("gpu-l4").inputs
    assert pool["namePrefix"] == "l4-"
    assert pool["cluster"] == "core-gke-id"
    assert pool["location"] == "europe-west4"
    assert pool["nodeLocations"] == ["europe-west4-a", "europe-west4-b"]
    assert pool["initialNodeCount"] == 0
    assert pool["autoscaling"] == {
        "totalMinNodeCount": 0,
        "totalMaxNodeCount": 4,
        "locationPolicy": "ANY",
    }
    config = pool["nodeConfig"]
    assert config["guestAccelerators"] == [
        {
            "type": "nvidia-l4",
            "count": 1,
            "gpuDriverInstallationConfig": {"gpuDriverVersion": "DEFAULT"},
        }
    ]
    assert config["spot"] is True
    assert config["machineType"] == "g2-standard-8"
    assert config["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
    ]
    assert config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
    assert config["shieldedInstanceConfig"] == {
        "enableSecureBoot": True,
        "enableIntegrityMonitoring": True,
    }
    assert config["serviceAccount"] == "mlops-prod-nodes@project.iam.gserviceaccount.com"
    assert resolved["node_pools"] == {"l4": "gpu-l4-id"}


def test_a_pool_of_another_cloud_is_refused_before_anything_is_created():
    pools = {"t4": EksGpuPoolConfig(instance_type="g4dn.xlarge")}
    with pytest.raises(ValueError) as info:
        _run(GCP, pools)
    assert str(info.value) == (
        "invalid GPU pools: gpu_pools.t4.type: 'eks' is not the gcp cluster's node type ('gke')"
    )


def test_local_deploys_only_the_device_plugin():
    monitor, resolved = _run(LOCAL, {"rtx": ExistingGpuNodesConfig()})
    assert _children(monitor) == [("kubernetes:helm.sh/v3:Release", "gpu-device-plugin")]
    values = monitor.named("gpu-device-plugin").inputs["values"]
    assert values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ][0]["matchExpressions"][0]["values"] == ["rtx"]
    assert "node_pools" not in resolved
    assert resolved["gpus"].node_pools == {}


def test_no_pools_no_device_plugin():
    monitor, _ = _run(LOCAL, {})
    assert _children(monitor) == []
    assert monitor.of_type("kubernetes:helm.sh/v3:Release") == []


def test_eks_pool_zone_outside_the_cluster_is_refused_before_any_pool_is_created():
    pools = {
        "a10g": EksGpuPoolConfig(instance_type="g5.xlarge", zones=["us-east-1f"]),
        "l4": EksGpuPoolConfig(instance_type="g6.xlarge", zones=["us-west-2a"]),
    }
    recorded = []
    original = mocks.RecordingMonitor.RegisterResource

    def spy(self, request):
        recorded.append(request.name)
        return original(self, request)

    mocks.RecordingMonitor.RegisterResource = spy
    try:
        with pytest.raises(ValueError) as info:
            _run(AWS, pools)
    finally:
        mocks.RecordingMonitor.RegisterResource = original
    assert str(info.value) == (
        "invalid GPU pools: gpu_pools.l4.zones: us-west-2a not in region us-east-1; "
        "gpu_pools.a10g.zones: us-east-1f not among the cluster's zones "
        "(us-east-1a, us-east-1b, us-east-1c)"
    )
    assert "gpu" not in recorded
    assert not [name for name in recorded if name.startswith("gpu-")]


def test_every_input_key_is_a_provider_property_aws_run(aws_run):
    monitor = aws_run[0]
    assert [(r.name, key) for r in monitor.recorded for key in untranslated_keys(r.inputs)] == []


def test_a_pool_named_system_is_refused():
    with pytest.raises(ValueError) as info:
        _run(AWS, {"system": EksGpuPoolConfig(instance_type="g6.xlarge")})
    assert str(info.value) == (
        "invalid GPU pools: gpu_pools.system: the name is reserved for the system pool"
    )


def _attach(cloud, pools, **args):
    """GpuNodePools on a fresh cluster of `cloud`, with `args` replacing its attachment."""

    def program():
        cluster = KubernetesCluster(
            "core",
            KubernetesClusterArgs(cloud=cloud, config=ClusterConfig(name="mlops-prod")),
        )
        attachment = {"network": cluster.network, "nodes": cluster.node_access, **args}
        GpuNodePools(
            "gpu",
            GpuNodePoolsArgs(cloud=cloud, pools=pools, kubernetes=cluster.provider, **attachment),
        )

    return mocks.run(program)


GKE_NETWORK = Network(
    cloud="gcp",
    network_id="projects/acme-ml/global/networks/n",
    cidr="10.0.0.0/16",
    private_subnet_ids=["projects/acme-ml/regions/europe-west4/subnetworks/s"],
    project="acme-ml",
    region="europe-west4",
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"network": None},
            "GpuNodePoolsArgs.network: the cluster's network is required on aws",
        ),
        (
            {"network": GKE_NETWORK},
            "GpuNodePoolsArgs.network: a aws network is required, got the gcp cluster's",
        ),
        ({"nodes": None}, "GpuNodePoolsArgs.nodes: the aws cluster's node access is required"),
        (
            {
                "network": Network(
                    cloud="aws",
                    network_id="vpc-1",
                    cidr="10.0.0.0/16",
                    private_subnet_ids=["subnet-a"],
                    client_security_group_ids=["sg-1"],
                )
            },
            "GpuNodePoolsArgs.network: the zones of its private subnets are required (the "
            "cluster's own network, not one read back in a later layer)",
        ),
    ],
)
def test_the_pools_take_the_clusters_network_hand_off(args, message):
    with pytest.raises(ValueError) as info:
        _attach(AWS, AWS_POOLS, **args)
    assert str(info.value) == f"invalid GPU pools: {message}"


def test_the_pools_join_the_private_subnet_of_their_zones():
    monitor = _attach(AWS, AWS_POOLS)
    subnets = {
        r.name: f"{r.name}-id"
        for r in monitor.of_type("aws:ec2/subnet:Subnet")
        if "private" in r.name
    }
    groups = {r.name: r.inputs for r in monitor.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups["gpu-a10g"]["subnetIds"] == [subnets["core-private-us-east-1b"]]
    assert groups["gpu-h100"]["subnetIds"] == sorted(subnets.values())


def test_without_pools_nothing_is_required():
    monitor = _attach(AWS, {}, network=None, nodes=None)
    assert [r.name for r in monitor.of_type("aws:eks/nodeGroup:NodeGroup")] == ["core-system"]
