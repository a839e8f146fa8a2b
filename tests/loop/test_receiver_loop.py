"""Drift alerts start retraining, with real processes only.

Two `mlops serve` processes serve the same churn-like model under two names; one receives
drifted traffic, the other normal traffic. Their prediction files go into windows with the
prediction-log consumer's own code, the drift monitor checks both windows with the drift
pipeline's detector, a real Prometheus scrapes the monitor and evaluates the platform's own
rendered PrometheusRule (mlops_platform/components/monitoring, drift `for` shortened through the config); a
real Alertmanager runs the platform's generated configuration (its retrain
route and the bearer token file); the retrain receiver runs as `python -m
mlops_platform.pipelines.loop.receiver` with kfp's local runner standing in for the KFP API. The drifted
model's alert reaches the receiver, which starts the drift pipeline once; the pipeline finds
the drift in the recent window and registers a new version. The normal model stays silent and
starts nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from prometheus_client import start_http_server
from prometheus_support import alertmanager, free_port, prometheus

from mlops_platform.components.monitoring import model as monitoring
from mlops_platform.pipelines.data import churn
from mlops_platform.pipelines.lib.drift import DriftSettings
from mlops_platform.pipelines.loop.consumer import ingest_prediction_file
from mlops_platform.pipelines.loop.monitor import DriftMonitor
from mlops_platform.pipelines.loop.monitor_settings import MonitorSettings
from tests.serving.serving_support import (
    build_churn_model,
    split_payload,
    start_server,
    stop_server,
    training_frame,
)

TOKEN = "loop-test-token-0123456789abcdef"
WINDOW_ROWS = 300
DRIFTED, NORMAL = "churn-drifted", "churn-normal"


def _receiver(
    tmp_path: Path, data: Path, reference: Path, tracking_uri: str
) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log = tmp_path / "receiver.log"
    env = {
        **os.environ,
        "MLOPS_RECEIVER_PORT": str(port),
        "MLOPS_RECEIVER_TOKEN": TOKEN,
        "MLOPS_RECEIVER_BACKEND": "local",
        "MLOPS_RECEIVER_PIPELINE_ROOT": str(tmp_path / "pipeline-root"),
        "MLOPS_RECEIVER_DATA_URI": str(data),
        "MLOPS_RECEIVER_REFERENCE_URI": str(reference),
        "MLOPS_RECEIVER_TRACKING_URI": tracking_uri,
        # Small and quick: one search candidate on a sample (the pipeline's own tests cover
        # the full search).
        "MLOPS_RECEIVER_PIPELINE_ARGUMENTS": json.dumps(
            {"search_iterations": 1, "search_rows": 2000, "max_iter": 50}
        ),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_platform.pipelines.loop.receiver"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"receiver did not start:\n{log.read_text()}") from None
            time.sleep(0.2)
    return process, url, log


def _init_mlflow(tracking_uri: str) -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri).search_experiments(max_results=1)


def _events(log: Path) -> list[dict]:
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def _records(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def _monitor(bucket: Path, reference: Path) -> DriftMonitor:
    """The drift monitor with the platform's default detector settings. The servers log with
    the wall clock, and the monitor reads complete hours: its clock is an hour ahead so the
    current hour counts (the test cannot wait for it to end)."""
    settings = MonitorSettings.from_env(
        {
            "MLOPS_DRIFT_MONITOR_BUCKET_URI": str(bucket),
            "MLOPS_DRIFT_MONITOR_TRACKING_URI": "http://unused.invalid",
            "MLOPS_DRIFT_MONITOR_REFERENCE_URI": str(reference),
            "MLOPS_DRIFT_MONITOR_MODELS": f"{DRIFTED},{NORMAL}",
            "MLOPS_DRIFT_MONITOR_SETTINGS": DriftSettings(window_hours=2).model_dump_json(),
        }
    )
    return DriftMonitor(settings, now=lambda: datetime.now(UTC) + timedelta(hours=1))


def _send(server, frame) -> None:
    for start in range(0, len(frame), 100):
        response = server.post("/invocations", split_payload(frame.iloc[start : start + 100]))
        assert response.status == 200, response.body


@pytest.mark.slow
def test_drifted_traffic_starts_the_drift_pipeline_and_normal_traffic_starts_nothing(tmp_path):
    started = time.monotonic()
    model_path = build_churn_model(tmp_path / "models")["path"]
    # The recent window the pipeline reads has drifted too, so the run retrains.
    scenario = churn.DriftScenario(kind="sudden", magnitude=2.0, start_day=0)
    data = churn.write_parquet(
        churn.generate(3000, seed=2, start="2026-01-01", days=90, drift=scenario),
        tmp_path / "recent.parquet",
    )
    reference = churn.write_parquet(
        churn.generate(6000, seed=1, start="2025-01-01", days=365), tmp_path / "ref.parquet"
    )

    # The platform's rules and routing, from the same models the stack renders; only the
    # timings are the test's (config values, production defaults untouched).
    config = monitoring.MonitoringConfig.model_validate(
        {
            "alerts": {"drift_for_minutes": 0.05},
            "alerting": {
                "group_wait_seconds": 1,
                "group_interval_seconds": 1,
                "repeat_interval_minutes": 1,
            },
        }
    )
    rule = monitoring.prometheus_rule(config.alerts, config.namespace)
    secrets = tmp_path / "secrets"
    token_file = secrets / monitoring.RECEIVER_SECRET / monitoring.RETRAIN_TOKEN_KEY
    token_file.parent.mkdir(parents=True)
    token_file.write_text(TOKEN)

    env: dict[str, str] = {}
    # The served model's training data: the drift monitor's reference (an explicit file, as
    # loop.reference_path gives one; the registry path is tests/pipelines/test_drift_monitor).
    served_reference = tmp_path / "served-reference.parquet"
    training_frame(3000, seed=1).to_parquet(served_reference)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Creating MLflow's tables takes seconds; done beside the server start-up, not inside the
    # first pipeline step that touches the registry.
    mlflow_ready = threading.Thread(target=_init_mlflow, args=(tracking_uri,))
    mlflow_ready.start()
    receiver, receiver_url, receiver_log = _receiver(tmp_path, data, reference, tracking_uri)
    servers = {}
    stack = contextlib.ExitStack()
    try:
        for name in (DRIFTED, NORMAL):
            (tmp_path / name).mkdir()
            servers[name] = start_server(
                model_path, tmp_path / name, {**env, "MLOPS_SERVE_MODEL_NAME": name}
            )
        am_config = monitoring.alertmanager_config(
            config.alerting, f"{receiver_url}/alerts", secrets_dir=str(secrets)
        )
        (tmp_path / "alertmanager-config.yaml").write_text(yaml.safe_dump(am_config))
        mlflow_ready.join()
        bucket = tmp_path / "bucket"
        monitor = _monitor(bucket, served_reference)
        port = free_port()
        metrics_server, metrics_thread = start_http_server(
            port, "127.0.0.1", registry=monitor.registry
        )
        stack.callback(metrics_thread.join, 5)
        stack.callback(metrics_server.shutdown)
        scrape = [
            {
                "job_name": "mlops-loop/drift-monitor",
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            }
        ]
        with (
            alertmanager(tmp_path / "am", am_config) as am,
            prometheus(tmp_path / "prom", scrape, rule["spec"]["groups"], am.url) as prom,
        ):
            rng = np.random.default_rng(7)
            normal = training_frame(WINDOW_ROWS, seed=11)
            drifted = training_frame(WINDOW_ROWS, seed=12)
            drifted["tenure"] = rng.uniform(90, 100, WINDOW_ROWS)  # the model saw 0-100
            drifted["plan"] = "gold"
            _send(servers[NORMAL], normal)
            _send(servers[DRIFTED], drifted)
            # The prediction log, as the consumer writes it from Kafka, into the bucket, and
            # one check by the drift monitor.
            for name in servers:
                log = tmp_path / name / "predictions.jsonl"
                deadline = time.monotonic() + 30
                while _records(log) < WINDOW_ROWS // 100:
                    assert time.monotonic() < deadline, f"{name}: prediction log not written"
                    time.sleep(0.2)
                ingest_prediction_file(str(log), str(bucket))
            monitor.run_once()
            # ~45 s on a quiet machine, twice that on a loaded shared runner.
            deadline = time.monotonic() + 180
            while not any(e.get("event") == "retrain_finished" for e in _events(receiver_log)):
                assert receiver.poll() is None, receiver_log.read_text()
                assert time.monotonic() < deadline, (
                    f"no finished retrain after 180 s\nalerts: {prom.alerts()}\n"
                    f"receiver:\n{receiver_log.read_text()}\nalertmanager:\n{am.log.read_text()}"
                )
                time.sleep(0.5)

            firing = {
                (a["labels"]["alertname"], a["labels"]["model"])
                for a in prom.alerts()
                if a["state"] == "firing"
            }
            assert ("ModelFeatureDrift", DRIFTED) in firing
            assert not any(model == NORMAL for _, model in firing), firing
            # The normal model's window was checked and scraped the whole time: no drift.
            assert (
                prom.scalar(f'max(mlops_drift_verdict{{model="{NORMAL}",verdict="no_drift"}})')
                == 1.0
            )
            assert prom.scalar(f'max(mlops_drift_window_rows{{model="{NORMAL}"}})') == (WINDOW_ROWS)
    finally:
        stack.close()
        for server in servers.values():
            stop_server(server)
        receiver.terminate()
        receiver.wait(10)

    events = _events(receiver_log)
    starts = [e for e in events if e["event"] == "retrain_started"]
    # Alertmanager re-sent the group every second meanwhile: one run, the rest deduplicated.
    assert [e["model"] for e in starts] == [DRIFTED], events
    assert starts[0]["alertname"] == "ModelFeatureDrift"
    assert set(starts[0]["features"]) <= {"tenure", "plan"} and starts[0]["features"]
    assert not [e for e in events if e.get("model") == NORMAL]
    skipped = [e for e in events if e["event"] == "retrain_skipped"]
    assert all(e["reason"] == "duplicate" and e["model"] == DRIFTED for e in skipped)
    [finished] = [e for e in events if e["event"] == "retrain_finished"]
    assert (finished["model"], finished["state"]) == (DRIFTED, "SUCCEEDED"), finished
    # The loop closed: the drift pipeline found the drift and registered a new version.
    from mlflow import MlflowClient

    [version] = MlflowClient(tracking_uri).search_model_versions("name='churn'")
    assert finished["output"] == str(version.version) == "1"
    assert version.tags["pipeline"] == "drift"
    assert TOKEN not in receiver_log.read_text()
    # ~70 s here when the machine is quiet; not asserted: a shared CI runner's load is not the
    # code's fault.
    print(f"drift to registered version in {time.monotonic() - started:.0f} s")
