"""Model serving, resource layer under recording mocks: exact types, names, inputs, parents."""

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.serving import ModelDeployment, ModelDeploymentArgs, ModelDeploymentConfig, model
from mlops import manifests, mocks
from tests.components.component_support import output_value, untranslated_keys

TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
CANARY = ModelDeploymentConfig.model_validate(
    {
        "stable": {"model_uri": "models:/churn@champion", "replicas": 3},
        "canary": {"model_uri": "models:/churn@challenger", "weight": 10},
        "mlflow_tracking_uri": TRACKING,
    }
)
STABLE_ONLY = ModelDeploymentConfig.model_validate(
    {"stable": {"model_uri": "models:/churn/4"}, "mlflow_tracking_uri": TRACKING}
)

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
SERVICE = "kubernetes:core/v1:Service"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"


def _run(config, name="churn", with_namespace=True):
    """Build one ModelDeployment; return the recording monitor and the component."""
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        opts = None
        if with_namespace:
            namespace = k8s.core.v1.Namespace(
                "serving-namespace",
                metadata={"name": config.namespace},
                opts=pulumi.ResourceOptions(provider=provider),
            )
            opts = pulumi.ResourceOptions(depends_on=[namespace])
        built["component"] = ModelDeployment(
            name, ModelDeploymentArgs(config=config, kubernetes=provider), opts
        )

    monitor = mocks.run(program)
    return monitor, built["component"]


def _children(monitor, name="churn"):
    parent = monitor.named(name).urn
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == parent)


def test_canary_creates_exactly_these_children():
    monitor, _ = _run(CANARY)
    component = monitor.named("churn")
    assert component.type == "mlops:serving:ModelDeployment"
    assert component.custom is False
    assert _children(monitor) == sorted(
        [
            (DEPLOYMENT, "churn-stable"),
            (DEPLOYMENT, "churn-canary"),
            (PDB, "churn-stable-pdb"),
            (PDB, "churn-canary-pdb"),
            (SERVICE, "churn-service"),
            (DESTINATION_RULE, "churn-destination-rule"),
            (VIRTUAL_SERVICE, "churn-virtual-service"),
            (POD_MONITOR, "churn-pod-monitor"),
        ]
    )


def test_stable_only_with_autoscaling():
    config = STABLE_ONLY.model_copy(update={"autoscaling": model.AutoscalingConfig()})
    monitor, _ = _run(config, name="fraud")
    assert _children(monitor, "fraud") == sorted(
        [
            (DEPLOYMENT, "fraud-stable"),
            (PDB, "fraud-stable-pdb"),
            (SERVICE, "fraud-service"),
            (DESTINATION_RULE, "fraud-destination-rule"),
            (VIRTUAL_SERVICE, "fraud-virtual-service"),
            (POD_MONITOR, "fraud-pod-monitor"),
            (HPA, "fraud-stable-hpa"),
        ]
    )
    hpa = monitor.named("fraud-stable-hpa")
    assert hpa.inputs["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "fraud-stable",
    }
    assert monitor.named("fraud-stable").urn in hpa.depends_on
    assert "replicas" not in monitor.named("fraud-stable").inputs["spec"]


def test_inputs_are_the_rendered_objects_on_the_explicit_provider():
    monitor, _ = _run(CANARY)
    rendered = model.render("churn", CANARY)
    expected = {
        "churn-stable": rendered.deployments["stable"],
        "churn-canary": rendered.deployments["canary"],
        "churn-stable-pdb": rendered.pod_disruption_budgets["stable"],
        "churn-canary-pdb": rendered.pod_disruption_budgets["canary"],
        "churn-service": rendered.service,
        "churn-destination-rule": rendered.destination_rule,
        "churn-virtual-service": rendered.virtual_service,
        "churn-pod-monitor": rendered.pod_monitor,
    }
    parent = monitor.named("churn").urn
    for child_name, obj in expected.items():
        record = monitor.named(child_name)
        assert record.inputs == obj, child_name
        assert record.parent == parent, child_name
        assert record.provider is not None and record.provider.endswith("::k8s::k8s-id")
        assert untranslated_keys(record.inputs) == [], child_name
        assert record.secret_inputs == set(), child_name


def test_built_in_objects_validate_as_registered(crds_dir):
    monitor, _ = _run(CANARY.model_copy(update={"autoscaling": model.AutoscalingConfig()}))
    checked = 0
    for record in monitor.recorded:
        if record.parent == monitor.named("churn").urn and "istio" not in record.type:
            manifests.validate(record.inputs)
            checked += 1
    assert checked == 7  # 2 Deployments, 2 PDBs, Service, PodMonitor, HPA


