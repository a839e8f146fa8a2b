"""The retrain receiver, unit level: auth, strict payloads, dedupe, rate limit, logging."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from mlops_platform.pipelines.loop import receiver as rcv
from mlops_platform.pipelines.loop.receiver_settings import (
    ReceiverSettings,
    SettingsError,
    settings_table,
)
from mlops_platform.pipelines.loop.runs import KfpRuns, RetrainRun, run_name

TOKEN = "s3cr3t-token-0123456789"
ENV = {
    "MLOPS_RECEIVER_TOKEN": TOKEN,
    "MLOPS_RECEIVER_DATA_URI": "s3://datasets/{model}/recent.parquet",
    "MLOPS_RECEIVER_REFERENCE_URI": "s3://datasets/{model}/reference.parquet",
    "MLOPS_RECEIVER_TRACKING_URI": "http://mlflow.mlflow.svc.cluster.local:5000",
    "MLOPS_RECEIVER_PIPELINE_ARGUMENTS": '{"search_iterations": 1}',
    "MLOPS_RECEIVER_RETRAIN_INTERVAL_SECONDS": "3600",
}
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class MemoryRuns:
    """RetrainRuns kept in a list: records what the receiver starts."""

    def __init__(self):
        self.runs: list[RetrainRun] = []
        self.arguments: list[dict[str, Any]] = []
        self.clock = T0

    def recent(self, model):
        return [r for r in reversed(self.runs) if r.model == model]

    def start(self, model, episode, arguments):
        run = RetrainRun(f"run-{len(self.runs) + 1}", model, episode, self.clock)
        self.runs.append(run)
        self.arguments.append(arguments)
        return run


def alert(status="firing", fingerprint="0123456789abcdef", starts=T0, **labels):
    return {
        "status": status,
        "labels": {
            "alertname": "ModelFeatureDrift",
            "model": "churn",
            "version": "3",
            "namespace": "serving",
            "feature": "tenure",
            "severity": "warning",
            **labels,
        },
        "annotations": {"summary": "drifted"},
        "startsAt": starts.isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def notification(*alerts, group_key='{}/{alertname="ModelFeatureDrift"}:{model="churn"}'):
    alerts = alerts or (alert(),)
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "platform-retrain",
        "groupLabels": {"alertname": "ModelFeatureDrift", "model": "churn"},
        "commonLabels": {"alertname": "ModelFeatureDrift"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


@pytest.fixture
def setup():
    runs = MemoryRuns()
    settings = ReceiverSettings.from_env(ENV)
    app = rcv.App(rcv.Receiver(settings, runs, now=lambda: runs.clock))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")
    return SimpleNamespace(runs=runs, client=client)


async def post(client, body, token=TOKEN, content_type="application/json"):
    headers = {"content-type": content_type}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/alerts", content=raw, headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("token", "content_type", "body", "status", "error"),
    [
        (None, "application/json", notification(), 401, "unauthorized"),
        ("wrong-token-0123456789", "application/json", notification(), 401, "unauthorized"),
        (TOKEN + "x", "application/json", notification(), 401, "unauthorized"),
        (TOKEN, "text/plain", notification(), 415, "expected application/json"),
        (TOKEN, "application/json", b"{not json", 422, "<root>: Invalid JSON"),
        (TOKEN, "application/json", {**notification(), "version": "3"}, 422, "version: Input"),
        (
            TOKEN,
            "application/json",
            {**notification(), "extra": 1},
            422,
            "extra: Extra inputs are not permitted",
        ),
        (TOKEN, "application/json", {**notification(), "alerts": []}, 422, "alerts: List should"),
        (
            TOKEN,
            "application/json",
            notification(alert(fingerprint="XYZ")),
            422,
            "alerts.0.fingerprint: String should match pattern",
        ),
        (
            TOKEN,
            "application/json",
            notification({**alert(), "labels": {"alertname": "ModelFeatureDrift"}}),
            422,
            "alerts[0]: a ModelFeatureDrift alert without a model label",
        ),
        (
            TOKEN,
            "application/json",
            notification(alert(model="../etc")),
            422,
            "alerts[0].labels.model: not a model name",
        ),
    ],
)
async def test_bad_requests_get_4xx_and_start_nothing(
    setup, token, content_type, body, status, error
):
    response = await post(setup.client, body, token, content_type)
    assert response.status_code == status
    assert response.json()["error"].startswith(error)
    assert setup.runs.runs == []


@pytest.mark.anyio
async def test_paths_methods_and_body_limit(setup):
    assert (await setup.client.get("/healthz")).json() == {"status": "ok"}
    assert (await setup.client.get("/alerts")).status_code == 405
    assert (await setup.client.post("/other")).status_code == 404
    big = {**notification(), "receiver": "x" * (1024 * 1024)}
    assert (await post(setup.client, big)).status_code == 413
    assert setup.runs.runs == []


@pytest.mark.anyio
async def test_firing_drift_starts_one_run_with_the_settings_arguments(setup, caplog):
    caplog.set_level(logging.INFO, logger="mlops_platform.pipelines.loop.receiver")
    two_features = notification(alert(), alert(fingerprint="fedcba9876543210", feature="plan"))
    response = await post(setup.client, two_features)
    assert response.status_code == 202
    [decision] = response.json()["decisions"]
    assert decision["event"] == "retrain_started"
    assert decision["features"] == ["plan", "tenure"]
    assert [r.model for r in setup.runs.runs] == ["churn"]
    assert setup.runs.arguments == [
        {
            "data_uri": "s3://datasets/churn/recent.parquet",
            "model_name": "churn",
            "reference_uri": "s3://datasets/churn/reference.parquet",
            "tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
            "search_iterations": 1,
        }
    ]
    assert setup.runs.runs[0].episode == decision["episode"]
    [line] = [r.getMessage() for r in caplog.records]
    assert json.loads(line) == decision
    assert decision["fingerprints"] == ["0123456789abcdef", "fedcba9876543210"]
    assert TOKEN not in caplog.text


@pytest.mark.anyio
async def test_the_same_episode_never_starts_twice(setup):
    assert (await post(setup.client, notification())).status_code == 202
    # Alertmanager re-sends the group (a new feature joined, or repeat_interval): same episode.
    setup.runs.clock = T0 + timedelta(hours=5)
    again = notification(alert(), alert(fingerprint="fedcba9876543210", feature="plan"))
    response = await post(setup.client, again)
    assert response.status_code == 200
    [decision] = response.json()["decisions"]
    assert (decision["event"], decision["reason"], decision["run_id"]) == (
        "retrain_skipped",
        "duplicate",
        "run-1",
    )
    assert len(setup.runs.runs) == 1


@pytest.mark.anyio
async def test_at_most_one_retrain_per_model_per_period(setup):
    assert (await post(setup.client, notification())).status_code == 202
    # A new episode (the alert resolved and fired again) inside the period: rate-limited.
    setup.runs.clock = T0 + timedelta(minutes=59)
    later = notification(alert(starts=T0 + timedelta(minutes=50)))
    response = await post(setup.client, later)
    [decision] = response.json()["decisions"]
    assert (decision["event"], decision["reason"]) == ("retrain_skipped", "rate_limited")
    assert decision["retry_after"] == (T0 + timedelta(hours=1)).isoformat()
    # Another model is not limited by churn's run.
    other = notification(alert(model="fraud"), group_key='{}:{model="fraud"}')
    assert (await post(setup.client, other)).status_code == 202
    # After the period the new episode starts a run.
    setup.runs.clock = T0 + timedelta(minutes=61)
    assert (await post(setup.client, later)).status_code == 202
    assert [r.model for r in setup.runs.runs] == ["churn", "fraud", "churn"]


@pytest.mark.anyio
async def test_resolved_and_other_alerts_start_nothing(setup):
    resolved = notification(alert(status="resolved"))
    response = await post(setup.client, resolved)
    assert response.status_code == 200
    assert response.json()["decisions"][0]["event"] == "alerts_ignored"
    other = notification(alert(alertname="ModelServerDown"))
    response = await post(setup.client, other)
    assert response.json()["decisions"][0]["alertnames"] == ["ModelServerDown"]
    assert setup.runs.runs == []


@pytest.mark.anyio
async def test_models_outside_the_allow_list_are_refused():
    runs = MemoryRuns()
    settings = ReceiverSettings.from_env({**ENV, "MLOPS_RECEIVER_MODELS": "fraud"})
    app = rcv.App(rcv.Receiver(settings, runs, now=lambda: runs.clock))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        response = await post(c, notification())
    assert response.status_code == 422
    assert response.json()["error"] == "alerts[0].labels.model: 'churn' may not be retrained"
    assert runs.runs == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MLOPS_RECEIVER_TOKEN": ""}, "MLOPS_RECEIVER_TOKEN must be set to at least 16"),
        ({"MLOPS_RECEIVER_TOKEN": "short"}, "MLOPS_RECEIVER_TOKEN must be set to at least 16"),
        ({"MLOPS_RECEIVER_DATA_URI": ""}, "MLOPS_RECEIVER_DATA_URI must be set"),
        ({"MLOPS_RECEIVER_TRACKING_URI": " "}, "MLOPS_RECEIVER_TRACKING_URI must be set"),
        ({"MLOPS_RECEIVER_PIPELINE_ARGUMENTS": "[1]"}, "MLOPS_RECEIVER_PIPELINE_ARGUMENTS must"),
        (
            {"MLOPS_RECEIVER_PIPELINE_ARGUMENTS": '{"data_uri": "x"}'},
            "MLOPS_RECEIVER_PIPELINE_ARGUMENTS: data_uri come from their own settings",
        ),
        ({"MLOPS_RECEIVER_BACKEND": "argo"}, "MLOPS_RECEIVER_BACKEND='argo' must be one of"),
        ({"MLOPS_RECEIVER_RETRAIN_INTERVAL_SECONDS": "-1"}, "MLOPS_RECEIVER_RETRAIN_INTERVAL"),
        ({"MLOPS_RECEIVER_MODELS": "churn,Bad Model"}, "MLOPS_RECEIVER_MODELS: 'Bad Model'"),
    ],
)
def test_settings_errors_name_the_variable(change, message):
    with pytest.raises(SettingsError) as caught:
        ReceiverSettings.from_env({**ENV, **change})
    assert str(caught.value).startswith(message)


def test_the_token_is_never_shown():
    settings = ReceiverSettings.from_env(ENV)
    assert TOKEN not in repr(settings)
    with pytest.raises(SettingsError) as caught:
        ReceiverSettings.from_env({**ENV, "MLOPS_RECEIVER_TOKEN": "short-secret"})
    assert "short-secret" not in str(caught.value)


def test_readme_settings_table_is_current():
    from pathlib import Path

    readme = (
        Path(__file__).resolve().parents[2] / "mlops_platform" / "components" / "loop" / "README.md"
    )
    assert settings_table() in readme.read_text(), "run `uv run mlops docs`"


def test_kfp_runs_reads_dedupe_and_rate_limit_state_back_from_kfp():
    """KFP is the state: runs are found by name in the experiment, newest first."""
    calls = []

    class Client:
        def create_experiment(self, name):
            calls.append(("create_experiment", name))
            return SimpleNamespace(experiment_id="exp-1")

        def list_runs(self, **kwargs):
            calls.append(("list_runs", kwargs))
            run = SimpleNamespace
            return SimpleNamespace(
                runs=[
                    run(
                        run_id="b",
                        display_name=run_name("churn", "b" * 12),
                        created_at=T0,
                        state="RUNNING",
                    ),
                    run(
                        run_id="c",
                        display_name=run_name("fraud", "c" * 12),
                        created_at=T0,
                        state="SUCCEEDED",
                    ),
                    run(run_id="d", display_name="manual run", created_at=T0, state="FAILED"),
                    run(
                        run_id="a",
                        display_name=run_name("churn", "a" * 12),
                        created_at=T0.replace(tzinfo=None),
                        state="SUCCEEDED",
                    ),
                ]
            )

        def create_run_from_pipeline_package(self, *args, **kwargs):
            calls.append(("create_run", args, kwargs))
            return SimpleNamespace(run_id="new")

    runs = KfpRuns("http://kfp", "drift-retrain", client=Client())
    found = runs.recent("churn")
    assert [(r.run_id, r.episode, r.created_at) for r in found] == [
        ("b", "b" * 12, T0),
        ("a", "a" * 12, T0),
    ]
    started = runs.start("churn", "e" * 12, {"data_uri": "x"})
    assert started.run_id == "new"
    assert calls[0] == ("create_experiment", "drift-retrain")
    assert calls[1][1] == {"experiment_id": "exp-1", "page_size": 100, "sort_by": "created_at desc"}
    _, args, kwargs = calls[2]
    assert args[0].endswith("mlops_platform/pipelines/pipelines/drift_pipeline.yaml")
    assert kwargs == {
        "arguments": {"data_uri": "x"},
        "run_name": "retrain-churn-eeeeeeeeeeee",
        "experiment_id": "exp-1",
        "pipeline_root": None,
    }


def test_concurrent_notifications_of_one_episode_start_one_run():
    """Alertmanager can deliver one group twice at once (retries): the decision is atomic."""
    import threading
    import time

    class SlowRuns(MemoryRuns):
        def start(self, model, episode, arguments):
            time.sleep(0.2)  # a KFP API call
            return super().start(model, episode, arguments)

    runs = SlowRuns()
    receiver = rcv.Receiver(ReceiverSettings.from_env(ENV), runs, now=lambda: runs.clock)
    parsed = rcv.parse_notification(json.dumps(notification()).encode())
    results = []
    threads = [
        threading.Thread(target=lambda: results.extend(receiver.handle(parsed))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs.runs) == 1
    assert sorted(r["event"] for r in results) == ["retrain_skipped"] * 3 + ["retrain_started"]


@pytest.mark.anyio
async def test_an_unreachable_kfp_is_a_503_that_alertmanager_retries(caplog):
    """The real kfp SDK against a closed port: the receiver starts anyway and answers 503."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = ReceiverSettings.from_env(
        {**ENV, "MLOPS_RECEIVER_KFP_HOST": f"http://127.0.0.1:{port}"}
    )
    app = rcv.build(settings)  # builds no kfp.Client yet: KFP may still be starting
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        response = await post(c, notification())
    assert response.status_code == 503
    assert response.json() == {"error": "pipeline backend unavailable"}
    [line] = [r.getMessage() for r in caplog.records if "backend_unavailable" in r.getMessage()]
    assert json.loads(line)["group_key"] == notification()["groupKey"]
    assert TOKEN not in caplog.text
