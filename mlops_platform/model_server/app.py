"""The ASGI application: Open Inference Protocol v2, MLflow `/invocations`, `/metrics`.

Written against raw ASGI rather than a framework: the whole API is a handful of fixed paths,
and per-request framework overhead (routing, request objects, middleware) was a measurable
share of the single-row latency budget. Every client mistake becomes a 4xx JSON error that
says what is wrong; only faults of the server itself become 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import math
import reprlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from mlops_platform.model_server.availability import backoff_delays, redact
from mlops_platform.model_server.batching import MicroBatcher, ModelRejectedInput
from mlops_platform.model_server.drift import DriftWindow
from mlops_platform.model_server.explain import ExplainRefused, RequestExplainer
from mlops_platform.model_server.kafka_security import security_config
from mlops_platform.model_server.metrics import Metrics
from mlops_platform.model_server.model import (
    ModelLoadError,
    ModelNotAvailable,
    ServedModel,
    resolve,
)
from mlops_platform.model_server.online_features import OnlineFeatures
from mlops_platform.model_server.prediction_log import (
    FileSink,
    KafkaSink,
    PredictionLog,
    Sink,
    SinkError,
)
from mlops_platform.model_server.schema import (
    INT64_MAX,
    INT64_MIN,
    V2_DATATYPE_BY_KIND,
    Column,
    InputError,
    InputSchema,
    Rows,
    short_int,
    to_arrays,
)
from mlops_platform.model_server.settings import Settings
from mlops_platform.model_server.tracing import CURRENT as CURRENT_TRACE
from mlops_platform.model_server.tracing import Tracing

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
SERVER_NAME = "mlops-model-server"
SERVER_VERSION = "0.1.0"


class HTTPError(Exception):
    def __init__(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class ServerState:
    """What the endpoints need to know about the model's lifecycle."""

    def __init__(self, model_uri: str = "") -> None:
        self.model: ServedModel | None = None
        self.batcher: MicroBatcher | None = None
        self.prediction_log: PredictionLog | None = None
        self.explainer: RequestExplainer | None = None
        self.ready = False
        self.draining = False
        self.load_error: str | None = None
        # Why the model is not served yet, for /v2/health/ready and 503 answers.
        self.waiting_for = f"{model_uri}: the first attempt to load it is running"
        self.attempts = 0
        self.retry_at: float | None = None  # time.monotonic() of the next attempt


def load_and_warm(settings: Settings) -> ServedModel:
    """Resolve, download, load and warm up the model (blocking; runs off the event loop)."""
    model = ServedModel(
        resolve(settings.model_uri, settings.model_name), settings.inference_threads
    )
    started = time.perf_counter()
    model.warm_up()
    log.info(
        "model %s version %s loaded from %s, warmed up in %.0f ms",
        model.name,
        model.version,
        model.resolved.uri,
        (time.perf_counter() - started) * 1000,
    )
    return model


