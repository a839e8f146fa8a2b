"""Model serving with progressive delivery (Flagger): config, every rendered object, and the
resource layer under recording mocks."""

from __future__ import annotations

import re

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from mlops_platform import manifests, mocks
from mlops_platform.components.serving import (
    ModelDeployment,
    ModelDeploymentArgs,
    ModelDeploymentConfig,
    analysis,
    delivery,
    model,
)
from mlops_platform.components.serving.delivery import FlaggerWiring, ProgressiveConfig

TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
FLAGGER = FlaggerWiring(
    prometheus_url="http://monitoring-prometheus.monitoring.svc.cluster.local:9090",
    load_tester_url="http://flagger-loadtester.flagger-system/",
)
BASE = {
    "stable": {"model_uri": "models:/churn@champion", "replicas": 3},
    "mlflow_tracking_uri": TRACKING,
    "progressive": {},
}


def _config(**changes) -> ModelDeploymentConfig:
    return ModelDeploymentConfig.model_validate({**BASE, **changes})


def _render(config=None, name="churn") -> model.Rendered:
    return model.render(name, config or _config(), flagger=FLAGGER)


def _error(data) -> str:
    with pytest.raises(ValidationError) as info:
        ModelDeploymentConfig.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


# --- config -----------------------------------------------------------------------------------


def test_defaults():
    config = ProgressiveConfig()
    assert (config.interval, config.threshold, config.step_weight, config.max_weight) == (
        "1m",
        5,
        10,
        50,
    )
    assert config.mirror is False and config.confirm_promotion is False
    assert config.load_test.enabled is True
    assert delivery.worst_case_rollback_seconds(config) == 300
    assert (
        delivery.worst_case_rollback_seconds(ProgressiveConfig(interval="30s", threshold=3)) == 90
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"canary": {"model_uri": "models:/churn@challenger", "weight": 10}},
            ": Value error, canary and progressive exclude each other: with progressive "
            "delivery Flagger runs the canary (a new release in the <name>-model ConfigMap) "
            "and sets its weight",
        ),
        (
            {"istio_sidecar": False},
            ": Value error, progressive delivery needs istio_sidecar: Flagger shifts traffic "
            "with Istio routes",
        ),
        (
            {"progressive": {"interval": "1h"}},
            "progressive.interval: Value error, interval '1h' must be seconds or minutes, e.g. 1m",
        ),
        (
            {"progressive": {"step_weight": 60, "max_weight": 50}},
            "progressive: Value error, step_weight (60) must be <= max_weight (50)",
        ),
        (
            {"progressive": {"thresholds": {"score_divergence_max": 1.5}}},
            "progressive.thresholds.score_divergence_max: Input should be less than or equal to 1",
        ),
        (
            {"progressive": {"webhooks": {"confirm-rollout": "http://x"}}},
            "progressive.webhooks.confirm-rollout.[key]: Input should be 'pre-rollout', "
            "'post-rollout' or 'rollback'",
        ),
    ],
)
def test_invalid_config_names_the_field(changes, message):
    assert _error({**BASE, **changes}) == message


def test_render_without_flagger_fails_before_anything():
    with pytest.raises(ValueError, match=r"serving\.churn\.progressive: Flagger must be installed"):
        model.render("churn", _config())


# --- objects ----------------------------------------------------------------------------------


def test_every_object_validates_against_kubernetes_and_the_flagger_crds(crds_dir):
    rendered = _render(
        _config(
            gateway="istio-system/public",
            hosts=["churn.example.com"],
            progressive={"confirm_promotion": True, "webhooks": {"post-rollout": "http://x/y"}},
        )
    )
    kinds = sorted(obj["kind"] for obj in rendered.objects())
    assert kinds == sorted(
        [
            "Deployment",
            "PodDisruptionBudget",
            "ConfigMap",
            "PodMonitor",
            "HorizontalPodAutoscaler",
            "Canary",
            *["MetricTemplate"] * 4,
            "NetworkPolicy",  # the load tester (the analysis' traffic) and the gateway
            "AuthorizationPolicy",
        ]
    )
    for obj in rendered.objects():
        manifests.validate(obj)
    # Flagger creates the Services and Istio routes: none of ours would fight over them.
    assert rendered.service is rendered.destination_rule is rendered.virtual_service is None


