"""Every shipped stack: nothing it plans relies on a capability (StorageClass, volume driver,
metrics API, CRD) that nothing in the stack, or the cluster as it comes, provides.

The check is a pure function over planned resources, so the same test holds when the program is
split into layered stacks: pass the union of the layers' resources.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi_kubernetes as k8s
import pytest

from mlops_platform import config, mocks, plan
from mlops_platform.components.capabilities import catalog
from mlops_platform.components.capabilities.model import (
    METRICS_API,
    api,
    needed,
    provided,
    storage_class,
)
from mlops_platform.components.capabilities.plan import plan_inventory, resource_inventory, unmet
from mlops_platform.components.metrics_server import (
    MetricsServer,
    MetricsServerArgs,
    decide,
    hpa_sources,
)

STACKS = sorted(Path(__file__).resolve().parents[2].joinpath("stacks").glob("Pulumi.*.yaml"))
STACK_NAMES = [p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS]


@dataclass(frozen=True)
class Stack:
    platform: config.PlatformConfig
    resources: list[dict[str, Any]]
    existing: catalog.ClusterBaseline | None
    decision: Any


@pytest.fixture(scope="module", params=STACKS, ids=STACK_NAMES)
def stack(request):
    path = request.param
    name = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    platform = config.load_stack_file(path)
    resources = [r.as_json() for r in plan.build_plan(name, path).resources]
    existing = catalog.existing_cluster(platform.cloud, platform.cluster.kubernetes_version)
    decision = decide(
        platform.cloud,
        platform.cluster.kubernetes_version,
        hpa_sources(platform.serving, platform.mesh),
    )
    return Stack(platform, resources, existing, decision)


def _metrics_server_resources(decision) -> list[dict]:
    """What `MetricsServer` registers, as planned resources (the lead wires it into a layer)."""

    def program():
        provider = k8s.Provider("cluster", context="plan")
        MetricsServer("mlops-metrics-server", MetricsServerArgs(decision, provider))

    monitor = mocks.run(program)
    return [{"type": r.type, "name": r.name, "inputs": r.inputs} for r in monitor.recorded]


def test_every_need_is_provided_once_metrics_server_is_where_decided(stack):
    resources, existing, decision = stack.resources, stack.existing, stack.decision
    extra = _metrics_server_resources(decision) if decision.install else []
    assert [str(problem) for problem in unmet([*resources, *extra], existing)] == []


def test_the_metrics_server_decision_matches_the_plan(stack):
    """Installed exactly where the plan has an HPA (or a chart's) and the cluster lacks the API."""
    resources, existing, decision = stack.resources, stack.existing, stack.decision
    installed = any(
        r["type"] == "kubernetes:helm.sh/v3:Release"
        and r["inputs"].get("chart") == "metrics-server"
        for r in resources
    )
    assert installed == decision.install, decision.reason
    inventory = plan_inventory(resources, existing)
    needs_metrics = api(METRICS_API) in {need.capability for need in inventory.needs}
    baseline = catalog.cluster_baseline(
        stack.platform.cloud, stack.platform.cluster.kubernetes_version
    )
    from_cluster = api(METRICS_API) in baseline.capabilities
    # Installed only where something needs the API and the cluster itself has none.
    assert decision.install == (needs_metrics and not from_cluster), decision.reason


def test_the_plan_alone_is_complete(stack):
    resources, existing = stack.resources, stack.existing
    assert [str(problem) for problem in unmet(resources, existing)] == []


def test_eks_stacks_get_the_ebs_driver_and_a_single_default_class(stack):
    platform, resources, existing = stack.platform, stack.resources, stack.existing
    if platform.cloud.type != "aws":
        pytest.skip("EKS only")
    classes = {
        r["inputs"]["metadata"]["name"]: r["inputs"]
        for r in resources
        if r["type"] == "kubernetes:storage.k8s.io/v1:StorageClass"
    }
    assert list(classes) == ["gp3"]
    assert classes["gp3"]["parameters"]["encrypted"] == "true"
    addons = sorted(
        r["inputs"]["addonName"] for r in resources if r["type"] == "aws:eks/addon:Addon"
    )
    assert addons == ["aws-ebs-csi-driver", "coredns", "kube-proxy", "vpc-cni"]
    # without the EBS CSI add-on, every claim on the default class would stay Pending
    without = [r for r in resources if r["inputs"].get("addonName") != "aws-ebs-csi-driver"]
    problems = [str(p) for p in unmet(without, existing)]
    assert problems and all("ebs.csi.aws.com nothing installs" in p for p in problems if "gp3" in p)


def _offered(resources, existing) -> frozenset:
    """What the resources (and the existing cluster) provide, a default class included."""
    inventory = plan_inventory(resources, existing)
    found = set(provided(inventory))
    if any(spec.default for offer in inventory.offers for spec in offer.storage_classes):
        found.add(storage_class(None))
    return frozenset(found)


def test_without_any_prerequisite_the_check_fails(stack):
    """All layers' plans together: take away any one resource that provides something (a
    CRD-bearing release, the EBS CSI add-on, the default class, metrics-server, the GKE
    cluster's own classes and metrics API) and the check names what is now unmet whenever
    something relied on it; on EKS, GKE and local alike, so no cloud's prerequisites are taken
    on trust."""
    resources, existing, platform = stack.resources, stack.existing, stack.platform
    assert unmet(resources, existing) == []
    relied_on = needed(plan_inventory(resources, existing))
    breaking: dict[str, str] = {}  # name -> type of every resource the platform cannot lose
    for index, resource in enumerate(resources):
        if not resource_inventory(resource).offers:
            continue
        rest = resources[:index] + resources[index + 1 :]
        problems = unmet(rest, existing)
        lost = (relied_on & _offered([resource], None)) - _offered(rest, existing)
        assert not lost or problems, f"without {resource['name']}, {set(lost)} is unmet"
        if problems:
            breaking[resource["name"]] = resource["type"]
    charts = {
        r["inputs"].get("chart") for r in resources if r["name"] in breaking and "helm" in r["type"]
    }
    # the platform layer's CRDs, which the ml layer's custom resources rely on, everywhere
    assert {"base", "kube-prometheus-stack"} <= charts, breaking
    assert ("metrics-server" in charts) == stack.decision.install, breaking
    if platform.cloud.type == "aws":  # the volume driver and the default class it serves
        addons = {r["inputs"]["addonName"] for r in resources if r["type"] == "aws:eks/addon:Addon"}
        assert "aws-ebs-csi-driver" in addons
        assert {r["inputs"].get("addonName") for r in resources if r["name"] in breaking} >= {
            "aws-ebs-csi-driver"
        }, breaking
        assert "kubernetes:storage.k8s.io/v1:StorageClass" in breaking.values(), breaking
    if platform.cloud.type == "gcp":  # GKE's own default class and metrics API
        assert "gcp:container/cluster:Cluster" in breaking.values(), breaking
