"""The server as a process: registry URIs, Kafka prediction log, SIGTERM drain, start-up failure."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving_support import (
    build_slow_model,
    free_port,
    metric,
    register_churn,
    split_payload,
    start_server,
    stop_server,
    wait_ready,
)

TOPIC = "predictions"


@pytest.fixture(scope="module")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka-protocol broker on 127.0.0.1: librdkafka's built-in mock cluster.

    No Kafka broker can be installed on this machine (no JVM distribution in apt or PyPI);
    the mock cluster implements the broker side of the real wire protocol over TCP, so the
    server's producer and the test's consumer talk to it as they would to Kafka.
    """
    from confluent_kafka import Producer

    holder = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    brokers = holder.list_topics(timeout=10).brokers
    broker = next(iter(brokers.values()))
    yield f"{broker.host}:{broker.port}"
    holder.flush(1)


@pytest.fixture(scope="module")
def registry_uri(churn_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    return register_churn(churn_model["path"], tmp_path_factory.mktemp("tracking"))


def consume(bootstrap: str, n: int, timeout: float = 30) -> list[Any]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
    )
    consumer.subscribe([TOPIC])
    messages = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < n and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            messages.append(message)
    finally:
        consumer.close()
    return messages


def test_registry_alias_and_kafka_prediction_log(
    churn_model: dict[str, Any], registry_uri: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    server = start_server(
        "models:/churn@champion",
        tmp_path,
        {
            "MLFLOW_TRACKING_URI": registry_uri,
            "MLOPS_SERVE_PREDICTION_SINK": "kafka",
            "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        },
    )
    try:
        meta = server.get("/v2/models/churn").body
        assert (meta["name"], meta["versions"]) == ("churn", ["1"])
        frame = churn_model["frame"]
        expected = churn_model["model"].predict(frame.head(3)).tolist()
        for i in range(3):
            response = server.post("/invocations", split_payload(frame.iloc[i : i + 1]))
            assert response.body == {"predictions": [expected[i]]}
        messages = consume(kafka_bootstrap, 3)
        assert len(messages) == 3
        records = sorted((json.loads(m.value()) for m in messages), key=lambda r: r["timestamp"])
        for message in messages:
            assert message.key().decode() == json.loads(message.value())["request_id"]
        assert [r["predictions"] for r in records] == [[label] for label in expected]
        assert {(r["model"], r["version"]) for r in records} == {("churn", "1")}
        assert [r["features"]["plan"] for r in records] == [[p] for p in frame["plan"].head(3)]
        text = server.metrics()
        assert metric(text, "model_server_prediction_log_written_total", version="1") == 3
        assert "model_server_prediction_log_dropped_total{" not in text
    finally:
        assert stop_server(server) == 0


def test_unreachable_kafka_never_blocks_or_fails_requests(
    churn_model: dict[str, Any], tmp_path: Path
) -> None:
    server = start_server(
        churn_model["path"],
        tmp_path,
        {
            "MLOPS_SERVE_PREDICTION_SINK": "kafka",
            "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",  # nobody there
            "MLOPS_SERVE_KAFKA_BUFFER_MESSAGES": "5",
            "MLOPS_SERVE_DRAIN_SECONDS": "2",
        },
    )
    try:
        body = split_payload(churn_model["frame"].head(1))
        started = time.monotonic()
        statuses = [server.post("/invocations", body).status for _ in range(20)]
        assert statuses == [200] * 20
        assert time.monotonic() - started < 10
        deadline = time.monotonic() + 10
        dropped = 0.0
        while time.monotonic() < deadline:
            try:
                dropped = metric(
                    server.metrics(),
                    "model_server_prediction_log_dropped_total",
                    reason="kafka_buffer_full",
                )
            except AssertionError:
                dropped = 0.0
            if dropped >= 15:
                break
            time.sleep(0.2)
        # 5 records fit the producer's buffer; the other 15 are dropped and counted.
        assert dropped == 15
        stopping = time.monotonic()
        assert stop_server(server) == 0
        assert time.monotonic() - stopping < 6  # the 2 s drain budget bounds the flush
    finally:
        stop_server(server)


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    model = build_slow_model(tmp_path)
    server = start_server(model, tmp_path)
    result: dict[str, Any] = {}

    def slow_request() -> None:
        result["response"] = server.post("/invocations", {"inputs": {"sleep": 2.0}})

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.7)  # the request is now inside the model
    server.proc.send_signal(signal.SIGTERM)
    thread.join(timeout=15)
    assert result["response"].status == 200
    assert result["response"].body == {"predictions": [1.0]}
    assert server.proc.wait(timeout=20) == 0
    with pytest.raises(OSError):
        server.get("/v2/health/live")


def test_an_unwritable_prediction_file_stops_the_server(
    churn_model: dict[str, Any], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    server = start_server(
        churn_model["path"],
        tmp_path,
        {"MLOPS_SERVE_PREDICTION_FILE": str(blocker / "predictions.jsonl")},
        wait=False,
    )
    assert server.proc.wait(timeout=60) == 1
    path = str(blocker / "predictions.jsonl")
    assert (
        f"mlops serve: start-up failed: MLOPS_SERVE_PREDICTION_FILE={path!r}: cannot open the "
        "prediction file for appending: File exists (set MLOPS_SERVE_PREDICTION_FILE to a "
        "writable path" in server.log()
    )


def test_ready_only_after_load(churn_model: dict[str, Any], tmp_path: Path) -> None:
    server = start_server(churn_model["path"], tmp_path, wait=False)
    try:
        seen_live_not_ready = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                live = server.get("/v2/health/live").status
                ready = server.get("/v2/health/ready").status
            except OSError:
                time.sleep(0.05)
                continue
            if live == 200 and ready == 503:
                response = server.post("/invocations", {"inputs": {}})
                # 503 while loading; anything else only if it became ready meanwhile.
                if response.status == 503:
                    assert response.body["message"].startswith("the model is not loaded yet: ")
                    assert response.headers["retry-after"] == "1"
                    seen_live_not_ready = True
                else:
                    assert server.get("/v2/health/ready").status == 200
            if ready == 200:
                break
        wait_ready(server)
        assert seen_live_not_ready, "the server was never live-but-not-ready during the load"
    finally:
        stop_server(server)


def test_serve_cli_errors(tmp_path: Path) -> None:
    import argparse

    from mlops_platform.model_server import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.main(parser.parse_args([])) == 2
    assert cli.main(parser.parse_args(["--model-uri", "x", "--port", "-5"])) == 2
