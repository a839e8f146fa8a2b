"""Asynchronous prediction logging: serving path -> bounded queue -> background thread -> sink.

`PredictionLog.submit` never blocks and never raises: when the queue is full the batch is
dropped and counted. The background thread also feeds the drift window, so that work stays
off the request path too. The Kafka sink uses confluent-kafka's non-blocking `produce`; a
full producer buffer or a failed delivery is counted as a drop, never surfaced to a client.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import orjson

log = logging.getLogger(__name__)

DropCounter = Callable[[str, int], None]
GATHER_SECONDS = 0.05
GATHER_MAX = 256


@dataclass
class LoggedBatch:
    """One predict call: its requests' features (column arrays) and predictions."""

    timestamp: float
    request_ids: Sequence[str]
    row_counts: Sequence[int]
    columns: dict[str, np.ndarray]
    predictions: list[Any]
    scores: np.ndarray | None
    # tracing.RequestTrace of the sampled requests among them (empty when tracing is off).
    traces: Sequence[Any] = ()


def merge(items: Sequence[LoggedBatch]) -> LoggedBatch:
    """Several batches as one (for the drift window, which only needs the columns)."""
    if len(items) == 1:
        return items[0]
    names = items[0].columns.keys()
    return LoggedBatch(
        timestamp=items[-1].timestamp,
        request_ids=[r for i in items for r in i.request_ids],
        row_counts=[n for i in items for n in i.row_counts],
        columns={n: np.concatenate([i.columns[n] for i in items]) for n in names},
        predictions=[p for i in items for p in i.predictions],
        scores=None,
        traces=[t for i in items for t in i.traces],
    )


class Sink(Protocol):
    def write(self, records: list[bytes], keys: list[bytes]) -> None: ...
    def poll(self) -> None: ...
    def close(self, timeout: float) -> None: ...


class SinkError(RuntimeError):
    """A sink cannot start or write; the message names what and the setting to change."""


FILE_VAR = "MLOPS_SERVE_PREDICTION_FILE"


class FileSink:
    """Appends JSON lines to a local file (the default for a single-process or embedded run),
    rotating it at `max_bytes`: the full file becomes `<path>.1` (the previous `.1` becomes
    `.2`, and so on up to `backups`; the oldest is deleted), so the files never take more than
    about `(backups + 1) * max_bytes` of the pod's disk.

    Written by hand rather than with `logging.handlers.RotatingFileHandler`: that handler
    formats log records and writes text, while this writes pre-encoded JSON bytes in batches.
    """

    def __init__(self, path: str, max_bytes: int = 0, backups: int = 1) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._file = open(path, "ab")  # noqa: SIM115 - held open for the server's lifetime
        except OSError as exc:
            raise SinkError(
                f"{FILE_VAR}={path!r}: cannot open the prediction file for appending: "
                f"{exc.strerror or exc} (set {FILE_VAR} to a writable path, e.g. under /tmp, "
                "or MLOPS_SERVE_PREDICTION_SINK=none)"
            ) from None
        self._size = self._file.tell()

    def write(self, records: list[bytes], keys: list[bytes]) -> None:
        data = b"\n".join(records) + b"\n"
        try:
            if self.max_bytes and self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._file.write(data)
        except OSError as exc:
            raise SinkError(f"{FILE_VAR}={self.path!r}: cannot write: {exc}") from None
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = f"{self.path}.{i}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{i + 1}")
        if self.backups > 0:
            os.replace(self.path, f"{self.path}.1")
        else:
            os.remove(self.path)
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def poll(self) -> None:
        self._file.flush()

    def close(self, timeout: float) -> None:
        self._file.close()


