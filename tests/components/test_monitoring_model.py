"""Monitoring, pure layer: config defaults and errors, Helm values, alert rules, dashboard.

PromQL is checked structurally here (the locked environment has no PromQL parser): every
model-server series and label an expression names must be one the real server exposes, which
is read from the server's own `/metrics` rendering, and every function must be a PromQL one.
"""

import copy
import json
import re

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import versions
from mlops_platform.components.monitoring import model
from mlops_platform.components.monitoring.model import AlertsConfig, MonitoringConfig
from mlops_platform.model_server import app as server_app
from mlops_platform.model_server import metrics as server_metrics
from mlops_platform.model_server.drift import DriftWindow, parse_profile

DEFAULT = MonitoringConfig()


def _error(data) -> str:
    with pytest.raises(ValidationError) as info:
        MonitoringConfig.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


def _rules(config: MonitoringConfig = DEFAULT) -> dict[str, dict]:
    return {r["alert"]: r for g in model.rule_groups(config.alerts) for r in g["rules"]}


# --- config -----------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones():
    assert DEFAULT.model_dump() == {
        "namespace": "monitoring",
        "retention_days": 15,
        "storage_gb": 50,
        "storage_class": None,
        "alertmanager_storage_gb": 2,
        "prometheus": {"cpu_request": "250m", "memory_request": "1Gi", "memory_limit": "4Gi"},
        "alertmanager": {"cpu_request": "50m", "memory_request": "64Mi", "memory_limit": "256Mi"},
        "operator": {"cpu_request": "100m", "memory_request": "128Mi", "memory_limit": "512Mi"},
        "grafana": {
            "resources": {
                "cpu_request": "100m",
                "memory_request": "256Mi",
                "memory_limit": "512Mi",
            },
            "storage_gb": None,
            "default_dashboards": True,
        },
        "alerts": {
            "drift_for_minutes": 15,
            "drift_inconclusive_for_minutes": 360,
            "drift_check_failing_minutes": 60,
            "p99_latency_ms": 10.0,
            "latency_for_minutes": 10,
            "latency_min_request_rate": 1.0,
            "error_ratio": 0.01,
            "error_for_minutes": 5,
            "prediction_log_drop_ratio": 0.01,
            "prediction_log_for_minutes": 10,
            "not_ready_for_minutes": 10,
            "down_for_minutes": 5,
            "model_server_job": ".*model-server.*",
            "gpu_alerts": True,
        },
        "alerting": {
            "receivers": {},
            "routes": [],
            "default_receiver": None,
            "notify_drift": False,
            "group_by": ["alertname", "namespace", "model"],
            "group_wait_seconds": 30,
            "group_interval_seconds": 300,
            "repeat_interval_minutes": 240,
        },
        "tracing": {
            "enabled": False,
            "sampling_percent": 1.0,
            "storage": {"type": "memory", "max_traces": 50_000},
            "resources": {"cpu_request": "100m", "memory_request": "512Mi", "memory_limit": "2Gi"},
            "image": "jaegertracing/jaeger:2.15.0",
        },
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"namespace": "Monitoring"},
            "namespace: Value error, namespace 'Monitoring' must be a DNS label",
        ),
        ({"retention_days": 0}, "retention_days: Input should be greater than 0"),
        ({"storage_gb": -5}, "storage_gb: Input should be greater than 0"),
        ({"alertmanager_storage_gb": 0}, "alertmanager_storage_gb: Input should be greater than 0"),
        (
            {
                "prometheus": {
                    "cpu_request": "1 core",
                    "memory_request": "1Gi",
                    "memory_limit": "2Gi",
                }
            },
            "prometheus.cpu_request: Value error, cpu_request '1 core' is not a Kubernetes "
            "quantity (e.g. 512Mi, 250m)",
        ),
        (
            {
                "grafana": {
                    "resources": {
                        "cpu_request": "1",
                        "memory_request": "1GB",
                        "memory_limit": "1Gi",
                    }
                }
            },
            "grafana.resources.memory_request: Value error, memory_request '1GB' is not a "
            "Kubernetes quantity (e.g. 512Mi, 250m)",
        ),
        ({"grafana": {"storage_gb": 0}}, "grafana.storage_gb: Input should be greater than 0"),
        (
            {"grafana": {"admin_password": "x"}},
            "grafana.admin_password: Extra inputs are not permitted",
        ),
        (
            {"alerts": {"drift_psi_threshold": 0.2}},
            "alerts.drift_psi_threshold: Extra inputs are not permitted",
        ),
        (
            {"alerts": {"drift_check_failing_minutes": 0}},
            "alerts.drift_check_failing_minutes: Input should be greater than 0",
        ),
        ({"alerts": {"error_ratio": 1}}, "alerts.error_ratio: Input should be less than 1"),
        (
            {"alerts": {"prediction_log_drop_ratio": 0}},
            "alerts.prediction_log_drop_ratio: Input should be greater than 0",
        ),
        (
            {"alerts": {"p99_latency_ms": 6000}},
            "alerts.p99_latency_ms: Input should be less than or equal to 5000",
        ),
        (
            {"alerts": {"latency_min_request_rate": -1}},
            "alerts.latency_min_request_rate: Input should be greater than or equal to 0",
        ),
        (
            {"alerts": {"drift_for_minutes": 0}},
            "alerts.drift_for_minutes: Input should be greater than 0",
        ),
        (
            {"alerts": {"model_server_job": "model-server("}},
            "alerts.model_server_job: Value error, model_server_job 'model-server(' is not a "
            "regex: missing ), unterminated subpattern at position 12",
        ),
        (
            {"alerts": {"model_server_job": 'x"} or vector(1)'}},
            "alerts.model_server_job: Value error, model_server_job 'x\"} or vector(1)' must be "
            "a non-empty regex without quotes or backslashes",
        ),
        ({"alerts": {"severity": "page"}}, "alerts.severity: Extra inputs are not permitted"),
        ({"retention": "15d"}, "retention: Extra inputs are not permitted"),
    ],
)
def test_bad_config_names_the_field(data, message):
    assert _error(data) == message


