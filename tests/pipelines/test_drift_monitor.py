"""The drift monitor, for real: a real `mlflow server` on loopback holds the champion and the
training sample the register step logged with it; the prediction log is encoded by the model
server's own `PredictionLog` and written to windows by the consumer's own `WindowConsumer`;
the monitor's gauges are scraped over HTTP, and the platform's rendered PrometheusRule is
evaluated by a real Prometheus 2.42 scraping the monitor.

The reference is a year of seasonal churn data; `churn` gets a week of ordinary early-December
traffic (it differs from the yearly mean: the whole-year comparison and the old PSI rule both
alarm on it), `churn-drifted` the same week with one feature shifted, `churn-thin` a champion
whose logged training sample has too few same-season rows (inconclusive).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops_platform.components.monitoring import model as monitoring
from mlops_platform.model_server.prediction_log import LoggedBatch, PredictionLog
from mlops_platform.model_server.settings import SettingsError
from mlops_platform.pipelines.components.register_model.logic import register
from mlops_platform.pipelines.data import churn
from mlops_platform.pipelines.lib.drift import (
    DriftSettings,
    detect_drift,
    profile_psi,
    reference_profile,
)
from mlops_platform.pipelines.loop.consumer import WindowConsumer
from mlops_platform.pipelines.loop.consumer_settings import ConsumerSettings
from mlops_platform.pipelines.loop.monitor import DriftMonitor
from mlops_platform.pipelines.loop.monitor_settings import MonitorSettings
from tests.prometheus_support import free_port, prometheus
from tests.serving.serving_support import start_tracking_server, stop_tracking_server

NOW = datetime(2026, 12, 4, 12, 30, tzinfo=UTC)
NORMAL, DRIFTED, THIN = "churn", "churn-drifted", "churn-thin"
SHIFTED = "avg_order_value"
SETTINGS = DriftSettings(window_hours=168, interval_minutes=0.02)


def _reference_frame() -> pd.DataFrame:
    # A year at ~80 snapshots a day: the same-season reference (+-7 days) finds 1,000 rows.
    return churn.generate(30_000, seed=5, start="2025-01-01", days=365, trend=0)


def _week() -> pd.DataFrame:
    """Eight days of ordinary traffic up to NOW's day, timestamps spread over each day."""
    frame = churn.generate(2_000, seed=6, start="2026-11-27", days=8, trend=0)
    rng = np.random.default_rng(0)
    seconds = rng.uniform(0, 86_400, len(frame))
    frame[churn.TIMESTAMP] = pd.to_datetime(frame[churn.TIMESTAMP]) + pd.to_timedelta(
        seconds, unit="s"
    )
    return frame.sort_values(churn.TIMESTAMP).reset_index(drop=True)


def write_prediction_log(bucket: Path, model: str, frame: pd.DataFrame) -> int:
    """Requests of 20 rows, encoded by the model server's prediction log and written to the
    bucket by the prediction-log consumer (no Kafka in between: the bytes are the same)."""
    dropped: list[tuple[str, int]] = []
    log = PredictionLog(
        None, model, "1", 10, on_drop=lambda *a: dropped.append(a), on_written=print
    )
    consumer = WindowConsumer(
        ConsumerSettings.from_env(
            {
                "MLOPS_CONSUMER_BUCKET_URI": str(bucket),
                "MLOPS_CONSUMER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            }
        )
    )
    offset = 0
    try:
        for start in range(0, len(frame), 20):
            rows = frame.iloc[start : start + 20]
            columns = {name: rows[name].to_numpy(dtype=object) for name in churn.FEATURE_NAMES}
            batch = LoggedBatch(
                timestamp=rows[churn.TIMESTAMP].iloc[0].replace(tzinfo=UTC).timestamp(),
                request_ids=[f"{model}-{start}"],
                row_counts=[len(rows)],
                columns=columns,
                predictions=[0] * len(rows),
                scores=np.full(len(rows), 0.1),
            )
            records, _ = log.encode(batch)
            for record in records:
                consumer.handle("predictions", 0, offset, record)
                offset += 1
        consumer.write()
    finally:
        log.close(5)
    assert not dropped
    return offset


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, model_dir: Path, evaluation: dict):
    """MLflow with the three champions, and a bucket with each model's week of traffic."""
    import mlflow
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("drift-monitor")
    # Minutes, not seconds, on a loaded shared 2-core machine (its start-up imports a lot).
    server = start_tracking_server(root / "mlflow", timeout=300)
    try:
        reference = _reference_frame()
        paths = {
            NORMAL: churn.write_parquet(reference, root / "train.parquet"),
            # 3,000 rows a year: ~120 in any +-7 days, far under min_reference_rows.
            THIN: churn.write_parquet(
                reference.sample(3_000, random_state=1), root / "thin.parquet"
            ),
        }
        client = MlflowClient(server.uri)
        versions = {}
        for key, path in paths.items():
            versions[key], _ = register(
                tracking_uri=server.uri,
                model_dir=str(model_dir),
                evaluation=evaluation,
                dataset_sha256="cd" * 32,
                pipeline="training",
                reference_path=str(path),
            )
        # Three registered models whose champions were trained on those samples (the lineage
        # `champion_reference` follows is the version's run).
        for name, key in ((NORMAL, NORMAL), (DRIFTED, NORMAL), (THIN, THIN)):
            source = client.get_model_version("churn", versions[key])
            if name != "churn":
                version = mlflow.register_model(source.source, name)
                assert version.run_id == source.run_id
                client.set_registered_model_alias(name, "champion", version.version)
        client.set_registered_model_alias("churn", "champion", versions[NORMAL])

        week = _week()
        drifted = week.copy()
        drifted[SHIFTED] = drifted[SHIFTED] * 1.3
        bucket = root / "bucket"
        for name, frame in ((NORMAL, week), (DRIFTED, drifted), (THIN, week)):
            write_prediction_log(bucket, name, frame)
        yield {"tracking_uri": server.uri, "bucket": bucket, "reference": reference, "week": week}
    finally:
        stop_tracking_server(server)


