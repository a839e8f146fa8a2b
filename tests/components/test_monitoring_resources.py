"""Monitoring, resource layer under recording mocks: exact types, names, inputs, parents."""

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime.sync_await import _sync_await

from mlops_platform import manifests, mocks
from mlops_platform.components import versions
from mlops_platform.components.monitoring import (
    ModelAlerts,
    ModelAlertsArgs,
    MonitoringConfig,
    Observability,
    ObservabilityArgs,
    model,
)
from tests.components.component_support import named, output_value, untranslated_keys

CONFIG = MonitoringConfig(namespace="observability", storage_class="gp3")


def _run(config=CONFIG, protect=False):
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        built["component"] = Observability(
            "platform",
            ObservabilityArgs(config=config, kubernetes=provider, protect=protect),
            pulumi.ResourceOptions(),
        )

    monitor = mocks.run(program)
    return monitor, built["component"]


@pytest.fixture(scope="module")
def built():
    return _run()


def test_creates_exactly_these_children_under_the_component(built):
    monitor, _ = built
    component = monitor.named("platform")
    assert component.type == "mlops:monitoring:Observability"
    assert component.parent_type == "pulumi:pulumi:Stack"
    children = sorted((r.type, r.name) for r in monitor.recorded if r.parent == component.urn)
    assert children == [
        ("kubernetes:core/v1:ConfigMap", "platform-model-server-dashboard"),
        ("kubernetes:core/v1:Namespace", "platform-namespace"),
        ("kubernetes:core/v1:Secret", "platform-grafana-admin"),
        ("kubernetes:helm.sh/v3:Release", "platform-kube-prometheus-stack"),
        ("random:index/randomPassword:RandomPassword", "platform-grafana-admin-password"),
    ]
    # Everything else recorded is the test's own provider and the component itself.
    assert len(monitor.recorded) == len(children) + 2


def test_kubernetes_children_use_the_given_provider(built):
    monitor, _ = built
    provider = monitor.named("k8s").urn
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:") and record.type != "pulumi:providers:kubernetes":
            assert record.provider is not None, record.name
            assert record.provider.startswith(provider), record.name


