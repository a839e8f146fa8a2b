"""The loop's prediction-log consumer: its Deployment, per cloud, as the consumer accepts it."""

from __future__ import annotations

import pulumi_kubernetes as k8s
import pytest

from mlops_platform import manifests, mocks
from mlops_platform.components.kafka.model import KafkaClientWiring, KeyRef
from mlops_platform.components.loop import (
    LoopConfig,
    PredictionLogConsumer,
    PredictionLogConsumerArgs,
    consumer,
)
from mlops_platform.pipelines.loop.consumer_settings import ConsumerSettings

BUCKET = "s3://acme-mlops-dev-datasets"
MSK = KafkaClientWiring(
    namespace="mlops-loop",
    bootstrap_servers="b-1.msk:9098,b-2.msk:9098",
    security_protocol="SASL_SSL",
    sasl_mechanism="OAUTHBEARER",
    auth_method="aws-iam",
    read_topics=("labels", "predictions"),
    aws_region="us-east-1",
)
STRIMZI = KafkaClientWiring(
    namespace="mlops-loop",
    bootstrap_servers="mlops-kafka-kafka-bootstrap.kafka.svc.cluster.local:9093",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    auth_method="scram-sha-512",
    read_topics=("labels", "predictions"),
    username="prediction-log",
    password_secret=KeyRef(name="kafka-prediction-log", key="password"),
    ca_config_map=KeyRef(name="kafka-prediction-log-ca", key="ca.crt"),
)


def _deployment(kafka, secret=None):
    config = LoopConfig()
    return consumer.deployment(
        config.consumer, config.namespace, config.image, BUCKET, "predictions", kafka, secret
    )


@pytest.mark.parametrize("kafka", [MSK, STRIMZI], ids=["msk", "strimzi"])
def test_the_deployment_is_valid_and_its_env_is_what_the_consumer_accepts(kafka, crds_dir):
    obj = _deployment(kafka, "prediction-log-s3-credentials")
    manifests.validate(obj)
    [container] = obj["spec"]["template"]["spec"]["containers"]
    env = {var["name"]: var.get("value") for var in container["env"] if "value" in var}
    secret_env = {var["name"] for var in container["env"] if "valueFrom" in var}
    if kafka is STRIMZI:
        assert secret_env == {"MLOPS_CONSUMER_KAFKA_SASL_PASSWORD"}
        env["MLOPS_CONSUMER_KAFKA_SASL_PASSWORD"] = "from-the-secret"
    settings = ConsumerSettings.from_env(env)
    assert settings.topics == ["predictions", "labels"]
    assert settings.bucket_uri == BUCKET
    assert settings.metrics_host == "0.0.0.0"
    assert container["command"] == ["python", "-m", "mlops_platform.pipelines.loop.consumer"]
    assert container["envFrom"] == [{"secretRef": {"name": "prediction-log-s3-credentials"}}]


def test_scram_reads_its_password_from_the_secret_and_mounts_the_ca():
    obj = _deployment(STRIMZI)
    pod = obj["spec"]["template"]["spec"]
    [container] = pod["containers"]
    password = next(v for v in container["env"] if v["name"].endswith("SASL_PASSWORD"))
    assert password["valueFrom"] == {
        "secretKeyRef": {"name": "kafka-prediction-log", "key": "password"}
    }
    assert {"name": "kafka-ca", "mountPath": "/etc/kafka-ca", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert pod["serviceAccountName"] == "prediction-log"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "envFrom" not in container


def test_the_component_creates_one_deployment():
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        PredictionLogConsumer(
            "loop-consumer",
            PredictionLogConsumerArgs(
                config=LoopConfig(),
                kubernetes=provider,
                bucket_uri=BUCKET,
                predictions_topic="predictions",
                kafka=MSK,
            ),
        )

    monitor = mocks.run(program)
    component = monitor.named("loop-consumer")
    assert component.type == "mlops:loop:PredictionLogConsumer"
    children = [(r.type, r.name) for r in monitor.recorded if r.parent == component.urn]
    assert children == [("kubernetes:apps/v1:Deployment", "loop-consumer-deployment")]
