"""The consumer against real Kafka-protocol brokers (librdkafka's mock cluster on 127.0.0.1)
and S3 (moto's server on 127.0.0.1): records produced by the model server's own producer code,
Parquet windows read back, malformed records, labels joined, flushes by size, age and SIGTERM,
and a crash between the write and the commit (at-least-once: no loss, duplicates dropped).

No Kafka broker can be installed here (no JVM); the mock cluster implements the broker side of
the wire protocol, consumer groups and offset commits included.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from mlops_platform.model_server.prediction_log import KafkaSink, LoggedBatch, PredictionLog
from mlops_platform.pipelines.loop import windows
from mlops_platform.pipelines.loop.consumer import ConsumerMetrics, WindowConsumer, consumer_config
from mlops_platform.pipelines.loop.consumer_settings import ConsumerSettings

REPO = Path(__file__).resolve().parents[2]
BUCKET = "mlops-datasets"
KEY = "testing"
SECRET = "tok-3xfiltrate-me"
T0 = datetime(2026, 12, 4, 9, 58, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    holder = Producer({"test.mock.num.brokers": 3, "log_level": 3})
    broker = next(iter(holder.list_topics(timeout=10).brokers.values()))
    yield f"{broker.host}:{broker.port}"
    holder.flush(1)


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """moto's S3 with the datasets bucket; what a MinIO workload gets from its identity's
    Secret: the AWS SDKs' credentials and config files (endpoint), mounted, nothing secret
    in the environment."""
    import boto3
    from moto.server import ThreadedMotoServer

    from mlops_platform.components.identity import model as identity

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    mounted = tmp_path_factory.mktemp("object-store-credentials")
    (mounted / "credentials").write_text(identity.aws_credentials_file(KEY, KEY))
    (mounted / "config").write_text(identity.aws_config_file(endpoint))
    files = {
        var["name"]: var["value"].replace(
            "/var/run/secrets/mlops/object-store-credentials", str(mounted)
        )
        for var in identity.credential_files("loop").env
    }
    assert sorted(files) == ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"]
    env = {**files, "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=KEY,
    ).create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        server.stop()


def topics() -> tuple[str, str]:
    suffix = time.time_ns()
    return f"predictions-{suffix}", f"labels-{suffix}"


def produce_predictions(bootstrap: str, topic: str, batches: list[tuple[datetime, list[str]]]):
    """Each batch: one predict call at that time, one 2-row request per id; produced by the
    model server's own encoder and Kafka sink."""
    log = PredictionLog.__new__(PredictionLog)
    log.model_name, log.model_version = "churn", "7"
    drops: list[Any] = []
    sink = KafkaSink(bootstrap, topic, 10_000, lambda *a: drops.append(a))
    for when, ids in batches:
        n = 2 * len(ids)
        batch = LoggedBatch(
            timestamp=when.timestamp(),
            request_ids=ids,
            row_counts=[2] * len(ids),
            columns={
                "tenure_days": np.arange(n, dtype=np.int64),
                "plan": np.array(["basic", "gold"] * len(ids), dtype=object),
            },
            predictions=[1, 0] * len(ids),
            scores=np.full(n, 0.25),
        )
        records, keys = log.encode(batch)
        sink.write(records, keys)
    sink.close(10)
    assert drops == []


def produce_raw(bootstrap: str, topic: str, values: list[bytes | None]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "log_level": 3})
    for value in values:
        producer.produce(topic, value=value, key=b"k")
    assert producer.flush(10) == 0


def label(request_id: str, value: int, when: datetime, row: int = 0) -> bytes:
    return orjson.dumps(
        {"request_id": request_id, "row": row, "label": value, "timestamp": when.timestamp()}
    )


def committed(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(sum of committed offsets, sum of high watermarks) over the topic's partitions."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in partitions]
        done = sum(max(0, tp.offset) for tp in probe.committed(tps, timeout=10))
        high = sum(probe.get_watermark_offsets(tp, timeout=10)[1] for tp in tps)
    finally:
        probe.close()
    return done, high


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except KafkaException:  # a probe timing out on a loaded machine: ask again
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def metric_value(text: str, name: str, labels: str = "") -> float:
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} " if labels else f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- the process: S3 through moto, malformed records, labels, SIGTERM --------------------------


