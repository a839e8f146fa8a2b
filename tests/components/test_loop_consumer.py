"""The loop's prediction-log consumer: its Deployment, per cloud, as the consumer accepts it."""

from __future__ import annotations

import pulumi_kubernetes as k8s
import pytest

from mlops_platform import manifests, mocks
from mlops_platform.components import kube
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
def test_the_deployment_is_valid_and_its_env_is_what_the_consumer_accepts(
    kafka, crds_dir, tmp_path
):
    obj = _deployment(kafka, "prediction-log-s3-credentials")
    manifests.validate(obj)
    pod = obj["spec"]["template"]["spec"]
    [container] = pod["containers"]
    # No secret in the environment: the password and the MinIO keys are mounted files.
    assert kube.secret_env_vars(container) == []
    env = {var["name"]: var["value"] for var in container["env"]}
    if kafka is STRIMZI:
        path = env["MLOPS_CONSUMER_KAFKA_SASL_PASSWORD_FILE"]
        assert path == "/var/run/secrets/mlops/kafka-password/password"
        (tmp_path / "password").write_text("from-the-secret\n")
        env["MLOPS_CONSUMER_KAFKA_SASL_PASSWORD_FILE"] = str(tmp_path / "password")
    settings = ConsumerSettings.from_env(env)
    if kafka is STRIMZI:
        assert settings.kafka_sasl_password == "from-the-secret"
    assert settings.topics == ["predictions", "labels"]
    assert settings.bucket_uri == BUCKET
    assert settings.metrics_host == "0.0.0.0"
    assert container["command"] == ["python", "-m", "mlops_platform.pipelines.loop.consumer"]
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == (
        "/var/run/secrets/mlops/object-store-credentials/credentials"
    )
    assert env["AWS_CONFIG_FILE"] == "/var/run/secrets/mlops/object-store-credentials/config"
    assert pod["volumes"][-1]["secret"]["secretName"] == "prediction-log-s3-credentials"


def test_scram_reads_its_password_from_the_secret_and_mounts_the_ca():
    obj = _deployment(STRIMZI)
    pod = obj["spec"]["template"]["spec"]
    [container] = pod["containers"]
    password = next(v for v in container["env"] if "SASL_PASSWORD" in v["name"])
    assert password == {
        "name": "MLOPS_CONSUMER_KAFKA_SASL_PASSWORD_FILE",
        "value": "/var/run/secrets/mlops/kafka-password/password",
    }
    assert {
        "name": "kafka-password",
        "secret": {
            "secretName": "kafka-prediction-log",
            "defaultMode": 0o440,
            "items": [{"key": "password", "path": "password"}],
        },
    } in pod["volumes"]
    assert {
        "name": "kafka-password",
        "mountPath": "/var/run/secrets/mlops/kafka-password",
        "readOnly": True,
    } in container["volumeMounts"]
    assert pod["securityContext"]["fsGroup"] == 10001
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