def test_one_resource_number_can_change_alone():
    config = MonitoringConfig.model_validate({"prometheus": {"memory_limit": "8Gi"}})
    assert config.prometheus.model_dump() == {
        "cpu_request": "250m",
        "memory_request": "1Gi",
        "memory_limit": "8Gi",
    }
    assert config.grafana.resources == DEFAULT.grafana.resources


def test_latency_ceiling_is_the_servers_largest_latency_bucket():
    assert server_metrics.LATENCY_BUCKETS[-1] == model.LATENCY_MAX_BUCKET_SECONDS
    AlertsConfig(p99_latency_ms=5000)  # exactly the largest bucket is still measurable


# --- Helm values ------------------------------------------------------------------------------


def test_default_helm_values():
    assert model.helm_values(DEFAULT) == {
        "fullnameOverride": "monitoring",
        "crds": {"enabled": True},
        "defaultRules": {"create": True},
        "prometheusOperator": {
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"memory": "512Mi"},
            }
        },
        "prometheus": {
            "prometheusSpec": {
                "retention": "15d",
                "retentionSize": "43520MB",
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "50Gi"}},
                        }
                    }
                },
                "resources": {
                    "requests": {"cpu": "250m", "memory": "1Gi"},
                    "limits": {"memory": "4Gi"},
                },
                "ruleSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "probeSelectorNilUsesHelmValues": False,
                "scrapeConfigSelectorNilUsesHelmValues": False,
                "ruleNamespaceSelector": {},
                "serviceMonitorNamespaceSelector": {},
                "podMonitorNamespaceSelector": {},
            }
        },
        "alertmanager": {
            # Without receivers or the retrain receiver: everything to `null` (table-tested in
            # tests/components/test_monitoring_alerting.py).
            "config": model.alertmanager_config(DEFAULT.alerting, None),
            "alertmanagerSpec": {
                "storage": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "2Gi"}},
                        }
                    }
                },
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"memory": "256Mi"},
                },
            },
        },
        "grafana": {
            "fullnameOverride": "monitoring-grafana",
            "defaultDashboardsEnabled": True,
            "admin": {
                "existingSecret": "grafana-admin-credentials",
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            },
            "resources": {
                "requests": {"cpu": "100m", "memory": "256Mi"},
                "limits": {"memory": "512Mi"},
            },
            "persistence": {"enabled": False},
            "grafana.ini": {"analytics": {"check_for_updates": False, "reporting_enabled": False}},
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": "grafana_dashboard",
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                },
                "datasources": {"uid": "prometheus"},
            },
        },
        "kube-state-metrics": {"metricLabelsAllowlist": ["nodes=[nvidia.com/gpu.present]"]},
    }


