"""The prediction log's Kafka producer: durable (`acks=all`) and idempotent, checked as a config,
as librdkafka accepts it, and against librdkafka's mock broker."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaException, Producer

from mlops_platform.model_server.kafka_security import security_config
from mlops_platform.model_server.prediction_log import KafkaSink, producer_config
from mlops_platform.model_server.settings import Settings


@pytest.fixture(scope="module")
def mock_bootstrap() -> Iterator[str]:
    # Three brokers, so the topic's partitions have replicas for `acks=all` to wait for.
    holder = Producer({"test.mock.num.brokers": 3, "log_level": 3})
    broker = next(iter(holder.list_topics(timeout=10).brokers.values()))
    yield f"{broker.host}:{broker.port}"
    holder.flush(1)


def test_producer_config_is_durable_and_idempotent() -> None:
    config = producer_config("k:9092", 1000, {"security.protocol": "PLAINTEXT"})
    assert config == {
        "bootstrap.servers": "k:9092",
        "client.id": "mlops-model-server",
        "linger.ms": 20,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1000,
        "message.timeout.ms": 30_000,
        "enable.idempotence": True,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        "security.protocol": "PLAINTEXT",
    }
    # librdkafka's own default (INT32_MAX) is what idempotence needs; 0 would be refused.
    assert "retries" not in config and "message.send.max.retries" not in config


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SSL"},
        {
            "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "MLOPS_SERVE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "MLOPS_SERVE_KAFKA_SASL_USERNAME": "model-server",
            "MLOPS_SERVE_KAFKA_SASL_PASSWORD": "pw",
        },
    ],
    ids=["plaintext", "tls", "scram"],
)
def test_librdkafka_accepts_the_producer_config_with_each_security_setting(
    env: dict[str, str],
) -> None:
    """librdkafka validates idempotence against acks, max.in.flight and retries when the
    producer is created; a contradicting property would raise here."""
    security = security_config(Settings.from_env(env))
    Producer(producer_config("127.0.0.1:1", 10, security)).flush(0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"acks": "1"}, "`acks` must be set to `all` when `enable.idempotence` is true"),
        ({"max.in.flight.requests.per.connection": 6}, "`max.in.flight` must be set <= 5"),
        ({"retries": 0}, "`retries` must be set >= 1"),
    ],
)
def test_settings_that_would_contradict_idempotence_are_refused(
    override: dict[str, object], message: str
) -> None:
    """Why the config leaves these as they are: librdkafka stops rather than silently
    weakening the guarantee."""
    config = {**producer_config("127.0.0.1:1", 10, {"security.protocol": "PLAINTEXT"})}
    with pytest.raises(KafkaException, match=message):
        Producer({**config, **override})


def test_sink_is_an_idempotent_producer_on_the_mock_broker(
    mock_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"predictions-{time.time_ns()}"
    drops: list[tuple[str, int]] = []
    caplog.set_level(logging.DEBUG, logger="mlops_platform.model_server.prediction_log")
    # `debug: eos` makes librdkafka log its idempotent-producer state machine.
    sink = KafkaSink(
        mock_bootstrap,
        topic,
        1000,
        lambda reason, n: drops.append((reason, n)),
        security={"security.protocol": "PLAINTEXT", "debug": "eos"},
    )
    records = [f'{{"i": {i}}}'.encode() for i in range(50)]
    sink.write(records, [b"same-key"] * len(records))
    sink.close(10)
    assert drops == []
    assert "'enable.idempotence': 'True'" in caplog.text and "'acks': 'all'" in caplog.text
    assert "Acquired PID" in caplog.text, "librdkafka never acquired a producer id"

    consumer = Consumer(
        {
            "bootstrap.servers": mock_bootstrap,
            "group.id": f"check-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
    )
    consumer.subscribe([topic])
    received: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        while len(received) < len(records) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                received.append(message.value())
    finally:
        consumer.close()
    # One key, one partition: every record exactly once, in order.
    assert received == records
