"""metrics-server: when a stack installs it, its values against the packaged chart, and the
component under mocks."""

import pytest
from component_support import named, untranslated_keys

from mlops_platform import mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.mesh.model import MeshConfig
from mlops_platform.components.metrics_server import (
    Decision,
    MetricsServer,
    MetricsServerArgs,
    decide,
    helm_values,
    hpa_sources,
)
from mlops_platform.components.serving.model import ModelDeploymentConfig
from mlops_platform.components.versions import KUBERNETES_VERSION, METRICS_SERVER
from tests.chart_support import chart_defaults, unknown_keys

AWS = AwsCloud(type="aws", region="eu-west-1")
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4")
KIND = LocalCloud(type="local", kube_context="kind-mlops", distribution="kind")
K3D = LocalCloud(type="local", kube_context="k3d-mlops", distribution="k3d")
MINIKUBE = LocalCloud(type="local", kube_context="minikube", distribution="minikube")

MODEL = {"model_uri": "models:/churn/1"}
TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"


def _serving(**deployments):
    return {
        key: ModelDeploymentConfig.model_validate(
            {"stable": MODEL, "mlflow_tracking_uri": TRACKING, **extra}
        )
        for key, extra in deployments.items()
    }


@pytest.mark.parametrize(
    ("serving", "mesh", "sources"),
    [
        ({}, {}, []),
        (_serving(churn={}), {}, []),
        (
            _serving(churn={"autoscaling": {"min_replicas": 2, "max_replicas": 6}}, fraud={}),
            {},
            ["serving.churn.autoscaling"],
        ),
        (
            _serving(churn={"progressive": {}}),
            {"istiod": {"replicas": 2, "max_replicas": 4}},
            ["serving.churn.progressive", "mesh.istiod.max_replicas"],
        ),
        # a disabled mesh installs no istiod, so no istiod HPA
        ({}, {"enabled": False, "istiod": {"max_replicas": 4}}, []),
    ],
)
def test_hpa_sources(serving, mesh, sources):
    assert hpa_sources(serving, MeshConfig.model_validate(mesh)) == sources


@pytest.mark.parametrize(
    ("cloud", "hpas", "decision"),
    [
        (AWS, [], Decision(False, "no HorizontalPodAutoscaler in the stack")),
        (
            AWS,
            ["serving.churn.autoscaling"],
            Decision(
                True,
                "HorizontalPodAutoscalers from serving.churn.autoscaling need "
                "metrics.k8s.io/v1beta1",
                replicas=2,
                system_pool=True,
            ),
        ),
        (
            GCP,
            ["serving.churn.autoscaling"],
            Decision(
                False,
                "the cluster serves metrics.k8s.io/v1beta1 already (GKE Standard: PD CSI driver, "
                "classes standard-rwo (default), premium-rwo and standard, a managed "
                "metrics-server)",
            ),
        ),
        (
            K3D,
            ["x"],
            Decision(
                False,
                "the cluster serves metrics.k8s.io/v1beta1 already (k3s packaged components: "
                "local-storage, metrics-server)",
            ),
        ),
        (
            KIND,
            ["x"],
            Decision(
                True,
                "HorizontalPodAutoscalers from x need metrics.k8s.io/v1beta1",
                replicas=1,
                kubelet_insecure_tls=True,
            ),
        ),
        (
            MINIKUBE,
            ["x"],
            Decision(
                True,
                "HorizontalPodAutoscalers from x need metrics.k8s.io/v1beta1",
                replicas=1,
                kubelet_insecure_tls=True,
            ),
        ),
    ],
    ids=lambda value: getattr(value, "type", None),
)
def test_decide(cloud, hpas, decision):
    assert decide(cloud, KUBERNETES_VERSION, hpas) == decision


CLOUD = decide(AWS, KUBERNETES_VERSION, ["x"])
LOCAL = decide(KIND, KUBERNETES_VERSION, ["x"])


def test_values_keys_exist_in_the_packaged_chart(charts_dir):
    defaults = chart_defaults(charts_dir, METRICS_SERVER)
    verbatim = frozenset({"securityContext", "podSecurityContext", "resources", "nodeSelector"})
    for decision in (CLOUD, LOCAL):
        assert unknown_keys(helm_values(decision), defaults, verbatim) == []
    assert unknown_keys({"replica": 1}, defaults) == ["replica"]


def test_values_are_pod_security_restricted():
    for decision in (CLOUD, LOCAL):
        values = helm_values(decision)
        container = values["securityContext"]
        assert container["allowPrivilegeEscalation"] is False
        assert container["runAsNonRoot"] is True
        assert container["capabilities"] == {"drop": ["ALL"]}
        assert container["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["readOnlyRootFilesystem"] is True
        assert values["podSecurityContext"] == {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert "memory" in values["resources"]["limits"]


def test_cloud_values_are_highly_available_on_the_system_pool():
    values = helm_values(CLOUD)
    assert values["replicas"] == 2
    assert values["args"] == []  # kubelet certificates are verified
    assert values["nodeSelector"] == {"mlops.dev/node-pool": "system"}
    assert values["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
    assert [c["topologyKey"] for c in values["topologySpreadConstraints"]] == [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    ]
    assert values["topologySpreadConstraints"][0]["labelSelector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "metrics-server",
            "app.kubernetes.io/instance": "metrics-server",
        }
    }


def test_local_values_skip_kubelet_tls_and_run_one_replica():
    values = helm_values(LOCAL)
    assert values["replicas"] == 1
    assert values["args"] == ["--kubelet-insecure-tls"]
    assert "nodeSelector" not in values  # local nodes carry no pool label
    assert "podDisruptionBudget" not in values


def test_component_installs_the_pinned_chart_in_kube_system():
    def program():
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("k8s", context="kind-mlops")
        MetricsServer("metrics", MetricsServerArgs(decision=CLOUD, kubernetes=provider))

    monitor = mocks.run(program)
    component = named(monitor, "mlops:metrics:MetricsServer", "metrics")
    assert component.type == "mlops:metrics:MetricsServer"
    release = named(monitor, "kubernetes:helm.sh/v3:Release", "metrics")
    assert release.parent_name == "metrics"
    assert release.provider.split("::")[-2] == "k8s"
    inputs = release.inputs
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]) == (
        "metrics-server",
        "3.13.1",
        {"repo": "https://kubernetes-sigs.github.io/metrics-server/"},
    )
    assert (inputs["name"], inputs["namespace"]) == ("metrics-server", "kube-system")
    assert inputs["values"] == helm_values(CLOUD)
    assert untranslated_keys({k: v for k, v in inputs.items() if k != "values"}) == []


def test_component_refuses_a_decision_not_to_install():
    def program():
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("k8s", context="kind-mlops")
        MetricsServer(
            "metrics",
            MetricsServerArgs(decision=Decision(False, "GKE has one"), kubernetes=provider),
        )

    with pytest.raises(Exception) as info:
        mocks.run(program)
    assert "MetricsServer metrics: nothing to install (GKE has one)" in str(info.value)
