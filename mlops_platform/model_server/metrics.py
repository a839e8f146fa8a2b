"""Prometheus metrics of the server, on a registry of its own (one per app instance).

Request counters and the latency histogram use prometheus-client directly. The prediction
score histogram and the drift gauges are custom collectors: scores arrive a whole batch at
a time, and prometheus-client's Histogram can only observe one value per call, so the
bucket counts are accumulated with one numpy call per batch and emitted at scrape time.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from mlops_platform.model_server.availability import OUTCOMES
from mlops_platform.model_server.drift import DriftWindow

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
)  # fmt: skip
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 21))
LABELS = ("model", "version")


class ScoreHistogram:
    """Bulk-updated histogram of prediction scores (a collector for the registry)."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.upper = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # last: +Inf
        self._sum = 0.0
        self._labels: tuple[str, str] = ("", "")
        self._lock = threading.Lock()

    def set_labels(self, model: str, version: str) -> None:
        self._labels = (model, version)

    def observe_many(self, values: np.ndarray) -> None:
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return
        # side="left": a value equal to an upper bound belongs to that bucket (le semantics).
        index = np.searchsorted(self.upper, finite, side="left")
        counts = np.bincount(index, minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(finite.sum())

    def collect(self) -> list[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        family = HistogramMetricFamily(self.name, self.documentation, labels=LABELS)
        buckets = [(f"{le:g}", float(c)) for le, c in zip(self.upper, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", float(cumulative[-1])))
        family.add_metric(list(self._labels), buckets, total)
        return [family]


class DriftCollector:
    """PSI gauge per feature, computed from the drift window at scrape time."""

    def __init__(self) -> None:
        self.window: DriftWindow | None = None
        self._labels: tuple[str, str] = ("", "")

    def attach(self, window: DriftWindow, model: str, version: str) -> None:
        self.window = window
        self._labels = (model, version)

    def collect(self) -> list[GaugeMetricFamily]:
        if self.window is None:
            return []
        psi = GaugeMetricFamily(
            "model_server_feature_psi",
            "Population Stability Index of each feature over the recent window vs. the "
            "training reference profile.",
            labels=(*LABELS, "feature"),
        )
        for feature, value in self.window.psi().items():
            psi.add_metric([*self._labels, feature], value)
        rows = GaugeMetricFamily(
            "model_server_drift_window_rows",
            "Rows currently in the drift window.",
            labels=LABELS,
        )
        rows.add_metric(list(self._labels), float(self.window.rows()))
        return [psi, rows]


class Metrics:
    def __init__(self) -> None:
        # `*_created` series double the scrape size and no dashboard here uses them.
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "model_server_requests",
            "HTTP requests by endpoint and status code.",
            (*LABELS, "endpoint", "code"),
            registry=r,
        )
        self.latency = Histogram(
            "model_server_request_duration_seconds",
            "Time from receiving a prediction request to sending its response.",
            (*LABELS, "endpoint"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_rows = Histogram(
            "model_server_request_rows",
            "Rows per prediction request.",
            LABELS,
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "model_server_batch_rows",
            "Rows per model predict call, after micro-batching concurrent requests.",
            LABELS,
            buckets=ROW_BUCKETS,
            registry=r,
        )
        self.batch_splits = Counter(
            "model_server_batch_splits",
            "Merged predict calls the model failed on, so each request in them was re-run on its "
            "own: input the validation could not tell was bad (it rejects unknown categories of "
            "sklearn encoders itself). A rising count is a client sending such input.",
            LABELS,
            registry=r,
        )
        self.log_dropped = Counter(
            "model_server_prediction_log_dropped",
            "Prediction records not delivered to the prediction log, by reason.",
            (*LABELS, "reason"),
            registry=r,
        )
        self.log_written = Counter(
            "model_server_prediction_log_written",
            "Prediction records handed to the prediction log sink.",
            LABELS,
            registry=r,
        )
        self.ready = Gauge(
            "model_server_ready", "1 when the model is loaded and warmed up.", registry=r
        )
        self.load_attempts = Counter(
            "model_server_model_load_attempts",
            "Attempts to resolve and load the model, by outcome: `loaded`, or what it is still "
            "waiting for (`not_found`, `unavailable`, `unauthorized`), or `failed` (permanent).",
            ("outcome",),
            registry=r,
        )
        for outcome in OUTCOMES:
            self.load_attempts.labels(outcome)
        self.scores = ScoreHistogram(
            "model_server_prediction_score",
            "Prediction scores (positive-class probability for binary classifiers).",
            SCORE_BUCKETS,
        )
        r.register(self.scores)
        self.drift = DriftCollector()
        r.register(self.drift)
        self._labels: tuple[str, str] = ("", "")
        self._children: dict[tuple[Any, ...], Any] = {}

    def set_model(self, model: str, version: str) -> None:
        self._labels = (model, version)
        self.scores.set_labels(model, version)
        self._children.clear()
        self.request_rows_child = self.request_rows.labels(model, version)
        self.batch_rows_child = self.batch_rows.labels(model, version)
        self.batch_splits_child = self.batch_splits.labels(model, version)

    # Label lookups cost more than the increments themselves; cache the children.
    def count(self, endpoint: str, code: int, seconds: float | None) -> None:
        key = (endpoint, code)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(*self._labels, endpoint, str(code))
        child.inc()
        if seconds is not None:
            latency_key = (endpoint, None)
            hist = self._children.get(latency_key)
            if hist is None:
                hist = self._children[latency_key] = self.latency.labels(*self._labels, endpoint)
            hist.observe(seconds)

    def dropped(self, reason: str, n: int) -> None:
        if n > 0:
            self.log_dropped.labels(*self._labels, reason).inc(n)

    def written(self, n: int) -> None:
        self.log_written.labels(*self._labels).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