def test_storage_class_and_grafana_volume_reach_every_claim():
    config = MonitoringConfig(
        storage_gb=200, storage_class="gp3", retention_days=30, grafana={"storage_gb": 5}
    )
    values = model.helm_values(config)
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["retentionSize"] == "174080MB"  # 85 % of 200 GiB
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "200Gi"}},
        "storageClassName": "gp3",
    }
    alertmanager = values["alertmanager"]["alertmanagerSpec"]["storage"]
    assert alertmanager["volumeClaimTemplate"]["spec"]["storageClassName"] == "gp3"
    assert values["grafana"]["persistence"] == {
        "enabled": True,
        "size": "5Gi",
        "storageClassName": "gp3",
    }


@pytest.mark.parametrize(("storage_gb", "size"), [(1, "870MB"), (10, "8704MB"), (50, "43520MB")])
def test_retention_size_leaves_headroom_on_the_volume(storage_gb, size):
    assert model.retention_size(storage_gb) == size
    assert int(size.removesuffix("MB")) < storage_gb * 1024


def _leaves(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, f"{path}[]")
    else:
        yield path, value


def test_values_never_hold_a_grafana_password():
    # Only the Secret's name and key names: the chart reads the password from the Secret.
    mentions = {
        (path, value)
        for path, value in _leaves(model.helm_values(DEFAULT))
        if "password" in f"{path}={value}".lower()
    }
    assert mentions == {(".grafana.admin.passwordKey", "admin-password")}
    assert model.helm_values(DEFAULT)["grafana"]["admin"]["existingSecret"] == (
        model.GRAFANA_ADMIN_SECRET
    )


def test_urls_name_the_charts_services():
    assert model.prometheus_url("obs") == "http://monitoring-prometheus.obs.svc.cluster.local:9090"
    assert (
        model.alertmanager_url("obs") == "http://monitoring-alertmanager.obs.svc.cluster.local:9093"
    )


def test_pinned_chart_runs_the_operator_of_the_shared_crds(crds_dir):
    assert versions.KUBE_PROMETHEUS_STACK == (
        "https://prometheus-community.github.io/helm-charts",
        "kube-prometheus-stack",
        "88.3.0",
    )
    # chart 88.3.0 ships prometheus-operator v0.93.0, the CRD version validated against.
    assert (crds_dir / "prometheus-operator-0.93.0").is_dir()


# --- alert rules ------------------------------------------------------------------------------


def test_rule_groups_and_alert_names():
    groups = model.rule_groups(DEFAULT.alerts)
    assert [(g["name"], [r["alert"] for r in g["rules"]]) for g in groups] == [
        ("drift", ["ModelFeatureDrift", "ModelDriftInconclusive", "ModelDriftCheckFailing"]),
        (
            "model-server",
            [
                "ModelServerHighErrorRatio",
                "ModelServerHighLatency",
                "ModelPredictionLogDropping",
                "ModelServerNotReady",
                "ModelServerDown",
            ],
        ),
        ("gpu-nodes", ["GpuNodeWithoutGpus"]),
    ]
    no_gpu = model.rule_groups(AlertsConfig(gpu_alerts=False))
    assert [g["name"] for g in no_gpu] == ["drift", "model-server"]