def test_namespace_admits_node_exporter_and_still_reports_restricted(built):
    monitor, _ = built
    namespace = monitor.named("platform-namespace")
    assert namespace.inputs["metadata"] == {
        "name": "observability",
        "labels": {
            "app.kubernetes.io/managed-by": "mlops-platform",
            "pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        },
    }


def test_release_is_the_pinned_chart_with_values_from_the_model(built):
    monitor, _ = built
    release = named(monitor, "kubernetes:helm.sh/v3:Release", "platform-kube-prometheus-stack")
    assert versions.KUBE_PROMETHEUS_STACK.version == "88.3.0"
    assert release.inputs == {
        "name": "monitoring",
        "chart": "kube-prometheus-stack",
        "version": "88.3.0",
        "repositoryOpts": {"repo": "https://prometheus-community.github.io/helm-charts"},
        "namespace": "observability",
        "values": model.helm_values(CONFIG),
        "timeout": 900,
        "compat": "true",  # set by the SDK on every Release
    }
    assert untranslated_keys(release.inputs) == []
    assert release.secret_inputs == set()
    for dependency in ("platform-namespace", "platform-grafana-admin"):
        assert monitor.named(dependency).urn in release.depends_on


def test_grafana_password_is_generated_and_only_in_the_secret(built):
    monitor, component = built
    password = named(
        monitor, "random:index/randomPassword:RandomPassword", "platform-grafana-admin-password"
    )
    assert password.inputs == {"length": 32, "special": False}
    secret = named(monitor, "kubernetes:core/v1:Secret", "platform-grafana-admin")
    assert secret.inputs["metadata"] == {
        "name": "grafana-admin-credentials",
        "namespace": "observability",
    }
    assert secret.inputs["type"] == "Opaque"
    assert secret.secret_inputs == {"stringData"}
    assert secret.masked_inputs["stringData"] == {
        "admin-user": mocks.SECRET_MASK,
        "admin-password": mocks.SECRET_MASK,
    }
    generated = output_value(component.grafana_admin_password)
    assert generated.startswith("mock-")
    assert secret.inputs["stringData"] == {"admin-user": "admin", "admin-password": generated}
    assert monitor.named("platform-namespace").urn in secret.depends_on
    for record in monitor.recorded:
        if record.name != "platform-grafana-admin":
            assert generated not in json.dumps(record.inputs), record.name


def test_outputs(built):
    _, component = built
    assert output_value(component.namespace) == "observability"
    assert output_value(component.grafana_service) == "monitoring-grafana"
    assert (
        output_value(component.prometheus_url)
        == "http://monitoring-prometheus.observability.svc.cluster.local:9090"
    )
    assert (
        output_value(component.alertmanager_url)
        == "http://monitoring-alertmanager.observability.svc.cluster.local:9093"
    )
    assert _sync_await(component.grafana_admin_password.is_secret()) is True
    for plain in ("namespace", "grafana_service", "prometheus_url", "alertmanager_url"):
        assert _sync_await(getattr(component, plain).is_secret()) is False, plain


def test_the_release_plans_no_custom_resource_of_its_own_crds(built):
    """A custom resource next to the release installing its CRD fails a preview on a fresh
    cluster (pulumi-kubernetes #3027): the rules are `ModelAlerts`, a later layer's."""
    monitor, _ = built
    assert [r.name for r in monitor.recorded if "monitoring.coreos.com" in r.type] == []


def test_model_alerts_is_the_rule_of_the_model_and_matches_the_crd(crds_dir):
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        ModelAlerts("platform", ModelAlertsArgs(config=CONFIG, kubernetes=provider))

    monitor = mocks.run(program)
    component = monitor.named("platform")
    assert component.type == "mlops:monitoring:ModelAlerts"
    children = [(r.type, r.name) for r in monitor.recorded if r.parent == component.urn]
    assert children == [
        ("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "platform-model-alerts")
    ]
    rule = named(
        monitor, "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "platform-model-alerts"
    )
    # the content is the model's, unchanged; its namespace is the release's (rule selector)
    assert rule.inputs == model.prometheus_rule(CONFIG.alerts, "observability")
    assert rule.provider is not None and rule.provider.startswith(monitor.named("k8s").urn)
    manifests.validate(rule.inputs)


def test_model_alerts_needs_a_provider():
    with pytest.raises(ValueError, match=r"^ModelAlertsArgs.kubernetes: a Kubernetes provider"):
        ModelAlerts("x", ModelAlertsArgs(config=CONFIG, kubernetes=None))  # type: ignore[arg-type]


def test_dashboard_configmap_and_builtin_objects_are_valid(built):
    monitor, _ = built
    dashboard = named(monitor, "kubernetes:core/v1:ConfigMap", "platform-model-server-dashboard")
    assert dashboard.inputs["metadata"] == {
        "name": "model-server-dashboard",
        "namespace": "observability",
        "labels": {"grafana_dashboard": "1"},
    }
    assert dashboard.inputs["data"] == model.dashboards()
    checked = 0
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:core/v1:"):
            manifests.validate(record.inputs)
            checked += 1
    assert checked == 3


@pytest.mark.parametrize("protect", [True, False])
def test_release_holding_the_volumes_follows_protect(protect):
    monitor, _ = _run(protect=protect)
    for record in monitor.recorded:
        expected = protect and record.name == "platform-kube-prometheus-stack"
        assert (record.name, record.protect, record.retain_on_delete) == (
            record.name,
            expected,
            expected,
        )


def test_missing_provider_fails_before_anything_is_registered():
    errors = []

    def program():
        try:
            Observability("platform", ObservabilityArgs(config=CONFIG, kubernetes=None))
        except ValueError as exc:
            errors.append(str(exc))

    monitor = mocks.run(program)
    assert errors == ["ObservabilityArgs.kubernetes: a Kubernetes provider is required"]
    assert monitor.recorded == []


def test_receiver_credentials_secret_comes_before_the_release_and_stays_secret():
    from mlops_platform.components.monitoring import RetrainWebhook

    config = MonitoringConfig.model_validate(
        {
            "alerting": {
                "receivers": {
                    "team": {"type": "slack", "api_url": {"secure": "v1:x"}, "channel": "#ml"}
                }
            }
        }
    )
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        built["component"] = Observability(
            "platform",
            ObservabilityArgs(
                config=config,
                kubernetes=provider,
                retrain=RetrainWebhook(url="http://r:8080/alerts", token="generated-token"),
            ),
        )

    monitor = mocks.run(program)
    secret = named(monitor, "kubernetes:core/v1:Secret", "platform-receiver-credentials")
    assert secret.inputs["metadata"]["name"] == "alertmanager-receiver-credentials"
    assert secret.secret_inputs == {"stringData"}
    assert secret.inputs["stringData"] == {
        "platform-retrain-token": "generated-token",
        "team-api-url": "[secret]",  # offline, the ciphertext stays a placeholder
    }
    release = named(monitor, "kubernetes:helm.sh/v3:Release", "platform-kube-prometheus-stack")
    assert secret.urn in release.depends_on
    assert release.inputs["values"] == model.helm_values(config, "http://r:8080/alerts")
    assert "generated-token" not in json.dumps(release.inputs)
