"""A fresh platform: `mlops serve` starts before its model (and its tracking server) exist.

Against a real `mlflow server` on loopback: the server binds at once, stays live and not
ready while it waits, becomes ready as soon as the alias is set, and stops (exit 1) only for
a model that exists but cannot be served.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from serving_support import (
    ServerProcess,
    TrackingServer,
    free_port,
    metric,
    register_version,
    start_server,
    start_tracking_server,
    stop_server,
    stop_tracking_server,
    v2_infer_body,
    wait_ready,
)

pytestmark = pytest.mark.slow

# Small waits keep the tests fast; the schedule itself is unit-tested.
FAST_RETRY = {
    "MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS": "0.2",
    "MLOPS_SERVE_LOAD_RETRY_MAX_SECONDS": "0.5",
}


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrackingServer]:
    server = start_tracking_server(tmp_path_factory.mktemp("mlflow"))
    yield server
    stop_tracking_server(server)


def eventually(check: Callable[[], Any], what: str, server: ServerProcess, timeout: float = 30):
    """The first truthy result of `check` within `timeout`, else a failure showing the log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited {server.proc.returncode}:\n{server.log()}")
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}\n{server.log()}")


def ready_reason(server: ServerProcess) -> str:
    response = server.get("/v2/health/ready")
    assert response.status == 503, response.body
    assert response.body["ready"] is False
    return str(response.body["reason"])


def test_fresh_platform_tracking_server_then_model_then_alias(
    churn_model: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()  # where the tracking server will be; nothing listens there yet
    uri = "models:/churn@champion"
    server = start_server(
        uri, tmp_path, {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}", **FAST_RETRY}, False
    )
    tracking: TrackingServer | None = None
    try:
        # 1. No tracking server: live at once, not ready, predictions refused with Retry-After.
        eventually(lambda: server.get("/v2/health/live").status == 200, "live", server)
        reason = eventually(
            lambda: "cannot reach" in (r := ready_reason(server)) and r, "unreachable", server
        )
        assert reason.startswith(f"{uri}: cannot reach the tracking server (http://127.0.0.1:")
        assert "Connection refused" in reason
        body = server.get("/v2/health/ready").body
        assert body["model_uri"] == uri and body["attempts"] >= 1
        infer = server.post("/v2/models/churn/infer", v2_infer_body(churn_model["frame"].head(2)))
        assert infer.status == 503
        assert infer.body["error"].startswith("the model is not loaded yet: models:/churn@champion")
        assert infer.headers["retry-after"] == "1"  # the waits are below a second
        invocations = server.post("/invocations", {"inputs": {"tenure": [1.0]}})
        assert invocations.status == 503 and "retry-after" in invocations.headers
        assert invocations.body["error_code"] == "TEMPORARILY_UNAVAILABLE"
        text = server.metrics()
        assert metric(text, "model_server_ready") == 0
        assert metric(text, "model_server_model_load_attempts_total", outcome="unavailable") >= 1
        assert metric(text, "model_server_model_load_attempts_total", outcome="loaded") == 0

        # 2. The tracking server is up, nothing registered.
        tracking = start_tracking_server(tmp_path / "mlflow", port)
        reason = eventually(
            lambda: "not found" in (r := ready_reason(server)) and r, "not registered", server
        )
        assert (
            reason == f"{uri}: RESOURCE_DOES_NOT_EXIST: Registered Model with name=churn not found"
        )

        # 3. Registered, but no alias yet.
        from mlflow import MlflowClient

        MlflowClient(tracking.uri).create_registered_model("churn")
        reason = eventually(
            lambda: "alias" in (r := ready_reason(server)) and r, "no alias", server
        )
        assert reason == (
            f"{uri}: registered model 'churn' has no alias 'champion' yet (aliases: none)"
        )

        # 4. A version with the alias: ready within a bounded time, then served as ever.
        version = register_version(tracking.uri, churn_model["path"], "churn", "champion")
        aliased = time.monotonic()
        wait_ready(server, timeout=60)
        # Loading and warming up take a few seconds on a busy machine; the wait adds < 0.5 s.
        assert time.monotonic() - aliased < 30
        frame = churn_model["frame"].head(3)
        response = server.post("/v2/models/churn/infer", v2_infer_body(frame))
        assert response.status == 200, response.body
        assert response.body["model_version"] == version == "1"
        outputs = {o["name"]: o["data"] for o in response.body["outputs"]}
        assert outputs["predictions"] == churn_model["model"].predict(frame).tolist()
        expected = churn_model["model"].predict_proba(frame)[:, 1]
        assert outputs["scores"] == pytest.approx(expected.tolist(), abs=1e-12)
        text = server.metrics()
        assert metric(text, "model_server_ready") == 1
        assert metric(text, "model_server_model_load_attempts_total", outcome="loaded") == 1
        assert metric(text, "model_server_model_load_attempts_total", outcome="not_found") >= 2
        assert (
            metric(text, "model_server_requests_total", version="1", endpoint="infer", code="200")
            == 1
        )

        # One line per attempt, never a traceback while waiting.
        log = server.log()
        waits = re.findall(r"model not available yet \(attempt (\d+), (\w+)\)", log)
        assert [int(n) for n, _ in waits] == list(range(1, len(waits) + 1))
        assert {outcome for _, outcome in waits} == {"unavailable", "not_found"}
        assert "Traceback" not in log
        assert stop_server(server) == 0
    finally:
        stop_server(server)
        if tracking is not None:
            stop_tracking_server(tracking)


def test_sigterm_while_waiting_exits_promptly(tmp_path: Path) -> None:
    # Credentials in the tracking URI must never reach the log or the readiness answer.
    tracking_uri = f"http://serving:hunter2-secret@127.0.0.1:{free_port()}"
    server = start_server(
        "models:/churn@champion",
        tmp_path,
        {
            "MLFLOW_TRACKING_URI": tracking_uri,
            # Long waits: SIGTERM must not wait for the next attempt.
            "MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS": "30",
            "MLOPS_SERVE_LOAD_RETRY_MAX_SECONDS": "60",
        },
        wait=False,
    )
    try:
        reason = eventually(
            lambda: "cannot reach" in (r := ready_reason(server)) and r, "unreachable", server
        )
        assert "hunter2" not in reason and "<redacted>@127.0.0.1" in reason
        assert server.get("/v2/health/live").status == 200
        retry_after = server.post("/invocations", {"inputs": {"tenure": [1.0]}}).headers
        assert 20 <= int(retry_after["retry-after"]) <= 30
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert "hunter2" not in server.log()
    finally:
        stop_server(server)


def _unservable(source: Path, target: Path, change: str) -> str:
    """A copy of a saved model that MLflow can download but this server cannot serve."""
    import shutil

    shutil.copytree(source, target)
    mlmodel = yaml.safe_load((target / "MLmodel").read_text())
    if change == "flavor":
        # Only a flavor nobody here can load: no sklearn, no python_function.
        mlmodel["flavors"] = {"h2o": {"data": "model.h2o", "h2o_version": "3.46.0"}}
    else:
        mlmodel["signature"]["inputs"] = "[{this is not json"
    (target / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return str(target)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("flavor", 'cannot load model: Model does not have the "python_function" flavor'),
        ("signature", "cannot read MLmodel"),
    ],
)
def test_a_model_that_exists_but_cannot_be_served_exits_1(
    churn_model: dict[str, Any], tracking: TrackingServer, tmp_path: Path, change: str, message: str
) -> None:
    name = f"broken-{change}"
    model = _unservable(Path(churn_model["path"]), tmp_path / name, change)
    register_version(tracking.uri, model, name, "champion")
    server = start_server(
        f"models:/{name}@champion",
        tmp_path,
        {"MLFLOW_TRACKING_URI": tracking.uri, **FAST_RETRY},
        wait=False,
    )
    assert server.proc.wait(timeout=90) == 1
    log = server.log()
    assert f"mlops serve: start-up failed: models:/{name}@champion: {message}" in log
    # Not retried: the error is the model's, and waiting cannot fix it.
    assert "model not available yet" not in log


