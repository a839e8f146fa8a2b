"""The prediction-log consumer: Kafka `predictions` (and `labels`) -> hourly Parquet windows in
the datasets bucket (layout in `windows.py`), run as `python -m mlops_platform.pipelines.loop.consumer`.

Delivery is at-least-once. Offsets are committed only after every file of a flush has been
written (an S3/GCS object exists only once its upload completed), so a crash between the
write and the commit replays those records into new files; readers drop the duplicates by
request id and row. A flush happens after `MLOPS_CONSUMER_FLUSH_ROWS` rows, at the latest
`MLOPS_CONSUMER_FLUSH_SECONDS` after the first unwritten record, before partitions are
revoked in a rebalance, and on SIGTERM / SIGINT. A record that cannot be parsed is counted
(`reason` label), logged once per topic and reason without its payload, and skipped: its
offset is committed with the rest, so it never blocks the partition.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from mlops_platform.pipelines.loop import windows
from mlops_platform.pipelines.loop.consumer_settings import ConsumerSettings, SettingsError

log = logging.getLogger(__name__)

CONSUME_BATCH = 500
CONSUME_TIMEOUT_SECONDS = 0.5


class ConsumerMetrics:
    """The consumer's Prometheus metrics (`mlops_prediction_windows_*`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        prefix = "mlops_prediction_windows"
        self.consumed = Counter(
            f"{prefix}_records_consumed", "Kafka records read", ["topic"], registry=self.registry
        )
        self.malformed = Counter(
            f"{prefix}_records_malformed",
            "Records skipped because they could not be parsed",
            ["topic", "reason"],
            registry=self.registry,
        )
        self.rows_written = Counter(
            f"{prefix}_rows_written",
            "Rows written to Parquet windows",
            ["kind"],
            registry=self.registry,
        )
        self.files_written = Counter(
            f"{prefix}_files_written", "Parquet files written", ["kind"], registry=self.registry
        )
        self.write_failures = Counter(
            f"{prefix}_write_failures", "Failed attempts to write a flush", registry=self.registry
        )
        self.commit_failures = Counter(
            f"{prefix}_commit_failures",
            "Offset commits that failed after the files were written (the records will be "
            "written again)",
            registry=self.registry,
        )
        self.buffered_rows = Gauge(
            f"{prefix}_buffered_rows", "Rows waiting for the next flush", registry=self.registry
        )
        self.last_flush = Gauge(
            f"{prefix}_last_flush_timestamp_seconds",
            "When offsets were last committed after a flush (age: time() - this)",
            registry=self.registry,
        )
        self.lag = Gauge(
            f"{prefix}_lag_records",
            "Records in the partition after the consumer's position, at the last flush",
            ["topic", "partition"],
            registry=self.registry,
        )


def consumer_config(settings: ConsumerSettings) -> dict[str, Any]:
    """librdkafka properties of the consumer (no I/O; security as the model server's)."""
    from mlops_platform.model_server.kafka_security import security_config

    return {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": settings.group_id,
        "client.id": "mlops-prediction-windows",
        # Offsets are committed by hand, after the files exist; never in the background, and
        # never for a record that is only in memory.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        # A new group starts at the oldest retained record: nothing is skipped.
        "auto.offset.reset": "earliest",
        **security_config(settings.kafka_security()),
    }