def producer_config(
    bootstrap_servers: str, buffer_messages: int, security: Mapping[str, Any]
) -> dict[str, Any]:
    """librdkafka properties of the prediction-log producer (pure; `security` is merged last).

    `acks=all` makes a write wait for the topic's in-sync replicas, so the topic's
    `min.insync.replicas` (mlops_platform/components/kafka) protects records against a broker loss; with
    `acks=1` a leader failover could drop acknowledged records. Idempotence keeps librdkafka's
    retries from writing a record twice or out of order; librdkafka refuses to start when it is
    combined with `acks` other than `all`, `max.in.flight` above 5 or `retries` 0, so those are
    either set here or left at their compatible defaults (`retries` stays librdkafka's
    INT32_MAX: retrying is bounded by `message.timeout.ms`, not by a count).
    """
    return {
        "bootstrap.servers": bootstrap_servers,
        "client.id": "mlops-model-server",
        "linger.ms": 20,
        "compression.type": "lz4",
        "queue.buffering.max.messages": buffer_messages,
        # A record that cannot be delivered within this time is dropped and counted. With
        # idempotence (and no gapless guarantee) librdkafka recovers from such a gap by bumping
        # the producer epoch, so a timeout costs that record, never the producer.
        "message.timeout.ms": 30_000,
        "enable.idempotence": True,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        **security,
    }


