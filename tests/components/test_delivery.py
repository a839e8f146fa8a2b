"""Progressive delivery: Flagger and its load tester, values checked against the pinned charts,
and the component under recording mocks."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pydantic import ValidationError

from mlops_platform import manifests, mocks
from mlops_platform.components import versions
from mlops_platform.components.delivery import (
    DeliveryConfig,
    ProgressiveDelivery,
    ProgressiveDeliveryArgs,
    model,
)
from mlops_platform.components.kube import restricted_container_security
from tests.chart_support import chart_defaults, unknown_keys

PROMETHEUS = "http://monitoring-prometheus.monitoring.svc.cluster.local:9090"
ENABLED = DeliveryConfig(enabled=True)


def test_defaults_and_validation():
    assert DeliveryConfig().enabled is False
    assert ENABLED.namespace == "flagger-system" and ENABLED.replicas == 1
    with pytest.raises(ValidationError, match="namespace 'kube-system' is a Kubernetes system"):
        DeliveryConfig(namespace="kube-system")
    with pytest.raises(ValidationError, match="replicas"):
        DeliveryConfig(replicas=0)
    with pytest.raises(ValidationError, match="memory"):
        DeliveryConfig.model_validate(
            {"resources": {"memory_request": "1Gi", "memory_limit": "512Mi"}}
        )


def test_every_value_exists_in_the_pinned_charts(charts_dir):
    flagger = chart_defaults(charts_dir, versions.FLAGGER)
    loadtester = chart_defaults(charts_dir, versions.FLAGGER_LOADTESTER)
    # Both charts render these with toYaml (templates/deployment.yaml).
    verbatim = frozenset({"securityContext.context", "resources"})
    assert unknown_keys(model.flagger_values(ENABLED, PROMETHEUS), flagger, verbatim) == []
    assert unknown_keys(model.load_tester_values(ENABLED), loadtester, verbatim) == []
    assert unknown_keys({"nope": 1, "image": {"tagg": "x"}}, flagger) == ["nope", "image.tagg"]


def test_flagger_values():
    values = model.flagger_values(DeliveryConfig(enabled=True, replicas=2), PROMETHEUS)
    assert values["meshProvider"] == "istio"
    assert values["metricsServer"] == PROMETHEUS
    assert values["configTracking"] == {"enabled": True}
    assert values["leaderElection"] == {"enabled": True, "replicaCount": 2}
    assert model.flagger_values(ENABLED, PROMETHEUS)["leaderElection"]["enabled"] is False


@pytest.mark.parametrize(
    ("values", "user", "group"),
    [
        (model.flagger_values(ENABLED, PROMETHEUS), 10001, 10001),
        (model.load_tester_values(ENABLED), 100, 101),
    ],
)
def test_both_pods_pass_pod_security_restricted(values, user, group):
    assert values["securityContext"] == {
        "enabled": True,
        "context": {**restricted_container_security(user), "runAsGroup": group},
    }


def test_load_tester_has_a_sidecar_and_a_writable_tmp():
    values = model.load_tester_values(ENABLED)
    assert values["podLabels"] == {"sidecar.istio.io/inject": "true"}
    assert values["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert model.load_tester_url(ENABLED) == "http://flagger-loadtester.flagger-system/"


def test_namespace_is_restricted(crds_dir):
    namespace = model.namespace_manifest(ENABLED)
    manifests.validate(namespace)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_component_installs_both_charts_into_its_namespace():
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        ProgressiveDelivery(
            "delivery",
            ProgressiveDeliveryArgs(config=ENABLED, prometheus_url=PROMETHEUS, kubernetes=provider),
        )

    monitor = mocks.run(program)
    component = monitor.named("delivery")
    assert component.type == "mlops:delivery:ProgressiveDelivery"
    children = sorted((r.type, r.name) for r in monitor.recorded if r.parent == component.urn)
    assert children == [
        ("kubernetes:core/v1:Namespace", "delivery-namespace"),
        ("kubernetes:helm.sh/v3:Release", "delivery-flagger"),
        ("kubernetes:helm.sh/v3:Release", "delivery-load-tester"),
    ]
    releases = {r.name: r.inputs for r in monitor.of_type("kubernetes:helm.sh/v3:Release")}
    flagger = releases["delivery-flagger"]
    assert (flagger["chart"], flagger["version"], flagger["name"], flagger["namespace"]) == (
        "flagger",
        "1.44.0",
        "flagger",
        "flagger-system",
    )
    assert flagger["repositoryOpts"] == {"repo": "https://flagger.app"}
    assert flagger["values"]["metricsServer"] == PROMETHEUS
    tester = releases["delivery-load-tester"]
    assert (tester["chart"], tester["version"], tester["name"]) == (
        "loadtester",
        "0.38.0",
        "flagger-loadtester",
    )


def test_disabled_config_is_refused():
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        ProgressiveDelivery(
            "delivery",
            ProgressiveDeliveryArgs(
                config=DeliveryConfig(), prometheus_url=PROMETHEUS, kubernetes=provider
            ),
            pulumi.ResourceOptions(),
        )

    with pytest.raises(Exception, match=r"delivery\.enabled"):
        mocks.run(program)