class WindowConsumer:
    """Buffers parsed rows per hour folder and writes them, then commits, on each flush."""

    def __init__(
        self,
        settings: ConsumerSettings,
        metrics: ConsumerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ConsumerMetrics()
        self._clock = clock
        self._fs, self._base = windows.filesystem(settings.bucket_uri)
        self._predictions: dict[str, list[dict[str, Any]]] = {}
        self._labels: list[dict[str, Any]] = []
        self._rows = 0
        # Next offset to commit per (topic, partition): past every record handled so far.
        self._offsets: dict[tuple[str, int], int] = {}
        self._first_pending: float | None = None
        self._logged: set[tuple[str, str]] = set()
        self._consumer: Any = None
        self._failed = False

    # -- records ---------------------------------------------------------------------------

    def handle(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        """Parse one record into the buffer; a malformed one is counted and skipped."""
        self.metrics.consumed.labels(topic).inc()
        origin = windows.Origin(partition, offset)
        try:
            if topic == self.settings.predictions_topic:
                model, rows = windows.parse_prediction(value, origin)
                self._predictions.setdefault(model, []).extend(rows)
                self._rows += len(rows)
            else:
                self._labels.append(windows.parse_label(value, origin))
                self._rows += 1
        except windows.MalformedRecord as exc:
            self.metrics.malformed.labels(topic, exc.reason).inc()
            if (topic, exc.reason) not in self._logged:
                self._logged.add((topic, exc.reason))
                log.warning(
                    "skipping malformed record (%s) at %s [%d] offset %d: %s; further %s "
                    "records are counted in mlops_prediction_windows_records_malformed_total, "
                    "not logged",
                    exc.reason,
                    topic,
                    partition,
                    offset,
                    exc,
                    exc.reason,
                )
        self._offsets[(topic, partition)] = offset + 1
        if self._first_pending is None:
            self._first_pending = self._clock()
        self.metrics.buffered_rows.set(self._rows)

    def due(self) -> bool:
        if self._first_pending is None:
            return False
        age = self._clock() - self._first_pending
        return self._rows >= self.settings.flush_rows or age >= self.settings.flush_seconds

    # -- flush -----------------------------------------------------------------------------

    def write(self) -> list[str]:
        """Write every buffered window (one new file per hour folder); the paths written."""
        now = datetime.now(UTC)
        groups: list[tuple[str, str, list[Any]]] = []
        for model, rows in self._predictions.items():
            for folder, group in windows.group_rows(windows.PREDICTIONS, rows, model).items():
                groups.append((windows.PREDICTIONS, folder, group))
        for folder, group in windows.group_rows(windows.LABELS, self._labels).items():
            groups.append((windows.LABELS, folder, group))
        written = []
        for kind, folder, rows in groups:
            table, as_text = windows.to_table(rows)
            if as_text:
                log.warning("%s: mixed value types in %s, written as text", folder, as_text)
            path = f"{self._base}/{folder}/{windows.unique_name(now)}"
            windows.write_file(self._fs, path, table)
            written.append(path)
            self.metrics.rows_written.labels(kind).inc(len(rows))
            self.metrics.files_written.labels(kind).inc()
        return written

    def flush(self, sleep: Callable[[float], None] = time.sleep) -> list[str]:
        """Write, then commit the offsets past everything written. Raises after
        `write_attempts` failed writes (nothing committed: the records are read again)."""
        if self._first_pending is None:
            return []
        for attempt in range(1, self.settings.write_attempts + 1):
            try:
                written = self.write()
                break
            except Exception as exc:
                self.metrics.write_failures.inc()
                # pyarrow's error names the path and the cloud's error code, not credentials.
                log.error("writing windows failed (attempt %d): %s", attempt, exc)
                if attempt == self.settings.write_attempts:
                    raise
                sleep(float(2 ** (attempt - 1)))
        self._commit()
        self._predictions, self._labels, self._rows = {}, [], 0
        self._offsets, self._first_pending = {}, None
        self.metrics.buffered_rows.set(0)
        return written

    def _commit(self) -> None:
        if self._consumer is None or not self._offsets:
            return
        from confluent_kafka import KafkaException, TopicPartition

        offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(self._offsets.items())]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # E.g. the partitions moved to another member meanwhile: the files exist, so the
            # new owner's replay only duplicates rows, which readers drop.
            self.metrics.commit_failures.inc()
            log.warning("offset commit failed after writing; records will be re-read: %s", exc)
            return
        self.metrics.last_flush.set(time.time())
        self._record_lag(offsets)

    def _record_lag(self, committed: list[Any]) -> None:
        for tp in committed:
            try:
                _low, high = self._consumer.get_watermark_offsets(tp, timeout=2, cached=False)
            except Exception:
                continue
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - tp.offset))

    # -- loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, consumer: Any = None) -> None:
        """Consume until `stop` is set, then flush, commit and leave the group."""
        from confluent_kafka import Consumer, KafkaError

        config = consumer_config(self.settings)
        ca_file = config.get("ssl.ca.location")
        if ca_file is not None and not os.path.isfile(ca_file):
            raise FileNotFoundError(f"MLOPS_CONSUMER_KAFKA_CA_FILE={ca_file!r}: no such file")
        if consumer is None:
            from mlops_platform.model_server.kafka_security import redacted

            log.info("consuming %s into %s", self.settings.topics, self.settings.bucket_uri)
            log.info("consumer %s", redacted(config))
            if config["security.protocol"] == "PLAINTEXT":
                log.warning(
                    "consumer uses PLAINTEXT (no TLS, no authentication); set "
                    "MLOPS_CONSUMER_KAFKA_SECURITY_PROTOCOL for anything but a local broker"
                )
            consumer = Consumer({**config, "logger": logging.getLogger(f"{__name__}.librdkafka")})
        self._consumer = consumer

        def on_revoke(_consumer: Any, partitions: list[Any]) -> None:
            # Write and commit before another member takes the partitions over, so it
            # starts after what this one wrote instead of writing it again. Not after a
            # failure: leaving the group then must not retry what just failed.
            if not self._failed:
                log.info("partitions revoked (%d): flushing", len(partitions))
                self.flush()

        consumer.subscribe(self.settings.topics, on_revoke=on_revoke)
        try:
            while not stop.is_set():
                for message in consumer.consume(CONSUME_BATCH, CONSUME_TIMEOUT_SECONDS):
                    error = message.error()
                    if error is None:
                        self.handle(
                            message.topic(), message.partition(), message.offset(), message.value()
                        )
                    elif error.fatal():
                        raise RuntimeError(f"fatal Kafka error: {error.str()}")
                    elif error.code() != KafkaError._PARTITION_EOF:
                        log.warning("kafka: %s", error.str())
                if self.due():
                    self.flush()
            self.flush()
        except BaseException:
            self._failed = True
            raise
        finally:
            consumer.close()
            self._consumer = None


def ingest_prediction_file(path: str, bucket_uri: str) -> int:
    """Write a model server's prediction file (`MLOPS_SERVE_PREDICTION_SINK=file`: one record
    a line, the bytes the `kafka` sink sends) into windows under `bucket_uri` with this
    consumer's own parsing and writing: the prediction log of a machine without Kafka (the demo,
    tests). Returns the records read."""
    settings = ConsumerSettings.from_env(
        {
            "MLOPS_CONSUMER_BUCKET_URI": bucket_uri,
            # Required by the settings, never contacted: the records come from the file.
            "MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS": "file:0",
        }
    )
    consumer = WindowConsumer(settings)
    count = 0
    with open(path, "rb") as handle:
        for offset, line in enumerate(handle):
            if line.strip():
                consumer.handle(settings.predictions_topic, 0, offset, line.rstrip(b"\n"))
                count += 1
    consumer.write()
    return count


def main() -> int:
    try:
        settings = ConsumerSettings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    metrics = ConsumerMetrics()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=metrics.registry)
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("%s: flushing and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        WindowConsumer(settings, metrics).run(stop)
    except Exception:
        log.exception("consumer stopped; uncommitted records will be read again on restart")
        return 1
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