def test_consumer_process_writes_s3_windows_and_flushes_on_sigterm(
    bootstrap: str, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    predictions, labels = topics()
    group = f"windows-{time.time_ns()}"
    produce_predictions(
        bootstrap,
        predictions,
        [(T0, ["r1", "r2"]), (T0 + timedelta(minutes=3), ["r3"])],  # 09:58 and 10:01
    )
    produce_raw(
        bootstrap,
        predictions,
        [
            b"{definitely not json " + SECRET.encode(),
            orjson.dumps({"model": "churn", "api_key": SECRET}),  # no version etc.
            orjson.dumps({"model": "churn", "version": "7"}),
            None,
        ],
    )
    produce_raw(
        bootstrap,
        labels,
        [
            label("r1", 1, T0 + timedelta(minutes=30), row=0),
            label("r3", 0, T0 + timedelta(minutes=31), row=1),
            b'{"request_id": "r2"}',
        ],
    )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        **s3_env,
        "MLOPS_CONSUMER_BUCKET_URI": f"s3://{BUCKET}/loop",
        "MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MLOPS_CONSUMER_PREDICTIONS_TOPIC": predictions,
        "MLOPS_CONSUMER_LABELS_TOPIC": labels,
        "MLOPS_CONSUMER_GROUP_ID": group,
        # Neither size nor age triggers a flush here: only SIGTERM does.
        "MLOPS_CONSUMER_FLUSH_ROWS": "100000",
        "MLOPS_CONSUMER_FLUSH_SECONDS": "3600",
        "MLOPS_CONSUMER_METRICS_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_platform.pipelines.loop.consumer"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def scraped() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                return ""

        name = "mlops_prediction_windows_records_consumed_total"
        wait_for(
            lambda: (
                metric_value(scraped(), name, f'topic="{predictions}"') == 7
                and metric_value(scraped(), name, f'topic="{labels}"') == 3
            ),
            60,
            "the consumer to read all 10 records",
        )
        before = scraped()
        assert metric_value(before, "mlops_prediction_windows_buffered_rows") == 8  # 6 + 2
        assert committed(bootstrap, group, predictions)[0] == 0  # nothing written yet
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err[-3000:]

    # Every offset, the malformed records' too, is committed after the flush.
    for topic in (predictions, labels):
        done, high = committed(bootstrap, group, topic)
        assert done == high == (7 if topic == predictions else 3)

    # Malformed records: counted by reason, logged once per reason, payload never logged.
    for reason in ("invalid_json", "missing_field"):
        assert f"skipping malformed record ({reason}) at {predictions}" in err
    assert err.count("skipping malformed record (missing_field)") == 2  # predictions, labels
    assert "value: not JSON (at character 1)" in err and "version: missing" in err
    assert SECRET not in err and KEY not in err

    import boto3

    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    # A fresh session, as a pod's process: boto3's default one read its config files before.
    s3 = boto3.session.Session().client("s3")
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="loop/")["Contents"]
    keys = sorted(o["Key"] for o in listed)
    assert [k.rsplit("/", 1)[0] for k in keys] == [
        "loop/labels/date=2026-12-04/hour=10",
        "loop/predictions/model=churn/date=2026-12-04/hour=09",
        "loop/predictions/model=churn/date=2026-12-04/hour=10",
    ]
    assert all(k.rsplit("/", 1)[1].endswith(".parquet") for k in keys)

    frame = windows.read_labelled(
        f"s3://{BUCKET}/loop", "churn", T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    )
    assert list(zip(frame["_request_id"], frame["_row"], strict=True)) == [
        ("r1", 0),
        ("r1", 1),
        ("r2", 0),
        ("r2", 1),
        ("r3", 0),
        ("r3", 1),
    ]
    assert frame["tenure_days"].tolist() == [0, 1, 2, 3, 0, 1]
    assert frame["plan"].tolist() == ["basic", "gold"] * 3
    assert frame["_prediction"].tolist() == [1, 0] * 3
    assert frame["_version"].unique().tolist() == ["7"]
    assert frame["label"].tolist()[0] == 1 and frame["label"].tolist()[5] == 0
    assert frame["label"].isna().tolist() == [False, True, True, True, True, False]
    drift = windows.drift_frame(frame, labelled_only=True)
    assert drift.to_dict("list") == {
        "tenure_days": [0, 1],
        "plan": ["basic", "gold"],
        "snapshot_date": [
            T0.replace(tzinfo=None),
            (T0 + timedelta(minutes=3)).replace(tzinfo=None),
        ],
        "churned": [1, 0],
    }


# -- in-process: flush by size and age, crash before commit -------------------------------------


def settings(bootstrap: str, bucket: Path, predictions: str, labels: str, **extra: str):
    return ConsumerSettings.from_env(
        {
            "MLOPS_CONSUMER_BUCKET_URI": str(bucket),
            "MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MLOPS_CONSUMER_PREDICTIONS_TOPIC": predictions,
            "MLOPS_CONSUMER_LABELS_TOPIC": labels,
            "MLOPS_CONSUMER_GROUP_ID": f"windows-{time.time_ns()}",
            **extra,
        }
    )


def parquet_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet"))


def run_in_thread(
    consumer: WindowConsumer, kafka: Any = None
) -> tuple[threading.Event, threading.Thread, list]:
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            consumer.run(stop, kafka)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return stop, thread, errors