def test_deployments_serve_their_track():
    monitor, _ = _run(CANARY)
    for track, uri, replicas in (
        ("stable", "models:/churn@champion", 3),
        ("canary", "models:/churn@challenger", 1),
    ):
        record = monitor.named(f"churn-{track}")
        spec = record.inputs["spec"]
        assert record.inputs["metadata"]["name"] == f"churn-{track}"
        assert record.inputs["metadata"]["namespace"] == "serving"
        assert spec["replicas"] == replicas
        assert spec["selector"]["matchLabels"]["track"] == track
        [container] = spec["template"]["spec"]["containers"]
        assert container["image"] == "ghcr.io/mlops-platform/model-server:0.1.0"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["MLOPS_SERVE_MODEL_URI"] == uri
        assert env["MLOPS_SERVE_MODEL_NAME"] == "churn"
        assert env["MLFLOW_TRACKING_URI"] == TRACKING
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["template"]["spec"]["automountServiceAccountToken"] is False


def test_virtual_service_weights_and_ordering():
    monitor, _ = _run(CANARY)
    virtual_service = monitor.named("churn-virtual-service")
    assert virtual_service.inputs["apiVersion"] == "networking.istio.io/v1"
    assert virtual_service.inputs["kind"] == "VirtualService"
    route = virtual_service.inputs["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [
        ("stable", 90),
        ("canary", 10),
    ]
    # Traffic moves after the subsets exist and both rollouts are ready.
    for dependency in ("churn-destination-rule", "churn-stable", "churn-canary"):
        assert monitor.named(dependency).urn in virtual_service.depends_on
    destination_rule = monitor.named("churn-destination-rule")
    assert [s["name"] for s in destination_rule.inputs["spec"]["subsets"]] == [
        "stable",
        "canary",
    ]


def test_without_canary_everything_goes_to_stable():
    monitor, component = _run(STABLE_ONLY)
    route = monitor.named("churn-virtual-service").inputs["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [
        ("stable", 100),
        ("canary", 0),
    ]
    assert monitor.of_type(DEPLOYMENT) == [monitor.named("churn-stable")]
    assert output_value(component.canary_weight) == 0


def test_namespace_dependency_reaches_every_kubernetes_object():
    monitor, _ = _run(CANARY)
    namespace = monitor.named("serving-namespace").urn
    children = [r for r in monitor.recorded if r.parent == monitor.named("churn").urn]
    assert len(children) == 8
    for record in children:
        assert namespace in record.depends_on, record.name


def test_outputs():
    _, component = _run(CANARY)
    assert output_value(component.service_name) == "churn"
    assert output_value(component.namespace) == "serving"
    assert output_value(component.url) == "http://churn.serving.svc.cluster.local:8080"
    assert output_value(component.canary_weight) == 10
    assert output_value(component.model_name) == "churn"
    assert isinstance(component, pulumi.ComponentResource)


def test_other_namespace_and_port_reach_the_url():
    config = CANARY.model_copy(update={"namespace": "models", "port": 9000})
    monitor, component = _run(config, name="churn-eu")
    assert output_value(component.url) == "http://churn-eu.models.svc.cluster.local:9000"
    service = monitor.named("churn-eu-service").inputs
    assert service["metadata"]["namespace"] == "models"
    assert service["spec"]["ports"][0]["port"] == 9000


@pytest.mark.parametrize(
    ("name", "provider", "message"),
    [
        (
            "Churn",
            True,
            "serving.Churn: a deployment name is 1-56 lowercase letters, digits or '-', "
            "starting with a letter and ending with a letter or digit",
        ),
        ("churn", False, "ModelDeploymentArgs.kubernetes: a Kubernetes provider is required"),
    ],
)
def test_invalid_input_fails_before_anything_is_registered(name, provider, message):
    errors = []

    def program():
        kubernetes = k8s.Provider("k8s", kubeconfig="{}") if provider else None
        try:
            ModelDeployment(name, ModelDeploymentArgs(config=CANARY, kubernetes=kubernetes))
        except ValueError as exc:
            errors.append(str(exc))

    monitor = mocks.run(program)
    assert errors == [message]
    assert [r.type for r in monitor.recorded] == (["pulumi:providers:kubernetes"] * provider)