def test_a_malformed_alias_is_not_waited_for(tracking: TrackingServer, tmp_path: Path) -> None:
    server = start_server(
        "models:/churn@not-an-alias!",
        tmp_path,
        {"MLFLOW_TRACKING_URI": tracking.uri, **FAST_RETRY},
        wait=False,
    )
    assert server.proc.wait(timeout=90) == 1
    assert (
        "mlops serve: start-up failed: models:/churn@not-an-alias!: Invalid alias name: "
        "'not-an-alias!'" in server.log()
    )


def test_a_version_whose_artifacts_are_not_uploaded_yet_is_waited_for(
    churn_model: dict[str, Any], tracking: TrackingServer, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking.uri)
    experiment = client.get_experiment_by_name("serving-tests")
    run = client.create_run(
        experiment.experiment_id if experiment else client.create_experiment("serving-tests")
    )
    # Registered and aliased before its run has uploaded anything: the download is empty.
    client.create_registered_model("late")
    version = client.create_model_version(
        "late", f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    ).version
    client.set_registered_model_alias("late", "champion", version)
    server = start_server(
        "models:/late@champion",
        tmp_path,
        {"MLFLOW_TRACKING_URI": tracking.uri, **FAST_RETRY},
        False,
    )
    try:
        reason = eventually(
            lambda: "MLmodel" in (r := ready_reason(server)) and r, "no artifacts", server
        )
        assert reason == f"models:/late/{version}: its artifacts have no MLmodel file (yet)"
        # MLmodel last, as the server takes its presence to mean the upload is complete (a
        # download between the two would fail to load: see the README).
        for entry in sorted(Path(churn_model["path"]).iterdir(), key=lambda p: p.name == "MLmodel"):
            if entry.is_dir():
                client.log_artifacts(run.info.run_id, str(entry), f"model/{entry.name}")
            else:
                client.log_artifact(run.info.run_id, str(entry), "model")
        wait_ready(server, timeout=60)
        frame = churn_model["frame"].head(2)
        response = server.post("/v2/models/late/infer", v2_infer_body(frame))
        assert response.status == 200, response.body
        assert response.body["outputs"][0]["data"] == churn_model["model"].predict(frame).tolist()
    finally:
        assert stop_server(server) == 0