EXPECTED = {
    # The drift monitor's verdict (the drift pipeline's detector), never a PSI threshold.
    "ModelFeatureDrift": (
        "max by (model, version, feature) (mlops_drift_feature_drifted == 1)\n"
        "and on (model, version)\n"
        'max by (model, version) (mlops_drift_verdict{verdict="drift"} == 1)',
        "15m",
        "warning",
    ),
    "ModelDriftInconclusive": (
        'max by (model, version) (mlops_drift_verdict{verdict="inconclusive"}) == 1',
        "360m",
        "info",
    ),
    "ModelDriftCheckFailing": (
        "sum by (model, reason) (increase(mlops_drift_check_failures_total[60m])) > 0",
        "0m",
        "warning",
    ),
    "ModelServerHighErrorRatio": (
        'sum by (namespace, model, version) (rate(model_server_requests_total{endpoint=~"infer|'
        'invocations",code=~"5.."}[5m]))\n/\n'
        "sum by (namespace, model, version) (rate(model_server_requests_total{endpoint=~"
        '"infer|invocations"}[5m]))\n> 0.01',
        "5m",
        "critical",
    ),
    "ModelServerHighLatency": (
        "histogram_quantile(0.99, sum by (namespace, model, version, le) (rate("
        'model_server_request_duration_seconds_bucket{endpoint=~"infer|invocations"}[5m])))\n'
        "> 0.01\n"
        "and on (namespace, model, version)\n"
        "sum by (namespace, model, version) (rate(model_server_request_duration_seconds_count"
        '{endpoint=~"infer|invocations"}[5m])) >= 1',
        "10m",
        "warning",
    ),
    "ModelPredictionLogDropping": (
        "sum by (namespace, model, version) (rate(model_server_prediction_log_dropped_total[10m]))"
        "\n/\n"
        "((sum by (namespace, model, version) (rate(model_server_prediction_log_dropped_total"
        "[10m])) + sum by (namespace, model, version) (rate("
        "model_server_prediction_log_written_total[10m]))) or sum by (namespace, model, version)"
        " (rate(model_server_prediction_log_dropped_total[10m])))\n> 0.01",
        "10m",
        "warning",
    ),
    "ModelServerNotReady": ("model_server_ready == 0", "10m", "warning"),
    "ModelServerDown": ('up{job=~".*model-server.*"} == 0', "5m", "critical"),
    "GpuNodeWithoutGpus": (
        'max by (node) (kube_node_labels{label_nvidia_com_gpu_present="true"})\n'
        "unless on (node)\n"
        'max by (node) (kube_node_status_allocatable{resource="nvidia_com_gpu"} > 0)',
        "15m",
        "warning",
    ),
}


@pytest.mark.parametrize("alert", sorted(EXPECTED))
def test_each_alert_expr_duration_and_severity(alert):
    rule = _rules()[alert]
    expr, duration, severity = EXPECTED[alert]
    assert (rule["expr"], rule["for"], rule["labels"]) == (expr, duration, {"severity": severity})
    assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}


@pytest.mark.parametrize("alert", sorted(EXPECTED))
def test_each_alert_has_summary_and_description_with_valid_templates(alert):
    annotations = _rules()[alert]["annotations"]
    assert set(annotations) == {"summary", "description"}
    for text in annotations.values():
        assert len(text) > 20
        assert text.count("{{") == text.count("}}")
        for used in re.findall(r"\$labels\.(\w+)", text):
            assert used in _labels_of_result(alert), (alert, used)


def _labels_of_result(alert: str) -> set[str]:
    """Labels an alert's result series carry (what annotations may template)."""
    target = {"namespace", "pod", "instance", "job"}
    by_model = {"namespace", "model", "version"}
    return {
        "ModelFeatureDrift": {"model", "version", "feature"},
        "ModelDriftInconclusive": {"model", "version"},
        "ModelDriftCheckFailing": {"model", "reason"},
        "ModelServerHighErrorRatio": by_model,
        "ModelServerHighLatency": by_model,
        "ModelPredictionLogDropping": by_model,
        "ModelServerNotReady": target,
        "ModelServerDown": target,
        "GpuNodeWithoutGpus": {"node"},
    }[alert]


def test_thresholds_come_from_config():
    alerts = AlertsConfig(
        drift_for_minutes=30,
        drift_inconclusive_for_minutes=120,
        drift_check_failing_minutes=15,
        p99_latency_ms=12.5,
        latency_min_request_rate=0.5,
        error_ratio=0.05,
        prediction_log_drop_ratio=0.001,
        not_ready_for_minutes=20,
        down_for_minutes=3,
        model_server_job="serving/churn",
    )
    rules = _rules(MonitoringConfig(alerts=alerts))
    drift = rules["ModelFeatureDrift"]
    assert drift["for"] == "30m"
    assert "held for 30 minutes" in drift["annotations"]["description"]
    assert rules["ModelDriftInconclusive"]["for"] == "120m"
    assert "[15m]" in rules["ModelDriftCheckFailing"]["expr"]
    latency = rules["ModelServerHighLatency"]["expr"]
    assert "\n> 0.0125\n" in latency and latency.endswith(">= 0.5")
    assert "12.5 ms" in rules["ModelServerHighLatency"]["annotations"]["summary"]
    assert rules["ModelServerHighErrorRatio"]["expr"].endswith("\n> 0.05")
    assert "(SLO 5 %)" in rules["ModelServerHighErrorRatio"]["annotations"]["description"]
    assert rules["ModelPredictionLogDropping"]["expr"].endswith("\n> 0.001")
    assert rules["ModelServerNotReady"]["for"] == "20m"
    assert rules["ModelServerDown"] | {"annotations": None} == {
        "alert": "ModelServerDown",
        "expr": 'up{job=~"serving/churn"} == 0',
        "for": "3m",
        "labels": {"severity": "critical"},
        "annotations": None,
    }


