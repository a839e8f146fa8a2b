"""The drift monitor: the serving-side drift alert's source, with the pipeline's own detector.

Every `interval_minutes`, for each model, it reads the last `window_hours` complete hours of the
prediction log's windows (`read_windows`' range and `windows.drift_frame`, the frame
`windows_drift` checks), takes the training sample of `<model>@<reference_alias>` from MLflow
(`champion_reference.logic.resolve`, cached per model version), runs
`mlops_platform.pipelines.lib.drift.detect_drift_with` with the platform's `DriftSettings.detector`, and
exports the verdict and the per-feature scores as Prometheus gauges. The PrometheusRule
(mlops_platform/components/monitoring) alerts on the verdict, so an alert means exactly what a `check_drift`
step would say about that window: same tests, same floors, same same-season reference, and an
`inconclusive` verdict (too few same-season reference rows) that is never a drift.

Why a job that reads the log rather than histograms exported by each model server: the tests
need the raw values (KS on exact values, Brown-Forsythe's deviations from the median, chi² on
categories, missing counts, and the window's timestamps for the same-season reference and the
recent slice), summed over every replica; bucketed histograms per pod would be a different,
weaker test, and PromQL cannot run a KS test. The log already holds all of it, in one place.

Metrics (`mlops_drift_*`, labels `model` and `version`, the reference model version):
`verdict` (1 for the current one of drift / no_drift / inconclusive, 0 for the others),
`drifted_features`, per `feature`: `feature_drifted`, `feature_effect`, `feature_pvalue`
(adjusted), `feature_psi` (information only); `window_rows`, `reference_rows`,
`last_check_timestamp_seconds`, `check_duration_seconds`, `check_failures_total{reason}`. A
model whose window holds no rows, or whose check failed, has no verdict series until its next
good check (a stale verdict must not keep an alert firing or silence one).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily

from mlops_platform.model_server.settings import SettingsError
from mlops_platform.pipelines.lib.drift import DriftReport, DriftSettings, detect_drift_with
from mlops_platform.pipelines.loop.monitor_settings import MonitorSettings

log = logging.getLogger(__name__)

VERDICTS = ("drift", "no_drift", "inconclusive")
# Failure reasons (a fixed vocabulary, a metric label).
NO_REFERENCE = "no_reference"
BAD_DATA = "bad_data"
ERROR = "error"


@dataclass
class ModelState:
    """The last outcome for one model: a report, or none (no rows, or a failed check)."""

    version: str = ""
    report: DriftReport | None = None
    window_rows: int = 0
    reference_rows: int = 0
    last_check: float = 0.0
    duration: float = 0.0


@dataclass
class _Reference:
    version: str
    frame: Any


@dataclass
class DriftState:
    """What the collector exports; replaced per model under a lock by the checking thread."""

    models: dict[str, ModelState] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class DriftCollector:
    """Gauges from the latest result per model, built at scrape time (so a model's series
    disappear as soon as its state has no report)."""

    def __init__(self, state: DriftState) -> None:
        self.state = state

    def collect(self) -> list[GaugeMetricFamily]:
        with self.state.lock:
            models = dict(self.state.models)
        labels = ("model", "version")
        feature_labels = (*labels, "feature")

        def gauge(name: str, doc: str, names=labels) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"mlops_drift_{name}", doc, labels=names)

        verdict = gauge(
            "verdict",
            "1 for the drift check's current verdict of the window (drift, no_drift, "
            "inconclusive), 0 for the others; absent when the window is empty or the check failed",
            (*labels, "verdict"),
        )
        drifted_features = gauge("drifted_features", "Features the check found drifted")
        drifted = gauge("feature_drifted", "1 when the feature drifted", feature_labels)
        effect = gauge(
            "feature_effect",
            "Effect of the feature's deciding test (KS D, spread ratio, TVD or missing-rate "
            "change)",
            feature_labels,
        )
        pvalue = gauge(
            "feature_pvalue", "Adjusted p-value of the feature's deciding test", feature_labels
        )
        psi = gauge(
            "feature_psi", "PSI of the feature (information, not a verdict)", feature_labels
        )
        window_rows = gauge("window_rows", "Rows in the checked window of the prediction log")
        reference_rows = gauge("reference_rows", "Rows of the (same-season) reference")
        last_check = gauge(
            "last_check_timestamp_seconds", "When the model's window was last checked"
        )
        duration = gauge("check_duration_seconds", "How long the last check took")
        for model, result in sorted(models.items()):
            base = [model, result.version]
            if result.last_check:
                last_check.add_metric(base, result.last_check)
                duration.add_metric(base, result.duration)
                window_rows.add_metric(base, result.window_rows)
            report = result.report
            if report is None:
                continue
            reference_rows.add_metric(base, report.reference_rows)
            for name in VERDICTS:
                verdict.add_metric([*base, name], 1.0 if report.verdict == name else 0.0)
            drifted_features.add_metric(base, report.n_drifted)
            for feature, figures in sorted(report.features.items()):
                row = [*base, feature]
                drifted.add_metric(row, 1.0 if figures.drifted else 0.0)
                effect.add_metric(row, figures.effect)
                pvalue.add_metric(row, figures.pvalue)
                psi.add_metric(row, figures.psi)
        return [
            verdict,
            drifted_features,
            drifted,
            effect,
            pvalue,
            psi,
            window_rows,
            reference_rows,
            last_check,
            duration,
        ]


class DriftMonitor:
    """Checks each model's recent window with the platform's detector and keeps the results."""

    def __init__(
        self,
        settings: MonitorSettings,
        registry: CollectorRegistry | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.drift: DriftSettings = settings.drift
        self.registry = registry or CollectorRegistry()
        self.state = DriftState()
        self.registry.register(DriftCollector(self.state))
        self.failures = Counter(
            "mlops_drift_check_failures",
            "Drift checks that could not decide (no reference, unreadable data, an error)",
            ["model", "reason"],
            registry=self.registry,
        )
        self._now = now or (lambda: datetime.now(UTC))
        self._references: dict[str, _Reference] = {}

    # -- the two inputs, found exactly as the pipeline finds them ------------------------------

    def reference(self, model: str) -> _Reference:
        """The training sample of `model@reference_alias`, downloaded once per version (or the
        file at `reference_uri`)."""
        from mlops_platform.pipelines.components.champion_reference.logic import resolve
        from mlops_platform.pipelines.components.common import connect_mlflow, read_dataset

        if self.settings.reference_uri:
            # An explicit file (loop.reference_path): read at every check, it may be replaced.
            with tempfile.TemporaryDirectory(prefix="drift-reference-") as folder:
                target = os.path.join(folder, "reference.parquet")
                uri = self.settings.reference_uri.replace("{model}", model)
                resolve("", model, "", uri, target)
                return _Reference("", read_dataset(target))
        alias = self.drift.reference_alias
        client = connect_mlflow(self.settings.tracking_uri)
        cached = self._references.get(model)
        if cached is not None:
            current = client.get_model_version_by_alias(model, alias)
            if str(current.version) == cached.version:
                return cached
        with tempfile.TemporaryDirectory(prefix="drift-reference-") as folder:
            target = os.path.join(folder, "reference.parquet")
            found = resolve(self.settings.tracking_uri, model, alias, "", target)
            frame = read_dataset(target)
        log.info("%s", found.describe())
        self._references[model] = _Reference(found.version, frame)
        return self._references[model]

    def window(self, model: str) -> Any:
        """The last `window_hours` complete hours of the model's prediction log, as the frame
        `read_windows` hands to `check_drift` (labels are not needed for input drift)."""
        from mlops_platform.pipelines.components.read_windows.logic import time_range
        from mlops_platform.pipelines.loop import windows

        begin, end = time_range("", "", self.drift.window_hours, self._now())
        predictions = windows.read_predictions(self.settings.bucket_uri, model, begin, end)
        if predictions.empty:
            return None
        return windows.drift_frame(predictions, timestamp=self.drift.detector.timestamp)

    # -- checking ------------------------------------------------------------------------------

    def check(self, model: str) -> ModelState:
        """Check one model now; the new state (also kept for the collector)."""
        from mlops_platform.pipelines.components.common import (
            ComponentError,
            MlflowUnreachableError,
        )

        started = time.monotonic()
        state = ModelState()
        try:
            reference = self.reference(model)
            state.version = reference.version
            current = self.window(model)
            if current is not None:
                state.window_rows = len(current)
                state.report = detect_drift_with(reference.frame, current, self.drift.detector)
        except MlflowUnreachableError as exc:
            self._failed(model, ERROR, str(exc))
        except ComponentError as exc:
            self._failed(model, NO_REFERENCE, str(exc))
        except ValueError as exc:
            self._failed(model, BAD_DATA, str(exc))
        except Exception as exc:  # storage or MLflow down: counted, retried next interval
            self._failed(model, ERROR, f"{type(exc).__name__}: {exc}")
        state.last_check = time.time()
        state.duration = time.monotonic() - started
        with self.state.lock:
            self.state.models[model] = state
        if state.report is not None:
            report = state.report
            log.info(
                "%s (reference version %s): %s on %d rows: %s",
                model,
                state.version,
                report.verdict,
                report.current_rows,
                report.message,
            )
        elif state.version and not state.window_rows:
            log.info("%s: no prediction rows in the last %d hours", model, self.drift.window_hours)
        return state

    def _failed(self, model: str, reason: str, message: str) -> None:
        self.failures.labels(model, reason).inc()
        log.warning("%s: drift check failed (%s): %s", model, reason, message[:500])

    def run_once(self) -> dict[str, ModelState]:
        return {model: self.check(model) for model in self.settings.models}

    def run(self, stop: threading.Event) -> None:
        interval = self.drift.interval_minutes * 60
        while not stop.is_set():
            started = time.monotonic()
            self.run_once()
            stop.wait(max(0.0, interval - (time.monotonic() - started)))


def main() -> int:
    try:
        settings = MonitorSettings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    monitor = DriftMonitor(settings)
    start_http_server(settings.metrics_port, settings.metrics_host, registry=monitor.registry)
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info(
        "checking %s every %g minutes over %d hours",
        ", ".join(settings.models),
        settings.drift.interval_minutes,
        settings.drift.window_hours,
    )
    monitor.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