def _in_daemon_thread(fn: Callable[[Settings], ServedModel], settings: Settings) -> Any:
    """Run `fn` in a daemon thread; the returned future gives its result.

    Not `asyncio.to_thread`: the loop's default executor is joined when the loop closes, so a
    load stuck in a slow HTTP call (up to MLFLOW_HTTP_REQUEST_TIMEOUT) would hold up SIGTERM.
    A daemon thread is abandoned instead; it only ever touches the model it is loading.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[ServedModel] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # cancelled by shutdown meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        result, error = None, None
        try:
            result = fn(settings)
        except BaseException as exc:  # handed to the awaiting task, which decides
            error = exc
        # A closed loop means the server is exiting and nobody waits for this load any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="model-load", daemon=True).start()
    return future


def _limit_threads(n: int) -> Callable[[], None]:
    def init() -> None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)

    return init


class ModelServerApp:
    def __init__(
        self,
        settings: Settings,
        on_fatal: Callable[[str], None] | None = None,
        loader: Callable[[Settings], ServedModel] = load_and_warm,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        # OpenTelemetry (tracing.py); None when off, and then the only cost is that test.
        self.tracing = tracing
        self.state = ServerState(settings.model_uri)
        self.metrics = Metrics()
        self._on_fatal = on_fatal
        self._loader = loader
        self._load_task: asyncio.Task[None] | None = None
        self._drain_started: float | None = None
        self._schemaless: dict[tuple[str, ...], InputSchema] = {}
        self._online_features = OnlineFeatures.from_settings(settings)
        self._routes_get: dict[str, Callable[[], Awaitable[tuple[int, Any]]]] = {
            "/v2/health/live": self._live,
            "/v2/health/ready": self._ready,
            "/v2": self._server_metadata,
            "/ping": self._ping,
            "/health": self._ping,
            "/version": self._version,
        }

    # -- ASGI entry ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            tracing = self.tracing
            # Sampling is decided once, here: a request the sampler drops (or a probe) is
            # served exactly as with tracing off, without the traced wrapper.
            trace = tracing.begin(scope) if tracing is not None else None
            if trace is None:
                await self._http(scope, receive, send)
            else:
                assert tracing is not None
                await tracing.serve_sampled(trace, scope, receive, send, self._http)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def startup(self) -> None:
        """Start loading the model in the background; liveness answers meanwhile."""
        self._load_task = asyncio.get_running_loop().create_task(self._load(), name="model-load")

    async def _load(self) -> None:
        """Attempt to load until it works, waiting out a model that is not there yet."""
        s, state = self.settings, self.state
        delays = backoff_delays(s.load_retry_initial_seconds, s.load_retry_max_seconds)
        while True:
            state.attempts += 1
            state.retry_at = None
            try:
                model = await _in_daemon_thread(self._loader, self.settings)
            except ModelNotAvailable as exc:
                self.metrics.load_attempts.labels(exc.outcome).inc()
                delay = next(delays)
                state.waiting_for = str(exc)
                state.retry_at = time.monotonic() + delay
                # Info while nothing is registered yet, the normal state of a fresh platform;
                # a tracking server that is down or refuses the credentials is worth a warning.
                log.log(
                    logging.INFO if exc.outcome == "not_found" else logging.WARNING,
                    "model not available yet (attempt %d, %s): %s; retrying in %.1f s",
                    state.attempts,
                    exc.outcome,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            except Exception as exc:
                self.metrics.load_attempts.labels("failed").inc()
                self._fail(exc)
                return
            self.metrics.load_attempts.labels("loaded").inc()
            try:
                self._install(model)
            except Exception as exc:
                self._fail(exc)
            return

    def _fail(self, exc: Exception) -> None:
        # The model exists but cannot be served (bad signature, unsupported flavor, ...) or a
        # sink cannot start (e.g. an unwritable prediction file): waiting cannot fix it, and a
        # server that would never become ready is better stopped, so the orchestrator sees it.
        readable = isinstance(exc, ModelLoadError | SinkError)
        message = redact(str(exc) if readable else repr(exc))
        log.error("start-up failed: %s", message)
        self.state.load_error = message
        self.state.waiting_for = f"start-up failed: {message}"
        if self._on_fatal is not None:
            self._on_fatal(message)

    def _install(self, model: ServedModel) -> None:
        s = self.settings
        metrics = self.metrics
        metrics.set_model(model.name, model.version)
        window = None
        if model.references:
            window = DriftWindow(model.references, s.drift_window_rows)
            metrics.drift.attach(window, model.name, model.version)
        sink = self._make_sink()
        tracing = self.tracing
        if tracing is not None:
            tracing.model_attributes = {
                "mlops.model.name": model.name,
                "mlops.model.version": model.version,
            }
        self.state.prediction_log = PredictionLog(
            sink,
            model.name,
            model.version,
            s.prediction_queue_size,
            on_drop=metrics.dropped,
            on_written=metrics.written,
            observe=(lambda batch: window.update(batch.columns)) if window is not None else None,
            on_traced=(
                functools.partial(tracing.logged, sink=s.prediction_sink)
                if tracing is not None
                else None
            ),
        )
        batcher = MicroBatcher(
            model.predict,
            max_rows=s.max_batch_rows,
            wait_ms=s.batch_wait_ms,
            on_batch=metrics.batch_rows_child.observe,
            on_scores=metrics.scores.observe_many,
            on_logged=self.state.prediction_log.submit,
            thread_init=_limit_threads(s.inference_threads),
            inline=model.fast_path,
            on_split=metrics.batch_splits_child.inc,
            on_traced=tracing.batch_done if tracing is not None else None,
        )
        batcher.start()
        # Everything allocated so far (MLflow, sklearn, the model) lives as long as the
        # process: moving it out of the collector's reach keeps GC pauses off the tail latency.
        gc.collect()
        gc.freeze()
        self.state.explainer = RequestExplainer.for_model(model, s.explain)
        self.state.model = model
        self.state.batcher = batcher
        self.state.ready = True
        metrics.ready.set(1)

    def _make_sink(self) -> Sink | None:
        s = self.settings
        if s.prediction_sink == "kafka":
            return KafkaSink(
                s.kafka_bootstrap_servers,
                s.kafka_topic,
                s.kafka_buffer_messages,
                self.metrics.dropped,
                security=security_config(s),
            )
        if s.prediction_sink == "file":
            return FileSink(
                s.prediction_file, s.prediction_file_max_bytes, s.prediction_file_backups
            )
        return None

    def begin_drain(self) -> None:
        """SIGTERM: report not-ready at once, so load balancers stop sending new requests."""
        if self._drain_started is None:
            self._drain_started = time.monotonic()
        self.state.draining = True
        self.metrics.ready.set(0)

    async def shutdown(self) -> None:
        self.begin_drain()
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        if self.state.batcher is not None:
            await self.state.batcher.stop()
        if self.state.prediction_log is not None:
            # One budget for the whole drain: what in-flight requests used is not left for
            # flushing queued prediction records.
            assert self._drain_started is not None
            elapsed = time.monotonic() - self._drain_started
            remaining = max(1.0, self.settings.drain_seconds - elapsed)
            await asyncio.to_thread(self.state.prediction_log.close, remaining)
        if self.tracing is not None:
            # After the prediction log, whose writes are spans too; 2 s at most of the drain.
            await asyncio.to_thread(self.tracing.shutdown, 2.0)

    # -- HTTP ------------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        started = time.perf_counter()
        endpoint = "other"
        headers: list[tuple[bytes, bytes]] = []
        try:
            if path == "/invocations":
                endpoint = "invocations"
                _require(method, "POST")
                body = await self._body(scope, receive)
                status, payload = await self._invocations(scope, body)
            elif path.startswith("/v2/models/"):
                endpoint = _v2_endpoint(path)
                status, payload = await self._v2_model(scope, receive, path, method)
            elif path == "/metrics":
                endpoint = "metrics"
                _require(method, "GET")
                await _send(send, 200, self.metrics.render(), b"text/plain; version=0.0.4")
                self.metrics.count(endpoint, 200, None)
                return
            elif path in self._routes_get:
                endpoint = "health"
                _require(method, "GET")
                status, payload = await self._routes_get[path]()
            else:
                raise HTTPError(404, f"no route {path!r}")
        except HTTPError as exc:
            status, payload, headers = exc.status, {"error": exc.message}, exc.headers
        except InputError as exc:
            status, payload = exc.status, {"error": exc.message}
        except ModelRejectedInput as exc:
            status, payload = 422, {"error": str(exc)}
        except Exception:
            log.exception("unexpected error on %s %s", method, path)
            status, payload = 500, {"error": "internal server error"}
        if status >= 400 and "error" in payload:
            # An error message may quote client input; it must stay encodable whatever that was.
            payload["error"] = printable(payload["error"])
            if endpoint == "invocations":
                payload = {"error_code": _mlflow_error_code(status), "message": payload["error"]}
        try:
            body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            log.exception("cannot serialise the response to %s %s", method, path)
            status, body = 500, b'{"error": "internal server error"}'
        await _send(send, status, body, JSON, headers)
        timed = endpoint in ("invocations", "infer")
        self.metrics.count(endpoint, status, time.perf_counter() - started if timed else None)

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise HTTPError(400, "invalid Content-Length header") from None
                if declared > limit:
                    raise HTTPError(
                        413, f"request body of {declared} bytes exceeds the limit of {limit} bytes"
                    )
            elif name == b"content-type":
                media = value.split(b";", 1)[0].strip().lower()
                if media not in (b"application/json", b""):
                    raise HTTPError(
                        415,
                        f"unsupported Content-Type {media.decode(errors='replace')!r}; "
                        "send application/json",
                    )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPError(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise HTTPError(413, f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _serving_model(self) -> ServedModel:
        model = self.state.model
        if model is None or not self.state.ready:
            raise HTTPError(
                503,
                f"the model is not loaded yet: {self.state.waiting_for}",
                [(b"retry-after", str(self._retry_after()).encode())],
            )
        return model

    def _retry_after(self) -> int:
        """Whole seconds until the next attempt to load (1 while one is running)."""
        retry_at = self.state.retry_at
        if retry_at is None:
            return 1
        return max(1, math.ceil(retry_at - time.monotonic()))

    def _schema_for(self, model: ServedModel, names: list[str]) -> InputSchema:
        if model.schema is not None:
            return model.schema
        # No signature: accept the client's columns as they come (pandas infers the types),
        # one cached schema per column set so equal requests can still be batched.
        key = tuple(names)
        schema = self._schemaless.get(key)
        if schema is None:
            if len(self._schemaless) > 64:
                self._schemaless.clear()
            schema = self._schemaless[key] = InputSchema(
                tuple(Column(n, "any", "any", required=False) for n in key)
            )
        return schema

    async def _invocations(self, scope: Scope, body: bytes) -> tuple[int, Any]:
        model = self._serving_model()
        payload = _parse_json(body)
        if model.schema is not None:
            rows = model.schema.rows_from_invocations(payload)
            schema = model.schema
        else:
            rows = _PermissiveSchema(()).rows_from_invocations(payload)
            schema = self._schema_for(model, list(rows.columns))
        self.metrics.request_rows_child.observe(rows.n_rows)
        predictions, _ = await self._predict(schema, rows, _synthetic(scope))
        return 200, {"predictions": predictions}

    async def _predict(self, schema: InputSchema, rows: Any, synthetic: bool = False) -> Any:
        batcher = self.state.batcher
        assert batcher is not None
        trace = CURRENT_TRACE.get() if self.tracing is not None else None
        if trace is not None:
            trace.mark_enqueued()
        return await batcher.predict(schema, rows, synthetic, trace)

    async def _v2_model(
        self, scope: Scope, receive: Receive, path: str, method: str
    ) -> tuple[int, Any]:
        parts = path[len("/v2/models/") :].split("/")
        name = parts[0]
        rest = parts[1:]
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = rest[1], rest[2:]
        else:
            version = None
        model = self.state.model
        expected = model.name if model is not None else (self.settings.model_name or None)
        if expected is not None and name != expected:
            raise HTTPError(404, f"unknown model {name!r}; this server serves {expected!r}")
        if model is not None and version is not None and version != model.version:
            raise HTTPError(
                404,
                f"model {name!r} has no version {version!r}; served version is {model.version!r}",
            )
        if rest == []:
            _require(method, "GET")
            return self._model_metadata(self._serving_model())
        if rest == ["example"] and self.settings.example_endpoint:
            _require(method, "GET")
            example = self._serving_model().example_request()
            if example is None:
                raise HTTPError(404, f"model {name!r} was saved without an input example")
            return 200, example
        if rest == ["ready"]:
            _require(method, "GET")
            ready = self.state.ready and not self.state.draining
            return (200 if ready else 503), {"name": name, "ready": ready}
        if rest == ["infer"]:
            _require(method, "POST")
            body = await self._body(scope, receive)
            return await self._infer(body, _synthetic(scope))
        raise HTTPError(404, f"no route {path!r}")

    def _model_metadata(self, model: ServedModel) -> tuple[int, Any]:
        inputs = []
        if model.schema is not None:
            inputs = [
                {
                    "name": c.name,
                    "datatype": V2_DATATYPE_BY_KIND.get(c.kind, "BYTES"),
                    "shape": [-1],
                    "parameters": {"mlflow_type": c.mlflow_type, "required": c.required},
                }
                for c in model.schema.columns
            ]
        outputs = [{"name": "predictions", "datatype": "BYTES", "shape": [-1]}]
        if model.binary_scores:
            outputs.append({"name": "scores", "datatype": "FP64", "shape": [-1]})
        return 200, {
            "name": model.name,
            "versions": [model.version],
            "platform": model.platform,
            "inputs": inputs,
            "outputs": outputs,
        }

    async def _infer(self, body: bytes, synthetic: bool = False) -> tuple[int, Any]:
        model = self._serving_model()
        payload = _parse_json(body)
        if self._online_features is not None:
            payload = await self._online_features.complete(payload)
        if model.schema is not None:
            rows = model.schema.rows_from_v2(payload)
            schema = model.schema
        else:
            rows = _PermissiveSchema(()).rows_from_v2(payload)
            schema = self._schema_for(model, list(rows.columns))
        explainer = self._explainer_for(payload)
        self.metrics.request_rows_child.observe(rows.n_rows)
        predictions, scores = await self._predict(schema, rows, synthetic)
        outputs = [_tensor("predictions", predictions)]
        if scores is not None:
            outputs.append(
                {"name": "scores", "datatype": "FP64", "shape": [len(scores)], "data": scores}
            )
        if explainer is not None:
            arrays = to_arrays(schema, [rows])
            loop = asyncio.get_running_loop()
            outputs.append(await loop.run_in_executor(None, explainer.tensor, arrays))
        response: dict[str, Any] = {
            "model_name": model.name,
            "model_version": model.version,
            "outputs": outputs,
        }
        if isinstance(payload, dict) and isinstance(payload.get("id"), str):
            response["id"] = payload["id"]
        return 200, response

    def _explainer_for(self, payload: Any) -> RequestExplainer | None:
        """The explainer when the request asks for attributions (mlops_platform/model_server/
        explain.py), None when it does not; a 4xx when it asks and they cannot be given."""
        try:
            if not RequestExplainer.requested(payload):
                return None
            explainer = self.state.explainer
            assert explainer is not None
            explainer.check()
        except ExplainRefused as refused:
            raise HTTPError(refused.status, refused.message) from None
        return explainer

    # -- health ----------------------------------------------------------------------------

    async def _live(self) -> tuple[int, Any]:
        return 200, {"live": True}

    async def _ready(self) -> tuple[int, Any]:
        state = self.state
        if state.ready and not state.draining:
            return 200, {"ready": True}
        answer: dict[str, Any] = {"ready": False, "model_uri": self.settings.model_uri}
        if state.draining:
            answer["reason"] = "shutting down (SIGTERM)"
        else:
            answer["reason"] = state.waiting_for
            answer["attempts"] = state.attempts
            if state.retry_at is not None:
                answer["next_attempt_in_seconds"] = round(
                    max(0.0, state.retry_at - time.monotonic()), 1
                )
        return 503, answer

    async def _ping(self) -> tuple[int, Any]:
        status, _ = await self._ready()
        return status, {"status": "ok" if status == 200 else "unavailable"}

    async def _version(self) -> tuple[int, Any]:
        return 200, {"name": SERVER_NAME, "version": SERVER_VERSION}

    async def _server_metadata(self) -> tuple[int, Any]:
        return 200, {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": []}


# Requests carrying this header (Flagger's load tester, smoke tests) are answered and counted
# like any other, but their rows stay out of the drift window and the prediction log: they are
# not the traffic the model sees in production.
SYNTHETIC_HEADER = b"x-mlops-synthetic"


def _synthetic(scope: Scope) -> bool:
    return any(name == SYNTHETIC_HEADER for name, _ in scope.get("headers", ()))


def _v2_endpoint(path: str) -> str:
    if path.endswith("/infer"):
        return "infer"
    if path.endswith("/ready"):
        return "health"
    return "metadata"


def _require(method: str, allowed: str) -> None:
    if method != allowed:
        raise HTTPError(405, f"method {method} not allowed; use {allowed}")


def _mlflow_error_code(status: int) -> str:
    return {
        400: "BAD_REQUEST",
        404: "RESOURCE_DOES_NOT_EXIST",
        413: "BAD_REQUEST",
        415: "BAD_REQUEST",
        422: "INVALID_PARAMETER_VALUE",
        503: "TEMPORARILY_UNAVAILABLE",
    }.get(status, "INTERNAL_ERROR")


def _parse_json(body: bytes) -> Any:
    if not body:
        raise InputError("request body is empty; send a JSON object", 400)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        first_error = str(exc)
    # orjson follows RFC 8259 strictly; the stdlib parser also accepts the NaN/Infinity
    # tokens that Python and pandas clients emit, which the schema then judges per column.
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise InputError(f"malformed JSON: {first_error}", 400) from None
    # The stdlib parser also accepts "\\ud800" escapes of lone UTF-16 surrogates, which orjson
    # rightly refuses: such a string is not Unicode text, cannot be encoded as UTF-8 and would
    # break every later step that writes it (an error message, the prediction log).
    where = _lone_surrogate(payload)
    if where is not None:
        raise InputError(
            f"invalid JSON string at {where}: a lone UTF-16 surrogate (\\uD800-\\uDFFF "
            "without its pair) is not Unicode text",
            400,
        )
    return payload


def _is_text(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _lone_surrogate(payload: Any) -> str | None:
    """Where the first string (key or value) holding a lone surrogate is, e.g. `$.inputs[0]`."""
    stack: list[tuple[Any, str]] = [(payload, "$")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if not _is_text(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _is_text(key):
                    return f"{path} (an object key)"
                stack.append((item, f"{path}.{printable(key, 40)}"))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
    return None


def printable(text: str, limit: int | None = None) -> str:
    """`text` as UTF-8-encodable text (surrogates escaped), cut to `limit` characters."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _PermissiveSchema(InputSchema):
    """Parses the request formats of a model without a signature, checking no types."""

    def validate(self, columns: Any, n_rows: int) -> Rows:
        if n_rows == 0:
            raise InputError("the request has no rows")
        out = {k: list(v) for k, v in columns.items()}
        # No types to check, but an integer beyond int64 would fail (or be clamped) when the
        # merged batch becomes a DataFrame, hurting every request in it.
        for name, values in out.items():
            for row, value in enumerate(values):
                if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
                    raise InputError(
                        f"column {reprlib.repr(name)} row {row}: integer "
                        f"{short_int(value)} is out of range for a 64-bit integer"
                    )
        return Rows(out, n_rows)


def _tensor(name: str, values: list[Any]) -> dict[str, Any]:
    first = values[0] if values else None
    if isinstance(first, bool):
        datatype = "BOOL"
    elif isinstance(first, int):
        datatype = "INT64"
    elif isinstance(first, float):
        datatype = "FP64"
    else:
        datatype = "BYTES"
    if first is not None and isinstance(first, list):
        return {
            "name": name,
            "datatype": "FP64",
            "shape": [len(values), len(first)],
            "data": [v for row in values for v in row],
        }
    return {"name": name, "datatype": datatype, "shape": [len(values)], "data": values}


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if extra_headers:
        headers.extend(extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