def _monitor(platform: dict, models: tuple[str, ...]) -> DriftMonitor:
    settings = MonitorSettings.from_env(
        {
            "MLOPS_DRIFT_MONITOR_BUCKET_URI": str(platform["bucket"]),
            "MLOPS_DRIFT_MONITOR_TRACKING_URI": platform["tracking_uri"],
            "MLOPS_DRIFT_MONITOR_MODELS": ",".join(models),
            "MLOPS_DRIFT_MONITOR_SETTINGS": SETTINGS.model_dump_json(),
        }
    )
    return DriftMonitor(settings, now=lambda: NOW)


def _serve(monitor: DriftMonitor):
    from prometheus_client import start_http_server

    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1", registry=monitor.registry)
    return f"http://127.0.0.1:{port}", server, thread


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_the_normal_week_is_seasonal_traffic_the_old_rules_alarm_on(platform: dict) -> None:
    """The control is a real one: compared with the whole year (what the PSI gauge did, and
    what a detector without a seasonal reference does) this ordinary week looks drifted."""
    reference, week = platform["reference"], platform["week"]
    assert max(profile_psi(reference_profile(reference), week).values()) > 0.2
    assert detect_drift(reference, week, season_days=None).verdict == "drift"


def test_the_monitor_exports_the_detectors_verdicts_over_http(platform: dict) -> None:
    monitor = _monitor(platform, (NORMAL, DRIFTED, THIN))
    url, server, thread = _serve(monitor)
    try:
        states = monitor.run_once()
        samples = _scrape(url)
    finally:
        server.shutdown()
        thread.join(5)
    version = states[NORMAL].version
    assert version == states[DRIFTED].version
    # The last 168 complete hours before NOW, as read_windows reads them.
    end = NOW.replace(minute=0, tzinfo=None)
    # A logged request of 20 rows carries its first row's time (write_prediction_log).
    stamps = platform["week"][churn.TIMESTAMP]
    stamps = stamps.groupby(np.arange(len(stamps)) // 20).transform("first")
    window_rows = int(((stamps >= end - timedelta(hours=168)) & (stamps < end)).sum())
    assert 1_500 < window_rows < 2_000
    expected = {NORMAL: "no_drift", DRIFTED: "drift", THIN: "inconclusive"}
    for model, verdict in expected.items():
        state = states[model]
        assert state.report is not None and state.report.verdict == verdict, state.report
        assert state.window_rows == window_rows, model
        for name in ("drift", "no_drift", "inconclusive"):
            got = _value(
                samples, "mlops_drift_verdict", model=model, version=state.version, verdict=name
            )
            assert got == (1.0 if name == verdict else 0.0), (model, name, got)
        rows = _value(samples, "mlops_drift_window_rows", model=model, version=state.version)
        assert rows == state.window_rows
    # The drifted feature, and only features the detector flagged, are marked.
    drifted = {
        dict(labels)["feature"]
        for (name, labels), value in samples.items()
        if name == "mlops_drift_feature_drifted" and dict(labels)["model"] == DRIFTED and value
    }
    assert SHIFTED in drifted
    assert drifted == set(states[DRIFTED].report.drifted_features)
    assert _value(samples, "mlops_drift_drifted_features", model=NORMAL, version=version) == 0
    effect = _value(
        samples, "mlops_drift_feature_effect", model=DRIFTED, version=version, feature=SHIFTED
    )
    assert effect >= SETTINGS.detector.min_ks
    # The decision is the pipeline's: check_drift on the same frames says the same.
    assert states[NORMAL].report.season.status == "same_season"
    assert states[DRIFTED].report.config == SETTINGS.detector


def test_a_missing_champion_is_a_counted_failure_and_no_verdict(platform: dict) -> None:
    monitor = _monitor(platform, ("no-such-model",))
    url, server, thread = _serve(monitor)
    try:
        state = monitor.run_once()["no-such-model"]
        samples = _scrape(url)
    finally:
        server.shutdown()
        thread.join(5)
    assert state.report is None
    assert (
        _value(
            samples,
            "mlops_drift_check_failures_total",
            model="no-such-model",
            reason="no_reference",
        )
        == 1.0
    )
    assert not [key for key in samples if key[0] == "mlops_drift_verdict"]


def test_the_rule_fires_on_drift_and_never_on_the_seasonal_week(
    platform: dict, tmp_path: Path
) -> None:
    """The platform's rendered rules in a real Prometheus scraping the monitor every second."""
    config = monitoring.MonitoringConfig.model_validate(
        {"alerts": {"drift_for_minutes": 0.05, "drift_inconclusive_for_minutes": 0.05}}
    )
    rule = monitoring.prometheus_rule(config.alerts, config.namespace)
    monitor = _monitor(platform, (NORMAL, DRIFTED, THIN))
    monitor.run_once()
    url, server, thread = _serve(monitor)
    stop = threading.Event()
    # The monitor keeps checking on its schedule while Prometheus evaluates.
    checking = threading.Thread(target=monitor.run, args=(stop,), daemon=True)
    checking.start()
    scrape = [
        {
            "job_name": "mlops-loop/drift-monitor",
            "static_configs": [{"targets": [url.removeprefix("http://")]}],
        }
    ]
    try:
        with prometheus(tmp_path / "prom", scrape, rule["spec"]["groups"]) as prom:
            deadline = time.monotonic() + 60
            while True:
                firing = {
                    (a["labels"]["alertname"], a["labels"]["model"], a["labels"].get("feature"))
                    for a in prom.alerts()
                    if a["state"] == "firing"
                }
                if (monitoring.DRIFT_ALERT, DRIFTED, SHIFTED) in firing and (
                    "ModelDriftInconclusive",
                    THIN,
                    None,
                ) in firing:
                    break
                assert time.monotonic() < deadline, f"{firing}\n{prom.alerts()}"
                time.sleep(0.5)
            # The seasonal week's verdict was scraped all along and is no drift.
            assert (
                prom.scalar(f'max(mlops_drift_verdict{{model="{NORMAL}",verdict="no_drift"}})')
                == 1.0
            )
            alerts = prom.alerts()
    finally:
        stop.set()
        checking.join(60)
        server.shutdown()
        thread.join(5)
    assert not [a for a in alerts if a["labels"]["model"] == NORMAL], alerts
    # Inconclusive never starts a retrain: no drift alert for the thin model.
    assert not [
        a
        for a in alerts
        if a["labels"]["model"] == THIN and a["labels"]["alertname"] == monitoring.DRIFT_ALERT
    ]
    drift_alerts = [a for a in alerts if a["labels"]["alertname"] == monitoring.DRIFT_ALERT]
    assert {a["labels"]["model"] for a in drift_alerts} == {DRIFTED}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MLOPS_DRIFT_MONITOR_BUCKET_URI must be set"),
        (
            {"MLOPS_DRIFT_MONITOR_MODELS": "Bad Name"},
            "MLOPS_DRIFT_MONITOR_MODELS: 'Bad Name' is not a model name",
        ),
        (
            {"MLOPS_DRIFT_MONITOR_SETTINGS": '{"window_hours": 0}'},
            "MLOPS_DRIFT_MONITOR_SETTINGS: 1 validation error for DriftSettings\nwindow_hours",
        ),
        (
            {"MLOPS_DRIFT_MONITOR_SETTINGS": '{"detector": {"min_ks": 2}}'},
            "detector.min_ks",
        ),
    ],
)
def test_bad_settings_name_the_variable(env: dict, message: str) -> None:
    base = {
        "MLOPS_DRIFT_MONITOR_BUCKET_URI": "s3://datasets",
        "MLOPS_DRIFT_MONITOR_TRACKING_URI": "http://mlflow",
        "MLOPS_DRIFT_MONITOR_MODELS": "churn",
    }
    if not env:
        base.pop("MLOPS_DRIFT_MONITOR_BUCKET_URI")
    with pytest.raises(SettingsError) as error:
        MonitorSettings.from_env({**base, **env})
    assert message in str(error.value)


def test_pipeline_arguments_carry_the_same_settings() -> None:
    from mlops_platform.pipelines.lib.drift import parse_config

    settings = DriftSettings(window_hours=72, detector={"min_ks": 0.05, "season_days": 3})
    arguments = settings.pipeline_arguments()
    assert arguments["hours"] == 72 and arguments["reference_alias"] == "champion"
    assert parse_config(arguments["drift_config"]) == settings.detector
    with pytest.raises(ValueError, match=r"(?s)drift_config: .*min_ks"):
        parse_config('{"min_ks": -1}')
    assert parse_config("") is None
