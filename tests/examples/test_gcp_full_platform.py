"""examples/gcp-full-platform under mocks: its three layers, run in deploy order, create the
whole platform on GCP from scratch, exactly what the project's own program creates from the
same config as a stack file."""

import json
from collections import Counter

import pytest
from example_support import module_of, project_file, readme_config_keys, run_example, single

from mlops_platform import handoff, mocks, plan
from mlops_platform.components.versions import FLAGGER, FLAGGER_LOADTESTER
from mlops_platform.wiring import LAYERS

EXAMPLE = "gcp-full-platform"
STACK = "example"
CONFIG = {"gcp:project": "acme-ml", "gcp:region": "europe-west4"}


@pytest.fixture(scope="module")
def layers() -> dict[str, mocks.RecordingMonitor]:
    exported: dict[str, mocks.Exports] = {}
    monitors = {}
    for layer in LAYERS:
        monitor, _ = run_example(EXAMPLE, CONFIG, program_dir=layer, stack=STACK, stacks=exported)
        exported[handoff.reference_name(mocks.ORGANIZATION, layer, STACK)] = monitor.exports
        monitors[layer] = monitor
    return monitors


def test_each_layer_is_a_project_of_the_platform():
    for layer in LAYERS:
        project = project_file(f"{EXAMPLE}/{layer}")
        assert project["name"] == handoff.project_of(layer)
        assert project["main"] == "../"
        assert project["stackConfigDir"] == "../"
        assert project["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}


def test_same_resources_as_the_projects_own_program(layers):
    """The example is the project's composition: the same config as a stack file, run through
    `mlops_platform.program.main` layer by layer, registers the same resources."""
    values = module_of(EXAMPLE).platform_config(CONFIG["gcp:project"], CONFIG["gcp:region"])
    engine_config = {f"mlops:{key}": json.dumps(value) for key, value in values.items()}
    for layer, monitor in plan.run_layers(STACK, engine_config):
        ours = Counter((r.type, r.name) for r in layers[layer].recorded)
        assert ours == Counter((r.type, r.name) for r in monitor.recorded), layer


def test_everything_on_gcp_nothing_on_aws_nor_a_local_context(layers):
    for monitor in layers.values():
        assert not [r.name for r in monitor.recorded if r.type.startswith("aws:")]
        for provider in monitor.of_type("pulumi:providers:kubernetes"):
            assert "context" not in provider.inputs, provider.name
        for provider in monitor.of_type("pulumi:providers:gcp"):
            assert provider.inputs["project"] == "acme-ml"
            assert provider.inputs["region"] == "europe-west4"


def test_infra_builds_network_cluster_gpu_pool_and_buckets(layers):
    infra = layers["infra"]
    for typ in (
        "gcp:compute/network:Network",
        "gcp:compute/subnetwork:Subnetwork",
        "gcp:compute/router:Router",
        "gcp:compute/routerNat:RouterNat",
    ):
        single(infra, typ)
    cluster = single(infra, "gcp:container/cluster:Cluster")
    assert cluster.inputs["name"] == "ml"
    assert cluster.inputs["location"] == "europe-west4"
    assert cluster.inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert cluster.inputs["workloadIdentityConfig"] == {"workloadPool": "acme-ml.svc.id.goog"}
    pools = {
        r.name: r.inputs
        for r in infra.of_type("gcp:container/nodePool:NodePool")
        if r.inputs.get("nodeConfig", {}).get("guestAccelerators")
    }
    assert len(pools) == 1
    (gpu,) = pools.values()
    assert gpu["nodeConfig"]["machineType"] == "g2-standard-8"
    assert gpu["nodeConfig"]["guestAccelerators"][0]["type"] == "nvidia-l4"
    assert gpu["autoscaling"]["totalMinNodeCount"] == 0
    buckets = {r.inputs["name"] for r in infra.of_type("gcp:storage/bucket:Bucket")}
    assert buckets == {"acme-ml-ml-artifacts", "acme-ml-ml-datasets", "acme-ml-ml-features"}


def test_platform_installs_mesh_monitoring_flagger_and_pipelines(layers):
    platform = layers["platform"]
    components = {r.type for r in platform.recorded if not r.custom}
    assert {
        "mlops:mesh:IstioMesh",
        "mlops:monitoring:Observability",
        "mlops:delivery:ProgressiveDelivery",
        "mlops:pipelines:KubeflowPipelines",
    } <= components
    charts = {r.inputs["chart"] for r in platform.of_type("kubernetes:helm.sh/v3:Release")}
    assert {"base", "istiod", "cni", "kube-prometheus-stack"} <= charts
    assert {FLAGGER.chart, FLAGGER_LOADTESTER.chart} <= charts


def test_ml_layer_runs_the_services_on_managed_gcp_backends(layers):
    ml = layers["ml"]
    database = single(ml, "gcp:sql/databaseInstance:DatabaseInstance")
    assert database.inputs["project"] == "acme-ml"
    assert database.inputs["settings"]["ipConfiguration"]["ipv4Enabled"] is False
    single(ml, "gcp:managedkafka/cluster:Cluster")
    single(ml, "gcp:redis/instance:Instance")
    canary = single(ml, "kubernetes:flagger.app/v1beta1:Canary")
    assert canary.inputs["metadata"]["name"] == "churn"
    assert ml.exports.values["serving"]["churn"]["url"] == (
        "http://churn.serving.svc.cluster.local:8080"
    )
    assert "mlflow" in ml.exports.secret_names  # the admin password is in it


def test_a_project_that_is_not_a_layer_is_refused():
    with pytest.raises(Exception, match="is not a layer"):
        run_example(EXAMPLE, CONFIG, program_dir="infra", stack=STACK, project="team-platform")


def test_readme_lists_the_config_keys():
    assert readme_config_keys(EXAMPLE) == set(CONFIG)