def test_prometheus_rule_is_valid_against_the_operator_crd(crds_dir):
    rule = model.prometheus_rule(DEFAULT.alerts, "monitoring")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"] == {
        "name": "model-server-alerts",
        "namespace": "monitoring",
        "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
    }
    manifests.validate(rule)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r["spec"]["groups"][0]["rules"][0].update({"for": "15 minutes"}), "for"),
        (lambda r: r["spec"]["groups"][0]["rules"][0].update({"severity": "x"}), "severity"),
        (lambda r: r["spec"]["groups"][0].pop("name"), "name"),
    ],
)
def test_crd_validation_rejects_a_broken_rule(crds_dir, change, problem):
    rule = copy.deepcopy(model.prometheus_rule(DEFAULT.alerts, "monitoring"))
    change(rule)
    with pytest.raises(manifests.ManifestError, match=problem):
        manifests.validate(rule)


# --- PromQL against the server's real metrics -------------------------------------------------

PROMQL_FUNCTIONS = {
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "increase",
    "histogram_quantile",
    "label_values",  # Grafana template query
}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
# Labels Prometheus attaches to every scraped series of a pod target.
TARGET_LABELS = {"namespace", "pod", "instance", "job", "container", "service", "endpoint"}


@pytest.fixture(scope="module")
def exposed() -> dict[str, set[str]]:
    """Series name -> label names, from the model server's real `/metrics` rendering."""
    metrics = server_metrics.Metrics()
    metrics.set_model("churn", "3")
    metrics.count("infer", 200, 0.002)
    metrics.count("invocations", 500, 0.02)
    metrics.dropped("queue_full", 2)
    metrics.written(10)
    metrics.ready.set(1)
    metrics.request_rows_child.observe(1)
    metrics.batch_rows_child.observe(4)
    metrics.scores.observe_many(np.array([0.1, 0.9]))
    profile = {
        "version": 1,
        "features": {"tenure": {"kind": "numeric", "edges": [12.0], "fractions": [0.5, 0.5]}},
    }
    window = DriftWindow(parse_profile(profile), window_rows=10)
    window.update({"tenure": np.array([1.0, 20.0])})
    metrics.drift.attach(window, "churn", "3")
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    # The drift monitor's series (mlops_platform/pipelines/loop/monitor.py), from its real rendering.
    for family in text_string_to_metric_families(_monitor_metrics()):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def _monitor_metrics() -> str:
    import pandas as pd
    from prometheus_client import generate_latest

    from mlops_platform.pipelines.lib.drift import DriftSettings, detect_drift
    from mlops_platform.pipelines.loop.monitor import DriftMonitor, ModelState
    from mlops_platform.pipelines.loop.monitor_settings import MonitorSettings

    settings = MonitorSettings(
        bucket_uri="s3://b",
        tracking_uri="http://mlflow",
        reference_uri="",
        models=("churn",),
        drift=DriftSettings(),
        metrics_host="127.0.0.1",
        metrics_port=9401,
        log_level="info",
    )
    monitor = DriftMonitor(settings)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"tenure": rng.normal(size=300)})
    report = detect_drift(frame, frame.assign(tenure=frame["tenure"] + 1))
    monitor.state.models["churn"] = ModelState("3", report, 300, 300, 1.0, 0.1)
    monitor.failures.labels("churn", "no_reference").inc()
    return generate_latest(monitor.registry).decode()