def test_flush_by_size_then_by_age_commits_after_each_write(bootstrap: str, tmp_path: Path) -> None:
    predictions, labels = topics()
    s = settings(
        bootstrap,
        tmp_path,
        predictions,
        labels,
        # 6: the size flush waits for all three records (a flush of the first two would
        # leave the third to an age flush that could pass for the one checked below).
        MLOPS_CONSUMER_FLUSH_ROWS="6",
        MLOPS_CONSUMER_FLUSH_SECONDS="2",
    )
    metrics = ConsumerMetrics()
    stop, thread, errors = run_in_thread(WindowConsumer(s, metrics))
    try:
        produce_predictions(bootstrap, predictions, [(T0, ["a", "b", "c"])])  # 6 rows >= 6
        wait_for(lambda: len(parquet_files(tmp_path)) == 1, 30, "a flush by size")
        wait_for(lambda: committed(bootstrap, s.group_id, predictions)[0] == 3, 30, "its commit")
        started = time.monotonic()
        produce_predictions(bootstrap, predictions, [(T0, ["d"])])  # 2 rows < 6
        wait_for(lambda: len(parquet_files(tmp_path)) == 2, 30, "a flush by age")
        # Not before MLOPS_CONSUMER_FLUSH_SECONDS after the record arrived.
        assert time.monotonic() - started >= 2 - 0.5
        wait_for(lambda: committed(bootstrap, s.group_id, predictions)[0] == 4, 30, "commit")
    finally:
        stop.set()
        thread.join(30)
    assert not errors and not thread.is_alive()
    registry = metrics.registry
    assert (
        registry.get_sample_value(
            "mlops_prediction_windows_rows_written_total", {"kind": "predictions"}
        )
        == 8
    )
    assert registry.get_sample_value("mlops_prediction_windows_last_flush_timestamp_seconds") > 0
    lags = [
        sample.value
        for family in registry.collect()
        if family.name == "mlops_prediction_windows_lag_records"
        for sample in family.samples
        if sample.labels["topic"] == predictions
    ]
    assert lags and all(lag == 0 for lag in lags)  # everything produced was written


def test_crash_between_write_and_commit_loses_nothing(bootstrap: str, tmp_path: Path) -> None:
    predictions, labels = topics()
    # 7 = the 6 prediction rows and the label: each run flushes once, when it has read both
    # topics, in whichever order the (re)assignment hands them over.
    s = settings(bootstrap, tmp_path, predictions, labels, MLOPS_CONSUMER_FLUSH_ROWS="7")
    produce_predictions(bootstrap, predictions, [(T0, ["a", "b", "c"])])
    produce_raw(bootstrap, labels, [label("b", 1, T0 + timedelta(minutes=1))])

    class CrashBeforeCommit(WindowConsumer):
        def _commit(self) -> None:
            raise SystemExit("killed after the upload, before the commit")

    def kafka_consumer() -> Consumer:
        # A crashed member leaves the group only when its session times out (librdkafka's
        # default: 45 s); the mock broker's minimum keeps the replay quick.
        return Consumer({**consumer_config(s), "session.timeout.ms": 6000, "log_level": 3})

    first = CrashBeforeCommit(s)
    stop, thread, errors = run_in_thread(first, kafka_consumer())
    thread.join(60)
    stop.set()
    assert [type(e) for e in errors] == [SystemExit]
    written_once = parquet_files(tmp_path)
    assert len(written_once) == 2  # the predictions' hour and the labels' hour
    assert committed(bootstrap, s.group_id, predictions)[0] == 0

    # The restarted consumer (same group) reads everything again and commits this time.
    second = WindowConsumer(s)
    stop, thread, errors = run_in_thread(second, kafka_consumer())
    try:
        # The replay waits for the crashed member's session to expire (6 s), then a rebalance;
        # generous bounds for a loaded 2-core machine.
        wait_for(lambda: len(parquet_files(tmp_path)) == 4, 120, "the replay's files")
        wait_for(lambda: committed(bootstrap, s.group_id, predictions)[0] == 3, 60, "commit")
    finally:
        stop.set()
        thread.join(30)
    assert not errors
    # Every row is stored twice, and read once.
    rows_on_disk = sum(len(pq.read_table(p)) for p in parquet_files(tmp_path / "predictions"))
    assert rows_on_disk == 12
    frame = windows.read_labelled(
        str(tmp_path), "churn", T0, T0 + timedelta(minutes=1), T0 + timedelta(hours=1)
    )
    assert frame[["_request_id", "_row"]].values.tolist() == [
        ["a", 0], ["a", 1], ["b", 0], ["b", 1], ["c", 0], ["c", 1],
    ]  # fmt: skip
    assert frame["label"].notna().tolist() == [False, False, True, False, False, False]


def test_a_failing_bucket_exits_without_committing(bootstrap: str, tmp_path: Path) -> None:
    predictions, labels = topics()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the bucket folder should be")
    s = settings(
        bootstrap,
        blocker,
        predictions,
        labels,
        MLOPS_CONSUMER_FLUSH_ROWS="1",
        MLOPS_CONSUMER_WRITE_ATTEMPTS="2",
    )
    produce_predictions(bootstrap, predictions, [(T0, ["a"])])
    metrics = ConsumerMetrics()
    stop, thread, errors = run_in_thread(WindowConsumer(s, metrics))
    thread.join(60)
    stop.set()
    assert len(errors) == 1 and not thread.is_alive()
    assert metrics.registry.get_sample_value("mlops_prediction_windows_write_failures_total") == 2
    assert committed(bootstrap, s.group_id, predictions)[0] == 0