def test_the_release_is_a_config_map_the_target_reads_its_model_from():
    rendered = _render()
    release = rendered.release_config_map
    assert release["metadata"]["name"] == "churn-model"
    assert release["data"] == {"model_uri": "models:/churn@champion"}
    target = rendered.deployments["release"]
    assert target["metadata"]["name"] == "churn"
    env = {var["name"]: var for var in target["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLOPS_SERVE_MODEL_URI"] == {
        "name": "MLOPS_SERVE_MODEL_URI",
        "valueFrom": {"configMapKeyRef": {"name": "churn-model", "key": "model_uri"}},
    }
    assert env["MLOPS_SERVE_MODEL_NAME"]["value"] == "churn"
    # The load tester fetches its golden-set request from each side.
    assert env["MLOPS_SERVE_EXAMPLE_ENDPOINT"]["value"] == "true"
    without = _render(_config(progressive={"load_test": {"enabled": False}}))
    container = without.deployments["release"]["spec"]["template"]["spec"]["containers"][0]
    assert "MLOPS_SERVE_EXAMPLE_ENDPOINT" not in {var["name"] for var in container["env"]}


def test_the_target_is_shaped_for_flagger():
    target = _render().deployments["release"]
    spec = target["spec"]
    # Flagger rewrites `app` to `<name>-primary` for the primary; the HPA owns the count.
    assert spec["selector"] == {"matchLabels": {"app": "churn"}}
    assert "replicas" not in spec
    labels = spec["template"]["metadata"]["labels"]
    assert labels["app"] == "churn" and "track" not in labels and "version" not in labels
    assert labels["sidecar.istio.io/inject"] == "true"
    assert target["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}
    for constraint in spec["template"]["spec"]["topologySpreadConstraints"]:
        assert constraint["labelSelector"] == {"matchLabels": {"app": "churn"}}


@pytest.mark.parametrize(
    ("changes", "replicas"),
    [({}, (3, 3)), ({"autoscaling": {"min_replicas": 2, "max_replicas": 9}}, (2, 9))],
)
def test_the_autoscaler_owns_the_replicas(changes, replicas):
    rendered = _render(_config(**changes))
    hpa = rendered.horizontal_pod_autoscaler
    assert hpa["metadata"]["name"] == "churn"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "churn",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == replicas
    assert rendered.canary["spec"]["autoscalerRef"]["name"] == "churn"


def test_disruption_budget_and_monitor_cover_primary_and_canary_pods():
    rendered = _render()
    selector = {"app.kubernetes.io/name": "model-server", "app.kubernetes.io/instance": "churn"}
    assert rendered.pod_disruption_budgets["release"]["spec"]["selector"] == {
        "matchLabels": selector
    }
    assert rendered.pod_monitor["spec"]["selector"] == {"matchLabels": selector}
    assert "podTargetLabels" not in rendered.pod_monitor["spec"]


def test_canary_analysis_and_checks():
    rendered = _render(_config(progressive={"interval": "30s", "threshold": 3, "step_weight": 20}))
    spec = rendered.canary["spec"]
    assert spec["provider"] == "istio"
    assert spec["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn"}
    assert spec["service"]["port"] == 8080 and spec["service"]["targetPort"] == "http"
    assert spec["service"]["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}
    analysis = spec["analysis"]
    assert {k: analysis[k] for k in ("interval", "threshold", "stepWeight", "maxWeight")} == {
        "interval": "30s",
        "threshold": 3,
        "stepWeight": 20,
        "maxWeight": 50,
    }
    assert [(m["name"], m["templateRef"], m["thresholdRange"]) for m in analysis["metrics"]] == [
        ("success-rate", {"name": "churn-success-rate", "namespace": "serving"}, {"min": 99.0}),
        ("latency-p99", {"name": "churn-latency-p99", "namespace": "serving"}, {"max": 250.0}),
        (
            "score-divergence",
            {"name": "churn-score-divergence", "namespace": "serving"},
            {"max": 0.4},
        ),
        ("feature-drift", {"name": "churn-feature-drift", "namespace": "serving"}, {"max": 0.25}),
    ]
    for template in rendered.metric_templates.values():
        assert template["spec"]["provider"] == {
            "type": "prometheus",
            "address": FLAGGER.prometheus_url,
        }


def test_mirror_is_a_shadow_analysis_without_weights():
    analysis = _render(_config(progressive={"mirror": True, "mirror_iterations": 7}))
    spec = analysis.canary["spec"]["analysis"]
    assert spec["mirror"] is True and spec["iterations"] == 7
    assert "stepWeight" not in spec and "maxWeight" not in spec


def test_webhooks_load_the_golden_set_and_gate_promotion():
    rendered = _render(
        _config(
            progressive={
                "confirm_promotion": True,
                "webhooks": {"pre-rollout": "http://loop/gate", "post-rollout": "http://loop/p"},
            }
        )
    )
    hooks = {hook["name"]: hook for hook in rendered.canary["spec"]["analysis"]["webhooks"]}
    assert list(hooks) == ["post-rollout", "pre-rollout", "golden-set-load", "approve-promotion"]
    assert hooks["pre-rollout"]["type"] == "pre-rollout"
    assert hooks["approve-promotion"] == {
        "name": "approve-promotion",
        "type": "confirm-promotion",
        "url": "http://flagger-loadtester.flagger-system/gate/check",
    }
    load = hooks["golden-set-load"]
    assert load["type"] == "rollout" and load["url"] == FLAGGER.load_tester_url
    cmd = load["metadata"]["cmd"]
    for side in ("churn-canary", "churn-primary"):
        assert (
            f"curl -sf -o /tmp/serving-{side}.json "
            f"http://{side}.serving:8080/v2/models/churn/example" in cmd
        )
        assert (
            f"hey -z 1m -q 5 -c 1 -m POST -T application/json "
            f"-H 'X-Mlops-Synthetic: golden-set' -D /tmp/serving-{side}.json "
            f"http://{side}.serving:8080/invocations" in cmd
        )
    assert cmd.endswith("& wait")


def test_no_load_test_and_no_gate_leave_only_the_extra_hooks():
    rendered = _render(_config(progressive={"load_test": {"enabled": False}}))
    assert rendered.canary["spec"]["analysis"]["webhooks"] == []


def test_queries_select_canary_and_primary_pods_apart():
    canary = re.compile(delivery.render_query(delivery.CANARY_PODS, "serving", "churn", "1m"))
    primary = re.compile(delivery.render_query(delivery.PRIMARY_PODS, "serving", "churn", "1m"))
    assert canary.fullmatch("churn-6c5b7d9f8-q8w2r")
    assert not canary.fullmatch("churn-primary-7f9c8d6b4-k2x4p")
    assert primary.fullmatch("churn-primary-7f9c8d6b4-k2x4p")
    assert not primary.fullmatch("churn-6c5b7d9f8-q8w2r")
    assert not canary.fullmatch("churnx-6c5b7d9f8-q8w2r")


def test_query_guards_come_from_the_thresholds():
    thresholds = delivery.AnalysisThresholds(min_scored_rows=40, min_window_rows=900)
    assert ">= 40\n" in delivery.score_divergence_query(thresholds)
    assert ">= 900\n" in delivery.feature_drift_query(thresholds)
    assert delivery.score_divergence_query(thresholds).endswith("or on () vector(0)")
    # The request checks have no fallback: no traffic is no value, which Flagger fails.
    assert "vector(0)" not in delivery.success_rate_query()
    assert "vector(0)" not in delivery.latency_p99_query()


# --- resource layer ---------------------------------------------------------------------------

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
CANARY = "kubernetes:flagger.app/v1beta1:Canary"
METRIC = "kubernetes:flagger.app/v1beta1:MetricTemplate"


@pytest.fixture(scope="module")
def built():
    result = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        namespace = k8s.core.v1.Namespace(
            "serving-namespace",
            metadata={"name": "serving"},
            opts=pulumi.ResourceOptions(provider=provider),
        )
        result["component"] = ModelDeployment(
            "churn",
            ModelDeploymentArgs(config=_config(), kubernetes=provider, flagger=FLAGGER),
            pulumi.ResourceOptions(depends_on=[namespace]),
        )

    return mocks.run(program), result


def test_progressive_creates_exactly_these_children(built):
    monitor, _ = built
    parent = monitor.named("churn").urn
    children = sorted((r.type, r.name) for r in monitor.recorded if r.parent == parent)
    assert children == sorted(
        [
            (DEPLOYMENT, "churn-release"),
            (CONFIG_MAP, "churn-release"),
            (PDB, "churn-pdb"),
            (HPA, "churn-hpa"),
            (POD_MONITOR, "churn-pod-monitor"),
            (CANARY, "churn-canary"),
            *[(METRIC, f"churn-{check}-metric") for check in delivery.CHECKS],
            ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "churn-callers-network-policy"),
            ("kubernetes:security.istio.io/v1:AuthorizationPolicy", "churn-authorization-policy"),
        ]
    )


def test_pulumi_writes_the_first_release_only(built):
    monitor, _ = built
    release = next(r for r in monitor.of_type(CONFIG_MAP) if r.name == "churn-release")
    assert release.ignore_changes == ["data"]
    assert release.inputs["data"] == {"model_uri": "models:/churn@champion"}


def test_the_canary_waits_for_its_target_autoscaler_and_checks(built):
    monitor, _ = built
    urns = {r.urn: (r.type, r.name) for r in monitor.recorded}
    canary = next(iter(monitor.of_type(CANARY)))
    waits = sorted(urns[urn] for urn in canary.depends_on)
    assert (DEPLOYMENT, "churn-release") in waits and (HPA, "churn-hpa") in waits
    assert sum(1 for kind, _ in waits if kind == METRIC) == 4
    assert ("kubernetes:core/v1:Namespace", "serving-namespace") in waits


def test_without_flagger_wiring_nothing_is_registered():
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        ModelDeployment("churn", ModelDeploymentArgs(config=_config(), kubernetes=provider))

    with pytest.raises(Exception, match="Flagger must be installed"):
        mocks.run(program)


@pytest.mark.parametrize(
    ("value", "limits", "passed"),
    [
        (None, {"min": 99}, False),  # no value: Flagger fails the check
        (float("nan"), {"max": 0.1}, False),
        (99.0, {"min": 99}, True),  # bounds are inclusive
        (98.9, {"min": 99}, False),
        (0.1, {"max": 0.1}, True),
        (0.11, {"max": 0.1}, False),
        (5.0, {"min": 1, "max": 10}, True),
    ],
)
def test_flagger_verdict(value, limits, passed):
    assert analysis.passes(value, limits) is passed


def test_run_checks_renders_each_template_for_the_target():
    seen = []

    def query(promql):
        seen.append(promql)
        return None if "model_server_requests_total" in promql else 0.0

    results = analysis.run_checks(query, ProgressiveConfig(), "serving", "churn", "30s")
    assert list(results) == list(delivery.CHECKS)
    assert all("{{" not in promql for promql in seen)
    # The three checks over counters and histograms take the interval as their window; the
    # drift gauge is already a window of the server's own.
    assert ["[30s]" in promql for promql in seen] == [True, True, True, False]
    assert all('namespace="serving"' in promql for promql in seen)
    assert results["success-rate"].passed is False
    assert results["success-rate"].describe() == "success-rate: no value (min 99) FAILED"
    assert results["score-divergence"].describe() == "score-divergence: 0 (max 0.4) ok"
