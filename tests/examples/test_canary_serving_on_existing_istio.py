"""examples/canary-serving-on-existing-istio under mocks: one model with Flagger canary
releases on a cluster that already has Istio; Flagger only when asked; never a mesh."""

from collections import Counter

import pytest
from example_support import module_of, project_file, readme_config_keys, run_example, single

from mlops_platform.components.versions import FLAGGER, FLAGGER_LOADTESTER

EXAMPLE = "canary-serving-on-existing-istio"
PROMETHEUS = "http://prometheus-operated.monitoring:9090"
CONFIG = {
    f"{EXAMPLE}:deployment": "churn",
    f"{EXAMPLE}:modelUri": "models:/churn@champion",
    f"{EXAMPLE}:mlflowTrackingUri": "http://mlflow.mlflow:5000",
    f"{EXAMPLE}:prometheusUrl": PROMETHEUS,
    f"{EXAMPLE}:monitorLabels": {"release": "kube-prometheus-stack"},
}
EXISTING_FLAGGER = {
    f"{EXAMPLE}:installFlagger": False,
    f"{EXAMPLE}:loadTesterUrl": "http://flagger-loadtester.test/",
}
# The model under Flagger: its target Deployment, release ConfigMap, autoscaler, budget,
# PodMonitor, the four checks, the Canary (Flagger creates the Services and routes), and who
# may call it: a NetworkPolicy and an Istio AuthorizationPolicy derived from its callers.
SERVING = {
    "pulumi:providers:kubernetes": 1,
    "mlops:platform:WorkloadNamespaces": 1,
    "mlops:serving:ModelDeployment": 1,
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:ConfigMap": 1,
    "kubernetes:apps/v1:Deployment": 1,
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": 1,
    "kubernetes:policy/v1:PodDisruptionBudget": 1,
    "kubernetes:monitoring.coreos.com/v1:PodMonitor": 1,
    "kubernetes:flagger.app/v1beta1:MetricTemplate": 4,
    "kubernetes:flagger.app/v1beta1:Canary": 1,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": 1,
    "kubernetes:security.istio.io/v1:AuthorizationPolicy": 1,
}
# Installing Flagger adds its component, its namespace and the two Helm releases.
FLAGGER_PARTS = {
    "mlops:delivery:ProgressiveDelivery": 1,
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:helm.sh/v3:Release": 2,
}


@pytest.fixture(scope="module")
def with_flagger():
    return run_example(EXAMPLE, CONFIG)[0]


@pytest.fixture(scope="module")
def existing_flagger():
    return run_example(EXAMPLE, {**CONFIG, **EXISTING_FLAGGER})[0]


def test_creates_the_model_and_flagger_and_no_mesh(with_flagger):
    expected = Counter(SERVING) + Counter(FLAGGER_PARTS)
    assert dict(Counter(r.type for r in with_flagger.recorded)) == dict(expected)
    releases = {
        r.inputs["chart"]: (r.inputs["version"], r.inputs["repositoryOpts"]["repo"])
        for r in with_flagger.of_type("kubernetes:helm.sh/v3:Release")
    }
    assert releases == {
        FLAGGER.chart: (FLAGGER.version, FLAGGER.repo),
        FLAGGER_LOADTESTER.chart: (FLAGGER_LOADTESTER.version, FLAGGER_LOADTESTER.repo),
    }


def test_flagger_drives_istio_and_queries_the_clusters_prometheus(with_flagger):
    (flagger,) = [
        r
        for r in with_flagger.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["chart"] == "flagger"
    ]
    assert flagger.inputs["values"]["meshProvider"] == "istio"
    assert flagger.inputs["values"]["metricsServer"] == PROMETHEUS
    for template in with_flagger.of_type("kubernetes:flagger.app/v1beta1:MetricTemplate"):
        assert template.inputs["spec"]["provider"] == {"type": "prometheus", "address": PROMETHEUS}


def test_canary_targets_the_model_with_the_installed_load_tester(with_flagger):
    spec = single(with_flagger, "kubernetes:flagger.app/v1beta1:Canary").inputs["spec"]
    assert spec["provider"] == "istio"
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn"}
    assert [m["name"] for m in spec["analysis"]["metrics"]] == [
        "success-rate",
        "latency-p99",
        "score-divergence",
        "feature-drift",
    ]
    assert {h["url"] for h in spec["analysis"]["webhooks"]} == {
        "http://flagger-loadtester.flagger-system/"
    }


def test_first_release_and_sidecar_injection(with_flagger):
    release = single(with_flagger, "kubernetes:core/v1:ConfigMap")
    assert release.inputs["metadata"]["name"] == "churn-model"
    assert release.inputs["data"] == {"model_uri": "models:/churn@champion"}
    pod = single(with_flagger, "kubernetes:apps/v1:Deployment").inputs["spec"]["template"]
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    monitor = single(with_flagger, "kubernetes:monitoring.coreos.com/v1:PodMonitor")
    assert monitor.inputs["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert with_flagger.exports.values == {
        "url": "http://churn.serving.svc.cluster.local:8080",
        "model_name": "churn",
        "release_config_map": "churn-model",
    }


def test_with_flagger_already_there_only_the_model_is_created(existing_flagger):
    assert dict(Counter(r.type for r in existing_flagger.recorded)) == SERVING
    spec = single(existing_flagger, "kubernetes:flagger.app/v1beta1:Canary").inputs["spec"]
    assert {h["url"] for h in spec["analysis"]["webhooks"]} == {"http://flagger-loadtester.test/"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({f"{EXAMPLE}:installFlagger": False}, "loadTesterUrl: required when installFlagger"),
        ({f"{EXAMPLE}:loadTesterUrl": "http://x/"}, "loadTesterUrl: only with installFlagger"),
    ],
)
def test_load_tester_settings_are_checked(extra, message):
    with pytest.raises(Exception, match=rf"Pulumi\.example\.yaml: .*{message}"):
        run_example(EXAMPLE, {**CONFIG, **extra})


def test_project_file():
    project = project_file(EXAMPLE)
    assert project["name"] == EXAMPLE
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "uv"}}


def test_readme_lists_every_config_key():
    keys = set(module_of(EXAMPLE).Settings.model_fields) | set()
    assert readme_config_keys(EXAMPLE) == keys
