"""The retrain receiver's resource layer under recording mocks: types, names, inputs, parents."""

import pulumi
import pulumi_kubernetes as k8s
import pytest

from mlops_platform import mocks
from mlops_platform.components.loop import LoopConfig, RetrainReceiver, RetrainReceiverArgs, model
from tests.components.component_support import named, output_value, untranslated_keys

CONFIG = LoopConfig(namespace="loop")
BUCKET = "s3://mlops-test-datasets"
TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
KFP = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"


@pytest.fixture(scope="module")
def built():
    holder = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        holder["component"] = RetrainReceiver(
            "loop",
            RetrainReceiverArgs(
                config=CONFIG,
                kubernetes=provider,
                bucket_uri=pulumi.Output.from_input(BUCKET),
                tracking_uri=TRACKING,
                kfp_host=KFP,
                alertmanager_namespace="monitoring",
            ),
        )

    return mocks.run(program), holder["component"]


def test_creates_exactly_these_children_under_the_component(built):
    monitor, _ = built
    component = monitor.named("loop")
    assert component.type == "mlops:loop:RetrainReceiver"
    children = sorted((r.type, r.name) for r in monitor.recorded if r.parent == component.urn)
    assert children == [
        ("kubernetes:apps/v1:Deployment", "loop-deployment"),
        ("kubernetes:core/v1:Secret", "loop-token"),
        ("kubernetes:core/v1:Service", "loop-service"),
        ("kubernetes:core/v1:ServiceAccount", "loop-service-account"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "loop-network-policy"),
        ("random:index/randomPassword:RandomPassword", "loop-token"),
    ]
    provider = monitor.named("k8s").urn
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:") and record.parent == component.urn:
            assert record.provider.startswith(provider), record.name
            assert untranslated_keys(record.inputs) == [], record.name


def test_token_is_generated_secret_and_only_in_the_secret(built):
    monitor, component = built
    password = named(monitor, "random:index/randomPassword:RandomPassword", "loop-token")
    assert password.inputs == {"length": 48, "special": False}
    secret = named(monitor, "kubernetes:core/v1:Secret", "loop-token")
    assert secret.inputs["metadata"]["name"] == "retrain-receiver-token"
    assert secret.secret_inputs == {"stringData"}
    token = output_value(component.token)
    assert secret.inputs["stringData"] == {"token": token}
    deployment = named(monitor, "kubernetes:apps/v1:Deployment", "loop-deployment")
    assert token not in str(deployment.inputs)
    assert secret.urn in deployment.depends_on


def test_objects_are_the_models(built):
    monitor, component = built
    deployment = named(monitor, "kubernetes:apps/v1:Deployment", "loop-deployment")
    assert deployment.inputs["spec"] == model.deployment(CONFIG, BUCKET, TRACKING, KFP)["spec"]
    policy = named(monitor, "kubernetes:networking.k8s.io/v1:NetworkPolicy", "loop-network-policy")
    assert policy.inputs["spec"] == model.network_policy(CONFIG, "monitoring")["spec"]
    service = named(monitor, "kubernetes:core/v1:Service", "loop-service")
    assert service.inputs["spec"] == model.service(CONFIG)["spec"]
    assert output_value(component.url) == (
        "http://retrain-receiver.loop.svc.cluster.local:8080/alerts"
    )