class KafkaSink:
    """Produces one message per request to a topic; keys are request ids.

    `security` holds the librdkafka security properties (`kafka_security.security_config`:
    TLS, SASL/SCRAM or an OAUTHBEARER token callback); only a redacted form is ever logged.
    librdkafka's own log lines go through Python logging (`...prediction_log.librdkafka`).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        buffer_messages: int,
        on_drop: DropCounter,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        from confluent_kafka import Producer

        from mlops_platform.model_server.kafka_security import CA_FILE_VAR, redacted

        security = dict(security or {"security.protocol": "PLAINTEXT"})
        ca_file = security.get("ssl.ca.location")
        if ca_file is not None and not os.path.isfile(ca_file):
            raise FileNotFoundError(f"{CA_FILE_VAR}={ca_file!r}: no such file")
        self.topic = topic
        self._on_drop = on_drop
        config = {
            **producer_config(bootstrap_servers, buffer_messages, security),
            "logger": logging.getLogger(f"{__name__}.librdkafka"),
        }
        protocol = config["security.protocol"]
        shown = redacted({k: v for k, v in config.items() if k != "logger"})
        log.info("kafka sink: topic %s, producer %s", topic, shown)
        if protocol == "PLAINTEXT":
            log.warning(
                "kafka sink uses PLAINTEXT (no TLS, no authentication); set "
                "MLOPS_SERVE_KAFKA_SECURITY_PROTOCOL for anything but a local broker"
            )
        # With an OAUTHBEARER callback, confluent-kafka waits (up to 10 s) for the first token
        # here, so missing cloud credentials stop the start-up instead of failing silently.
        self._producer = Producer(config)

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._on_drop("kafka_delivery_failed", 1)

    def write(self, records: list[bytes], keys: list[bytes]) -> None:
        for i, (record, key) in enumerate(zip(records, keys, strict=True)):
            try:
                self._producer.produce(
                    self.topic, value=record, key=key, on_delivery=self._delivered
                )
            except BufferError:
                self._on_drop("kafka_buffer_full", len(records) - i)
                return
            except Exception as exc:  # e.g. KafkaException for a message over the size limit
                log.warning("kafka produce failed: %s", exc)
                self._on_drop("kafka_produce_failed", 1)
        self._producer.poll(0)

    def poll(self) -> None:
        self._producer.poll(0)

    def close(self, timeout: float) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            self._on_drop("kafka_undelivered_at_exit", remaining)


class PredictionLog:
    """Bounded queue + one background thread that updates drift and writes to the sink."""

    _STOP = object()

    def __init__(
        self,
        sink: Sink | None,
        model_name: str,
        model_version: str,
        queue_size: int,
        on_drop: DropCounter,
        on_written: Callable[[int], None],
        observe: Callable[[LoggedBatch], None] | None = None,
        on_traced: Callable[..., None] | None = None,
    ) -> None:
        self.sink = sink
        self.model_name = model_name
        self.model_version = model_version
        self._on_drop = on_drop
        self._on_written = on_written
        self._observe = observe
        # Tracing.logged (tracing.py) when tracing is on: a span per sampled request written.
        self._on_traced = on_traced
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def submit(self, batch: LoggedBatch) -> None:
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self._on_drop("queue_full", len(batch.request_ids))

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self.sink is not None:
                    self._safe(self.sink.poll)
                continue
            items, stop = self._gather(first)
            if items:
                if self._on_traced is None or self.sink is None:
                    self._process(items)
                else:
                    self._process_traced(items)
            if stop:
                return

    def _gather(self, first: Any) -> tuple[list[LoggedBatch], bool]:
        """Take what arrives within GATHER_SECONDS, so per-batch costs (drift bucketing, a
        sink write) are paid once per ~50 ms instead of once per request at low load."""
        if first is self._STOP:
            return [], True
        items = [first]
        deadline = time.monotonic() + GATHER_SECONDS
        while len(items) < GATHER_MAX:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is self._STOP:
                return items, True
            items.append(item)
        return items, False

    def _process_traced(self, items: list[LoggedBatch]) -> None:
        assert self._on_traced is not None
        started_ns = time.time_ns()
        self._process(items)
        traces = [t for item in items for t in item.traces]
        if traces:
            records = sum(len(item.request_ids) for item in items)
            self._safe(self._on_traced, traces, started_ns, time.time_ns(), records)

    def _process(self, items: list[LoggedBatch]) -> None:
        if self._observe is not None:
            same_columns = all(i.columns.keys() == items[0].columns.keys() for i in items)
            for batch in [merge(items)] if same_columns else items:
                self._safe(self._observe, batch)
        if self.sink is None:
            return
        records: list[bytes] = []
        keys: list[bytes] = []
        for item in items:
            try:
                item_records, item_keys = self.encode(item)
            except Exception:  # a bug, not a record: drop this batch's records, not the others
                log.exception("prediction log: cannot encode a batch")
                self._on_drop("encode_error", len(item.request_ids))
                continue
            records += item_records
            keys += item_keys
        if not records:
            return
        try:
            self.sink.write(records, keys)
            self._on_written(len(records))
        except Exception as exc:
            log.error("prediction log sink failed; %d records dropped: %s", len(records), exc)
            self._on_drop("sink_error", len(records))

    @staticmethod
    def _safe(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("prediction log background task failed")

    def encode(self, batch: LoggedBatch) -> tuple[list[bytes], list[bytes]]:
        """One JSON record per request: its features, predictions and scores."""
        records, keys = [], []
        start = 0
        timestamp = batch.timestamp
        for request_id, n in zip(batch.request_ids, batch.row_counts, strict=True):
            end = start + n
            record = {
                "model": self.model_name,
                "version": self.model_version,
                "request_id": request_id,
                "timestamp": timestamp,
                "features": {
                    name: values[start:end].tolist() for name, values in batch.columns.items()
                },
                "predictions": batch.predictions[start:end],
                "scores": None if batch.scores is None else batch.scores[start:end].tolist(),
            }
            start = end
            # Each record on its own: one that cannot be encoded (a value no validation
            # foresaw) is dropped and counted alone, never the other clients' records.
            try:
                encoded = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
            except (TypeError, ValueError) as exc:
                log.warning("prediction record %s cannot be encoded, dropped: %s", request_id, exc)
                self._on_drop("encode_error", 1)
                continue
            records.append(encoded)
            keys.append(request_id.encode())
        return records, keys

    def close(self, timeout: float) -> None:
        """Write what is queued (up to `timeout` seconds), then flush and close the sink."""
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(self._STOP, timeout=max(0.0, timeout))
        except queue.Full:
            log.warning("prediction log queue still full at exit")
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._on_drop("unwritten_at_exit", self._queue.qsize())
        if self.sink is not None:
            self.sink.close(max(0.1, deadline - time.monotonic()))
