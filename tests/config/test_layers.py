"""The layers: each plans on its own after the ones before it, none needs a CRD it installs
itself, protected resources keep their URNs, and teardown runs the dependency graph backwards."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pulumi
import pytest

from mlops_platform import config, handoff, mocks, plan, wiring

FIXTURES = Path(__file__).parent / "fixtures"
STACKS = ["local", "dev", "staging", "prod", "prod-gcp"]


@cache
def _plan(stack: str) -> plan.Plan:
    return plan.build_plan(stack, plan.stack_file_path(stack))


def _tail(urn: str) -> str:
    """A URN without `urn:pulumi:<stack>::<project>::`: what stays when state moves between
    projects (`pulumi state move`), the type chain and the name."""
    return urn.split("::", 2)[2]


@pytest.mark.parametrize("stack", STACKS)
def test_protected_resources_keep_their_urns_or_are_aliased(stack):
    """Every resource the single-project program protected or retained is planned again with
    the same type chain and name, or with an alias to it: an upgrade never replaces one."""
    before = set(json.loads((FIXTURES / "protected_before_layers.json").read_text())[stack])
    records = _plan(stack).resources
    known = {_tail(r.urn) for r in records} | {_tail(a) for r in records for a in r.aliases}
    assert sorted(before - known) == [], "renamed without an alias: these would be replaced"
    protected_now = {_tail(r.urn) for r in records if r.protect or r.retain_on_delete}
    assert protected_now == before, "protection changed: update the fixture only on purpose"


def test_the_kubernetes_provider_of_later_layers_is_aliased_to_the_single_stack_one():
    for layer in ("platform", "ml"):
        (provider,) = [
            r
            for r in _plan("prod").resources
            if r.type == "pulumi:providers:kubernetes" and r.layer == layer
        ]
        assert [_tail(a) for a in provider.aliases] == [
            "mlops:cluster:KubernetesCluster$pulumi:providers:kubernetes::mlops-k8s"
        ]


def test_one_layer_plans_alone_from_the_exports_of_the_layers_before():
    whole = _plan("prod")
    ml = plan.build_plan("prod", plan.stack_file_path("prod"), ["ml"])
    assert ml.layers == ["ml"]
    assert {r.layer for r in ml.resources} == {"ml"}
    assert [(r.type, r.name) for r in ml.resources] == [
        (r.type, r.name) for r in whole.resources if r.layer == "ml"
    ]
    # the ml layer's RDS subnets are the infra layer's private subnets, read by reference
    infra_subnets = sorted(
        f"{r.name}-id"
        for r in whole.resources
        if r.type == "aws:ec2/subnet:Subnet" and "private" in r.name
    )
    (subnets,) = [r for r in ml.resources if r.type == "aws:rds/subnetGroup:SubnetGroup"]
    assert subnets.inputs["subnetIds"] == infra_subnets


def test_a_reference_to_a_stack_not_planned_before_names_it():
    # (the mock itself: a program aborted half-way would leave the runtime's pending outputs
    # to the next test's event loop)
    name = handoff.reference_name(mocks.ORGANIZATION, "infra", "prod")
    known = mocks.RecordingMocks({name: mocks.Exports({"cloud": "aws"}, set())})
    _, outputs = known.new_resource(
        pulumi.runtime.MockResourceArgs(typ=mocks.STACK_REFERENCE, name=name, inputs={"name": name})
    )
    assert outputs["outputs"] == {"cloud": "aws"}
    with pytest.raises(KeyError, match=r"'organization/mlops-infra/prod': no such stack"):
        mocks.RecordingMocks({}).new_resource(
            pulumi.runtime.MockResourceArgs(
                typ=mocks.STACK_REFERENCE, name=name, inputs={"name": name}
            )
        )


def test_every_layer_project_shares_the_stack_files():
    import yaml

    root = plan.project_root()
    for layer in wiring.LAYERS:
        project = yaml.safe_load((root / "deploy" / layer / "Pulumi.yaml").read_text())
        assert project["name"] == handoff.project_of(layer)
        assert (root / "deploy" / layer / project["main"]).resolve() == root
        assert (root / "deploy" / layer / project["stackConfigDir"]).resolve() == root / "stacks"


# API group of a custom resource -> the Helm chart whose release installs its CRDs.
CRD_CHARTS = {
    "monitoring.coreos.com": "kube-prometheus-stack",
    "security.istio.io": "base",
    "networking.istio.io": "base",
    "flagger.app": "flagger",
    "kafka.strimzi.io": "oci://quay.io/strimzi-helm/strimzi-kafka-operator",
}


@pytest.mark.parametrize("stack", STACKS)
def test_no_layer_needs_a_crd_that_only_its_own_release_installs(stack):
    """A `pulumi preview` of a layer on a fresh cluster fails on a custom resource whose CRD
    comes with a release of the same layer (pulumi-kubernetes #3027, #3176)."""
    resources = _plan(stack).resources
    rank = {layer: index for index, layer in enumerate(wiring.LAYERS)}
    charts = {
        r.inputs.get("chart"): r.layer
        for r in resources
        if r.type == "kubernetes:helm.sh/v3:Release"
    }
    problems = []
    for r in resources:
        group = r.type.split(":")[1].split("/")[0]
        if group not in CRD_CHARTS:
            continue
        kind = r.type.rsplit(":", 1)[1]
        chart = CRD_CHARTS[group]
        assert chart in charts, f"{r.name}: {kind} needs chart {chart}, which no layer installs"
        if rank[charts[chart]] < rank[r.layer]:
            continue
        problems.append(f"{r.layer}: {kind} {r.name} needs {chart} ({charts[chart]})")
    assert problems == []


# -- teardown ---------------------------------------------------------------------------------

PROD = config.load_stack_file(plan.stack_file_path("prod"))
LOCAL = config.load_stack_file(plan.stack_file_path("local"))
# Nodes whose Kubernetes objects make the cloud create billable things outside Pulumi's state:
# PersistentVolumes (EBS, PD) from volume claims, load balancers from Services. They must be
# deleted while the cluster and its controllers still run, so before the infra layer.
CLOUD_OBJECTS = {
    "monitoring": "Prometheus, Alertmanager and Grafana volume claims",
    "pipelines": "KFP's MySQL and artifact volume claims",
    "mesh": "the ingress gateway's LoadBalancer Service (when enabled)",
    "kafka": "Strimzi broker volume claims (local)",
    "mlflow": "the in-cluster PostgreSQL volume claim (local)",
    "feast": "the in-cluster Redis volume claim (local)",
}
# Custom resources with finalizers, and the controller that removes them: the objects go first.
FINALIZERS = {"serving:churn": "delivery"}  # Flagger's finalizer on the Canary


@pytest.mark.parametrize("platform", [PROD, LOCAL], ids=["prod", "local"])
def test_teardown_runs_the_layers_and_the_graph_backwards(platform):
    edges = wiring.graph(platform)
    order = wiring.teardown_order(edges)
    position = {node: index for index, node in enumerate(order)}
    layers = [wiring.layer_of(node) for node in order]
    assert layers == sorted(layers, key=["ml", "platform", "infra"].index)
    # every node goes before everything it waits for (its namespace, identity, CRDs, cluster)
    for node, waits in edges.items():
        for wait in waits:
            assert position[node] < position[wait], f"{node} must go before {wait}"
    # volumes and load balancers go while the cluster runs, and before the network
    for node in CLOUD_OBJECTS:
        if node in position:
            assert position[node] < position["storage"] < position["cluster"]
    # a namespace goes after everything in it: no object is left to hold its deletion
    for node, waits in edges.items():
        for wait in waits:
            if wait.startswith("namespace:"):
                assert position[node] < position[wait]


def test_custom_resources_with_finalizers_go_before_their_controller():
    order = wiring.teardown_order(wiring.graph(PROD))
    for node, controller in FINALIZERS.items():
        assert order.index(node) < order.index(controller)


def test_prod_keeps_its_data_when_destroyed():
    """In prod every stateful resource is protected (a destroy stops before it) and retained
    (removed from the state, kept in the cloud) once a person unprotects it."""
    resources = _plan("prod").resources
    stateful = [
        r
        for r in resources
        if r.type
        in {
            "aws:s3/bucket:Bucket",
            "aws:rds/instance:Instance",
            "aws:msk/cluster:Cluster",
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "aws:kms/key:Key",
        }
    ]
    assert len(stateful) >= 9
    assert [r.name for r in stateful if not (r.protect and r.retain_on_delete)] == []


def test_the_teardown_order_is_documented():
    readme = (plan.project_root() / "README.md").read_text()
    for layer in ("deploy/ml", "deploy/platform", "deploy/infra"):
        assert f"pulumi -C {layer} destroy" in readme
    # the check for what Kubernetes made runs between the platform and the infra layer
    steps = [
        readme.index("pulumi -C deploy/platform destroy"),
        readme.index("mlops teardown-check --stack"),
        readme.index("pulumi -C deploy/infra destroy"),
    ]
    assert steps == sorted(steps)
