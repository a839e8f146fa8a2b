"""The retrain receiver: Alertmanager's drift alerts start the drift/retrain pipeline on KFP.

`python -m mlops_platform.pipelines.loop.receiver` (the platform image; settings in `receiver_settings.py`)
serves a small ASGI app:

- `POST /alerts`: an Alertmanager webhook notification (version 4), bearer-authenticated
  (compared in constant time), validated strictly; anything unexpected gets a 4xx and starts
  nothing. Each firing drift alert group of a model starts one run of the drift pipeline,
  unless a run for the same alert episode exists (deduplication) or the model was retrained
  within the rate-limit period. Resolved and other alerts start nothing.
- `POST /flagger/gate` and `POST /flagger/settle`: Flagger's `pre-rollout` and `post-rollout`
  webhooks of the progressive serving deployments in `MLOPS_RECEIVER_RELEASES`
  (`release.py`): the golden-set gate (200 passes, 412 fails, 503 cannot decide yet), and the
  alias move or rejection after a promotion or rollback. Flagger sends no credentials: the
  NetworkPolicy admits only Flagger's and Alertmanager's pods, and both calls only act on
  what the registry and the serving pods already say.
- in the background, every `MLOPS_RECEIVER_RECONCILE_SECONDS`: a new challenger is released
  into its deployment's release ConfigMap (which starts Flagger's analysis).
- `GET /healthz`: liveness and readiness.

Every decision is one JSON log line naming the alert that caused it; never a token or header.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_platform.pipelines.loop.receiver_settings import (
    MODEL_NAME,
    ReceiverSettings,
    SettingsError,
)
from mlops_platform.pipelines.loop.release import (
    Deployment,
    FlaggerPayload,
    GateResult,
    KubernetesReleaseStore,
    ReleaseError,
    ReleaseStore,
    gate,
    reconcile,
    settle,
)
from mlops_platform.pipelines.loop.runs import COMPILED_PIPELINES, KfpRuns, LocalRuns, RetrainRuns

log = logging.getLogger("mlops_platform.pipelines.loop.receiver")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# --- Alertmanager's webhook payload (version 4) -----------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Alert(_Strict):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: datetime
    endsAt: datetime
    generatorURL: str
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")


class Notification(_Strict):
    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    truncatedAlerts: int = Field(ge=0)
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str]
    commonLabels: dict[str, str]
    commonAnnotations: dict[str, str]
    externalURL: str
    alerts: list[Alert] = Field(min_length=1)


class PayloadError(ValueError):
    """A notification the receiver will not act on; the message is safe to return."""


# --- decisions ----------------------------------------------------------------------------------


def episode_of(group_key: str, alerts: list[Alert]) -> str:
    """One id per alert episode of a group: the group and when its earliest alert started.
    Alertmanager re-sends a firing group (new features join, repeat_interval); the episode
    stays the same until the alerts resolve and fire again."""
    started = min(alert.startsAt for alert in alerts).astimezone(UTC).isoformat()
    return hashlib.sha256(f"{group_key}\n{started}".encode()).hexdigest()[:12]


class Receiver:
    """Turns notifications into at most one run per model and episode and rate-limit period."""

    def __init__(
        self,
        settings: ReceiverSettings,
        runs: RetrainRuns,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.settings = settings
        self.runs = runs
        self._now = now
        # One decision at a time: two notifications of one group arriving together must not
        # both see "no run yet".
        self._lock = threading.Lock()

    def drift_alerts_by_model(self, notification: Notification) -> dict[str, list[Alert]]:
        """Firing drift alerts per model; PayloadError when one cannot be acted on."""
        found: dict[str, list[Alert]] = {}
        allowed = self.settings.allowed_models()
        for index, alert in enumerate(notification.alerts):
            if alert.status != "firing" or alert.labels.get("alertname") != self.settings.alertname:
                continue
            model = alert.labels.get("model")
            if model is None:
                raise PayloadError(
                    f"alerts[{index}]: a {self.settings.alertname} alert without a model label"
                )
            if not MODEL_NAME.match(model):
                raise PayloadError(f"alerts[{index}].labels.model: not a model name")
            if allowed and model not in allowed:
                raise PayloadError(f"alerts[{index}].labels.model: {model!r} may not be retrained")
            found.setdefault(model, []).append(alert)
        return found

    def handle(self, notification: Notification) -> list[dict[str, Any]]:
        """Decide (and start) per model; the decisions, as logged."""
        by_model = self.drift_alerts_by_model(notification)
        decisions = []
        if not by_model:
            decision = {
                "event": "alerts_ignored",
                "status": notification.status,
                "alertnames": sorted({a.labels.get("alertname", "") for a in notification.alerts}),
                "group_key": notification.groupKey,
            }
            log.info(json.dumps(decision, sort_keys=True))
            return [decision]
        for model, alerts in sorted(by_model.items()):
            decisions.append(self._decide(notification, model, alerts))
        return decisions

    def _decide(self, notification: Notification, model: str, alerts: list[Alert]) -> dict:
        episode = episode_of(notification.groupKey, alerts)
        decision: dict[str, Any] = {
            "model": model,
            "alertname": self.settings.alertname,
            "group_key": notification.groupKey,
            "episode": episode,
            "fingerprints": sorted(alert.fingerprint for alert in alerts),
            "features": sorted({alert.labels.get("feature", "") for alert in alerts} - {""}),
            "versions": sorted({alert.labels.get("version", "") for alert in alerts} - {""}),
            "starts_at": min(alert.startsAt for alert in alerts).astimezone(UTC).isoformat(),
        }
        with self._lock:
            recent = self.runs.recent(model)
            duplicate = next((run for run in recent if run.episode == episode), None)
            since = self._now() - timedelta(seconds=self.settings.retrain_interval_seconds)
            latest = next((run for run in recent if run.created_at > since), None)
            if duplicate is not None:
                decision.update(
                    event="retrain_skipped", reason="duplicate", run_id=duplicate.run_id
                )
            elif latest is not None:
                decision.update(
                    event="retrain_skipped",
                    reason="rate_limited",
                    run_id=latest.run_id,
                    retry_after=(
                        latest.created_at
                        + timedelta(seconds=self.settings.retrain_interval_seconds)
                    ).isoformat(),
                )
            else:
                run = self.runs.start(model, episode, self.settings.pipeline_arguments_for(model))
                decision.update(event="retrain_started", run_id=run.run_id)
        log.info(json.dumps(decision, sort_keys=True))
        return decision


# --- releases (Flagger's webhooks and the reconcile loop) ----------------------------------------


class ReleaseController:
    """Drives the releases of the configured progressive deployments (see release.py)."""

    def __init__(
        self,
        deployments: list[Deployment],
        tolerance: float,
        client: Any = None,
        store: ReleaseStore | None = None,
        tracking_uri: str = "",
    ):
        self.deployments = {(d.namespace, d.name): d for d in deployments}
        self.tolerance = tolerance
        self._client = client
        self._store = store
        self._tracking_uri = tracking_uri

    @property
    def client(self) -> Any:
        if self._client is None:  # built on first use: MLflow may still be starting
            from mlflow import MlflowClient

            self._client = MlflowClient(self._tracking_uri)
        return self._client

    @property
    def store(self) -> ReleaseStore:
        if self._store is None:
            self._store = KubernetesReleaseStore()
        return self._store

    def deployment(self, payload: FlaggerPayload) -> Deployment:
        found = self.deployments.get((payload.namespace, payload.name))
        if found is None:
            raise PayloadError(
                f"{payload.namespace}/{payload.name} is not a deployment this service releases"
            )
        return found

    def gate(self, payload: FlaggerPayload) -> GateResult:
        return gate(self.client, self.deployment(payload), self.tolerance)

    def settle(self, payload: FlaggerPayload) -> str:
        return settle(self.client, self.store, self.deployment(payload), payload.phase)

    def reconcile_all(self) -> list[str]:
        """Release every new challenger; what was released. One deployment's failure is
        logged and does not stop the others."""
        released = []
        for deployment in self.deployments.values():
            try:
                version = reconcile(self.client, self.store, deployment)
            except Exception as exc:
                log.warning(
                    json.dumps(
                        {
                            "event": "reconcile_failed",
                            "deployment": f"{deployment.namespace}/{deployment.name}",
                            "error": f"{type(exc).__name__}: {exc}"[:500],
                        },
                        sort_keys=True,
                    )
                )
                continue
            if version is not None:
                released.append(f"{deployment.model} {version}")
                log.info(
                    json.dumps(
                        {
                            "event": "released",
                            "deployment": f"{deployment.namespace}/{deployment.name}",
                            "model": deployment.model,
                            "version": version,
                        },
                        sort_keys=True,
                    )
                )
        return released


def _reconcile_forever(controller: ReleaseController, seconds: float) -> None:
    while True:
        controller.reconcile_all()
        time.sleep(seconds)


async def _flagger(
    controller: ReleaseController | None, path: str, receive: Receive, send: Send, limit: int
) -> None:
    if controller is None:
        await _reply(send, 404, {"error": "this service drives no releases"})
        return
    body = await _read_body(receive, limit)
    if body is None:
        await _reply(send, 413, {"error": "body too large"})
        return
    try:
        payload = FlaggerPayload.model_validate_json(body)
        controller.deployment(payload)
    except (ValidationError, PayloadError) as exc:
        reason = str(exc) if isinstance(exc, PayloadError) else "not a Flagger webhook payload"
        await _reply(send, 422, {"error": reason})
        return
    try:
        if path == "/flagger/gate":
            result = await asyncio.to_thread(controller.gate, payload)
            decision = {"event": "gate", "passed": result.passed, "detail": result.describe()}
            status = 200 if result.passed else 412
        else:
            done = await asyncio.to_thread(controller.settle, payload)
            decision, status = {"event": "settled", "phase": payload.phase, "detail": done}, 200
    except ReleaseError as exc:
        decision, status = {"event": "undecided", "detail": str(exc)}, 503
    except Exception as exc:  # MLflow or a model server unreachable: Flagger retries
        decision = {"event": "undecided", "detail": f"{type(exc).__name__}: {exc}"[:500]}
        status = 503
    decision["deployment"] = f"{payload.namespace}/{payload.name}"
    log.info(json.dumps(decision, sort_keys=True))
    await _reply(send, status, decision)


# --- HTTP ---------------------------------------------------------------------------------------


def parse_notification(body: bytes) -> Notification:
    try:
        return Notification.model_validate_json(body)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or '<root>'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise PayloadError("; ".join(problems)) from None


def authorized(header: bytes | None, token: str) -> bool:
    expected = b"Bearer " + token.encode()
    # compare_digest takes the same time whatever the first differing byte.
    return header is not None and hmac.compare_digest(header, expected)


class App:
    """The ASGI application."""

    def __init__(self, receiver: Receiver, releases: ReleaseController | None = None):
        self.receiver = receiver
        self.releases = releases

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            if method != "GET":
                await _reply(send, 405, {"error": "method not allowed"}, allow="GET")
                return
            await _reply(send, 200, {"status": "ok"})
            return
        if path in ("/flagger/gate", "/flagger/settle"):
            if method != "POST":
                await _reply(send, 405, {"error": "method not allowed"}, allow="POST")
                return
            limit = self.receiver.settings.max_body_bytes
            await _flagger(self.releases, path, receive, send, limit)
            return
        if path != "/alerts":
            await _reply(send, 404, {"error": "not found"})
            return
        if method != "POST":
            await _reply(send, 405, {"error": "method not allowed"}, allow="POST")
            return
        headers = dict(scope["headers"])
        if not authorized(headers.get(b"authorization"), self.receiver.settings.token):
            log.warning(json.dumps({"event": "unauthorized", "client": _client(scope)}))
            await _reply(send, 401, {"error": "unauthorized"}, www_authenticate="Bearer")
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip()
        if content_type != b"application/json":
            await _reply(send, 415, {"error": "expected application/json"})
            return
        body = await _read_body(receive, self.receiver.settings.max_body_bytes)
        if body is None:
            await _reply(send, 413, {"error": "body too large"})
            return
        try:
            notification = parse_notification(body)
            # Checked here too, so a bad alert is a 422 before anything starts.
            self.receiver.drift_alerts_by_model(notification)
        except PayloadError as exc:
            log.warning(json.dumps({"event": "payload_rejected", "reason": str(exc)}))
            await _reply(send, 422, {"error": str(exc)})
            return
        # Starting a KFP run is a blocking HTTP call.
        try:
            result = await asyncio.to_thread(self.receiver.handle, notification)
        except Exception as exc:  # the run backend (KFP) failed: Alertmanager retries a 5xx
            log.error(
                json.dumps(
                    {
                        "event": "backend_unavailable",
                        "group_key": notification.groupKey,
                        "error": f"{type(exc).__name__}: {exc}"[:500],
                    },
                    sort_keys=True,
                )
            )
            await _reply(send, 503, {"error": "pipeline backend unavailable"})
            return
        started = any(d.get("event") == "retrain_started" for d in result)
        await _reply(send, 202 if started else 200, {"decisions": result})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}" if client else "?"


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _reply(
    send: Send,
    status: int,
    body: dict[str, Any],
    allow: str | None = None,
    www_authenticate: str | None = None,
) -> None:
    raw = json.dumps(body, sort_keys=True).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if allow:
        headers.append((b"allow", allow.encode()))
    if www_authenticate:
        headers.append((b"www-authenticate", www_authenticate.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def build(
    settings: ReceiverSettings,
    runs: RetrainRuns | None = None,
    releases: ReleaseController | None = None,
) -> App:
    if releases is None and settings.release_deployments():
        releases = ReleaseController(
            [Deployment(**entry) for entry in settings.release_deployments()],
            settings.gate_tolerance,
            tracking_uri=settings.tracking_uri,
        )
    if runs is None:
        if settings.backend == "local":
            import tempfile

            root = settings.pipeline_root or tempfile.mkdtemp(prefix="retrain-")
            runs = LocalRuns(Path(root), settings.pipeline)
        else:
            runs = KfpRuns(
                settings.kfp_host,
                settings.experiment,
                settings.pipeline_root,
                package=COMPILED_PIPELINES[settings.pipeline],
            )
    return App(Receiver(settings, runs), releases)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        settings = ReceiverSettings.from_env()
    except SettingsError as exc:
        print(f"retrain receiver: {exc}", file=sys.stderr)
        return 2
    app = build(settings)
    if app.releases is not None and settings.reconcile_seconds > 0:
        threading.Thread(
            target=_reconcile_forever,
            args=(app.releases, settings.reconcile_seconds),
            name="reconcile",
            daemon=True,
        ).start()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