def _strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def promql_problems(expr: str, series: dict[str, set[str]]) -> list[str]:
    """Structural PromQL check: brackets, functions, and model-server series and labels."""
    problems = []
    bare = _strip_strings(expr)
    if bare.count('"') % 2:
        problems.append("unbalanced quotes")
    depth = {"(": 0, "{": 0, "[": 0}
    closing = {")": "(", "}": "{", "]": "["}
    for char in bare:
        if char in depth:
            depth[char] += 1
        elif char in closing:
            depth[closing[char]] -= 1
            if depth[closing[char]] < 0:
                problems.append(f"unbalanced {char!r}")
    problems += [f"unclosed {k!r}" for k, v in depth.items() if v > 0]
    for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", bare):
        if name not in PROMQL_FUNCTIONS | KEYWORDS:
            problems.append(f"unknown function {name}")
    for duration in re.findall(r"\[([^\]]*)\]", bare):
        if not re.fullmatch(r"[0-9]+[smhdw]|\$__rate_interval", duration):
            problems.append(f"bad range [{duration}]")
    known_labels = set(TARGET_LABELS) | {"le"}
    for metric, matchers in re.findall(r"(model_server_[a-z_]+)(?:\{([^}]*)\})?", expr):
        if metric not in series:
            problems.append(f"no series {metric}")
            continue
        known_labels |= series[metric]
        for label in re.findall(r"([A-Za-z_]+)\s*(?:=~|!~|!=|=)", matchers):
            if label not in series[metric] | TARGET_LABELS:
                problems.append(f"{metric} has no label {label}")
    if "model_server_" in expr:
        for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", bare):
            for label in (x.strip() for x in clause.split(",")):
                if label not in known_labels:
                    problems.append(f"unknown grouping label {label}")
    return problems


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum by (model (rate(model_server_requests_total[5m]))", "unclosed '('"),
        ("rate(model_server_request_total[5m])", "no series model_server_request_total"),
        (
            'model_server_requests_total{status="500"}',
            "model_server_requests_total has no label status",
        ),
        ("sum by (model, stage) (model_server_ready)", "unknown grouping label stage"),
        ("quantile_histogram(0.9, model_server_ready)", "unknown function quantile_histogram"),
        ("rate(model_server_requests_total[5 minutes])", "bad range [5 minutes]"),
        ("model_server_ready > 0)", "unbalanced ')'"),
    ],
)
def test_promql_check_catches_mistakes(exposed, expr, problem):
    assert problem in promql_problems(expr, exposed)


def test_model_server_series_the_alerts_rely_on_exist(exposed):
    assert exposed["model_server_feature_psi"] == {"model", "version", "feature"}
    assert exposed["model_server_drift_window_rows"] == {"model", "version"}
    assert exposed["model_server_requests_total"] == {"model", "version", "endpoint", "code"}
    assert exposed["model_server_request_duration_seconds_bucket"] == {
        "model",
        "version",
        "endpoint",
        "le",
    }
    assert exposed["model_server_prediction_log_dropped_total"] == {"model", "version", "reason"}
    assert exposed["model_server_prediction_log_written_total"] == {"model", "version"}
    assert exposed["model_server_ready"] == set()  # no model/version labels on this one


def test_predict_endpoints_are_the_ones_the_server_times():
    assert server_app._v2_endpoint("/v2/models/churn/infer") == "infer"
    assert server_app._v2_endpoint("/v2/models/churn/versions/3/infer") == "infer"
    assert set(model.PREDICT_ENDPOINTS.split("|")) == {"infer", "invocations"}


@pytest.mark.parametrize("alert", sorted(EXPECTED))
def test_alert_expressions_are_structurally_valid_promql(exposed, alert):
    assert promql_problems(_rules()[alert]["expr"], exposed) == []


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_configmap_is_labelled_for_the_sidecar_and_valid():
    configmap = model.dashboard_configmap("monitoring")
    assert configmap["metadata"] == {
        "name": "model-server-dashboard",
        "namespace": "monitoring",
        "labels": {"grafana_dashboard": "1"},
    }
    assert set(configmap["data"]) == {"model-server.json"}
    manifests.validate(configmap)


def test_dashboard_queries_use_the_provisioned_datasource_and_real_series(exposed):
    dashboard = json.loads(model.dashboards()["model-server.json"])
    assert dashboard["uid"] == "mlops-model-server"
    targets = [t for p in dashboard["panels"] for t in p["targets"]]
    assert len(targets) == 12
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": model.DATASOURCE_UID}
    for target in targets:
        expr = target["expr"].replace("$namespace", ".*")
        assert promql_problems(expr, exposed) == [], target["expr"]
    variable = dashboard["templating"]["list"][0]
    assert variable["query"]["query"] == "label_values(model_server_ready, namespace)"
