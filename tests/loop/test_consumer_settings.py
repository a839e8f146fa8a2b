"""The consumer's settings registry: defaults, required values, the model server's Kafka
security checks under the consumer's names, the librdkafka config, and the README table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlops_platform.model_server.kafka_security import AwsMskIamToken, GcpIamToken
from mlops_platform.model_server.settings import SettingsError
from mlops_platform.pipelines.loop.consumer import consumer_config
from mlops_platform.pipelines.loop.consumer_settings import (
    REGISTRY,
    ConsumerSettings,
    settings_table,
)

README = Path(__file__).resolve().parents[2] / "mlops_platform" / "pipelines" / "loop" / "README.md"
PASSWORD = "consumer-s3cr3t-do-not-leak"
BASE = {
    "MLOPS_CONSUMER_BUCKET_URI": "s3://mlops-datasets",
    "MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS": "k:9092",
}
SCRAM = {
    **BASE,
    "MLOPS_CONSUMER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "MLOPS_CONSUMER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "MLOPS_CONSUMER_KAFKA_SASL_USERNAME": "prediction-windows",
    "MLOPS_CONSUMER_KAFKA_SASL_PASSWORD": PASSWORD,
    "MLOPS_CONSUMER_KAFKA_CA_FILE": "/etc/kafka-ca/ca.crt",
}


def test_defaults() -> None:
    s = ConsumerSettings.from_env(BASE)
    assert (s.predictions_topic, s.labels_topic, s.group_id) == (
        "predictions",
        "labels",
        "mlops-prediction-windows",
    )
    assert (s.flush_rows, s.flush_seconds, s.write_attempts) == (50_000, 300.0, 3)
    assert (s.metrics_host, s.metrics_port, s.kafka_security_protocol) == (
        "127.0.0.1",
        9400,
        "PLAINTEXT",
    )
    assert s.topics == ["predictions", "labels"]
    assert ConsumerSettings.from_env({**BASE, "MLOPS_CONSUMER_LABELS_TOPIC": "none"}).topics == [
        "predictions"
    ]


def test_every_variable_has_the_consumer_prefix_and_a_description() -> None:
    assert all(v.name.startswith("MLOPS_CONSUMER_") and v.description for v in REGISTRY)
    assert len({v.name for v in REGISTRY}) == len(REGISTRY)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MLOPS_CONSUMER_BUCKET_URI must be set"),
        (
            {"MLOPS_CONSUMER_BUCKET_URI": "gs://b"},
            "MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS must be set",
        ),
        (
            {**BASE, "MLOPS_CONSUMER_LABELS_TOPIC": "predictions"},
            "MLOPS_CONSUMER_LABELS_TOPIC must differ from MLOPS_CONSUMER_PREDICTIONS_TOPIC "
            "(both 'predictions')",
        ),
        ({**BASE, "MLOPS_CONSUMER_FLUSH_ROWS": "0"}, "MLOPS_CONSUMER_FLUSH_ROWS=0 must be >= 1"),
        (
            {**BASE, "MLOPS_CONSUMER_FLUSH_SECONDS": "soon"},
            "MLOPS_CONSUMER_FLUSH_SECONDS='soon' is not a valid float: could not convert string "
            "to float: 'soon'",
        ),
        (
            {**SCRAM, "MLOPS_CONSUMER_KAFKA_SECURITY_PROTOCOL": "SSL"},
            "MLOPS_CONSUMER_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 needs "
            "MLOPS_CONSUMER_KAFKA_SECURITY_PROTOCOL=SASL_SSL, not SSL",
        ),
        (
            {**SCRAM, "MLOPS_CONSUMER_KAFKA_SASL_PASSWORD": ""},
            "MLOPS_CONSUMER_KAFKA_SASL_PASSWORD must be set when "
            "MLOPS_CONSUMER_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
        ),
        (
            {
                **BASE,
                "MLOPS_CONSUMER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "MLOPS_CONSUMER_KAFKA_SASL_MECHANISM": "OAUTHBEARER-AWS-MSK-IAM",
            },
            "MLOPS_CONSUMER_KAFKA_AWS_REGION (or AWS_REGION) must be set when "
            "MLOPS_CONSUMER_KAFKA_SASL_MECHANISM=OAUTHBEARER-AWS-MSK-IAM",
        ),
        (
            {**SCRAM, "MLOPS_CONSUMER_KAFKA_SASL_MECHANISM": "OAUTHBEARER-GCP-IAM"},
            "MLOPS_CONSUMER_KAFKA_SASL_USERNAME and MLOPS_CONSUMER_KAFKA_SASL_PASSWORD are only "
            "used with MLOPS_CONSUMER_KAFKA_SASL_MECHANISM=SCRAM-SHA-256 or SCRAM-SHA-512, not "
            "OAUTHBEARER-GCP-IAM",
        ),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        ConsumerSettings.from_env(env)
    assert str(err.value) == message
    assert PASSWORD not in str(err.value)


def test_consumer_config_commits_by_hand_and_starts_at_the_oldest_record() -> None:
    assert consumer_config(ConsumerSettings.from_env(BASE)) == {
        "bootstrap.servers": "k:9092",
        "group.id": "mlops-prediction-windows",
        "client.id": "mlops-prediction-windows",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "security.protocol": "PLAINTEXT",
    }


def test_security_is_the_model_servers_for_each_cloud() -> None:
    scram = ConsumerSettings.from_env(SCRAM)
    assert PASSWORD not in repr(scram)
    config = consumer_config(scram)
    assert {k: config[k] for k in config if k.startswith(("sasl", "ssl", "security"))} == {
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": "/etc/kafka-ca/ca.crt",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "prediction-windows",
        "sasl.password": PASSWORD,
    }
    msk = {
        **BASE,
        "MLOPS_CONSUMER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "MLOPS_CONSUMER_KAFKA_SASL_MECHANISM": "OAUTHBEARER-AWS-MSK-IAM",
        "AWS_REGION": "eu-west-1",  # what EKS injects into IRSA pods
    }
    callback = consumer_config(ConsumerSettings.from_env(msk))["oauth_cb"]
    assert type(callback) is AwsMskIamToken and callback.region == "eu-west-1"
    gcp = {**msk, "MLOPS_CONSUMER_KAFKA_SASL_MECHANISM": "OAUTHBEARER-GCP-IAM"}
    assert type(consumer_config(ConsumerSettings.from_env(gcp))["oauth_cb"]) is GcpIamToken


def test_readme_settings_table_is_generated_from_the_registry() -> None:
    text = README.read_text()
    match = re.search(r"^\| Variable \| Type \| Default \| Description \|\n(?:\|.*\n)+", text, re.M)
    assert match, f"{README} has no settings table"
    assert match.group(0).rstrip("\n") == settings_table(), (
        "the settings table in mlops_platform/pipelines/loop/README.md is stale: run `uv run mlops docs`"
    )
