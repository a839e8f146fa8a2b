"""OpenTelemetry traces of the model server, exported over OTLP/HTTP.

Per prediction request (`/invocations`, `/v2/models/.../infer`) one SERVER span continues the
trace context the caller sent (W3C `traceparent`, or B3 as Envoy's Zipkin tracer sends it), so
with Istio's OpenTelemetry provider the sidecar's span and the server's share one trace. Its
children are the steps a request goes through:

- `batch.wait`: from the request's rows being queued to the start of the model call they are
  merged into (micro-batching, batching.py);
- `model.predict`: that model call (shared by every request in the batch; each request gets its
  own child span with the batch's timings and size);
- `prediction_log.write`: the background write of the request's record to the prediction log
  (prediction_log.py). It runs after the answer was sent, so it ends after its parent.

Off unless configured, with the SDK's standard variables: tracing starts only when
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and neither
`OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`). Off, `from_env` returns None, nothing
of OpenTelemetry is imported and the serving path only tests `tracing is None`. Sampling is
`OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`: behind Istio
the sidecar has already decided). The decision is taken once per request, when its server span
starts: an unsampled request creates no span object beyond the root's non-recording one and is
then served exactly as with tracing off (no wrapped `send`, no request trace for the steps).
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_*` headers/timeouts and
`OTEL_BSP_*` (the batch span processor) are read by the SDK itself. `OTEL_PROPAGATORS` replaces
the default extraction (tracecontext, then B3 single or multi).

Only OTLP over HTTP (`http/protobuf`, the collector's port 4318): the gRPC exporter would add
grpcio (~10 MB) to the image for no gain on a one-way export.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

INSTRUMENTATION = "mlops_platform.model_server"
DEFAULT_SERVICE_NAME = "mlops-model-server"

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_SAMPLER = "parentbased_always_on"

# The request being served, for the code between the ASGI entry and the micro-batcher (set
# only while tracing is on; each request runs in its own task, so it never leaks across).
CURRENT: contextvars.ContextVar[RequestTrace | None] = contextvars.ContextVar(
    "mlops_request_trace", default=None
)


class TracingConfigError(ValueError):
    """An OTEL_* variable this server cannot honour; the message names it."""


class RequestTrace:
    """The server span of one sampled request and when its rows were queued for the model."""

    __slots__ = ("context", "enqueued_ns", "span")

    def __init__(self, span: Any, context: Any) -> None:
        self.span = span
        self.context = context  # the span's context, the parent of its children
        self.enqueued_ns = 0

    def mark_enqueued(self) -> None:
        self.enqueued_ns = time.time_ns()


def sampler_from(environ: Mapping[str, str]) -> Any:
    """The sampler `OTEL_TRACES_SAMPLER`/`_ARG` ask for; a clear error where the SDK would only
    log a warning and silently sample everything."""
    from opentelemetry.sdk.trace import sampling

    name = environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() or DEFAULT_SAMPLER
    if name not in SAMPLERS:
        raise TracingConfigError(
            f"OTEL_TRACES_SAMPLER={name!r} is not supported; use one of {', '.join(SAMPLERS)}"
        )
    if name.endswith("traceidratio"):
        raw = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
        try:
            ratio = float(raw)
        except ValueError:
            ratio = -1.0
        if not 0.0 <= ratio <= 1.0:
            raise TracingConfigError(
                f"OTEL_TRACES_SAMPLER_ARG={raw!r} must be a ratio between 0 and 1 for {name}"
            )
        root: sampling.Sampler = sampling.TraceIdRatioBased(ratio)
    elif name.endswith("always_off"):
        root = sampling.ALWAYS_OFF
    else:
        root = sampling.ALWAYS_ON
    return sampling.ParentBased(root) if name.startswith("parentbased_") else root


def enabled(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def check(environ: Mapping[str, str]) -> None:
    """Refuse what this server does not implement, naming the variable."""
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    if exporter != "otlp":
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER={exporter!r}: this server exports traces with `otlp` only"
        )
    for name in PROTOCOL_VARIABLES:
        protocol = environ.get(name, "").strip()
        if protocol:
            if protocol != "http/protobuf":
                raise TracingConfigError(
                    f"{name}={protocol!r}: this server exports OTLP over HTTP only "
                    "(`http/protobuf`, the collector's port 4318)"
                )
            break


def from_env(service_version: str, environ: Mapping[str, str]) -> Tracing | None:
    """Tracing as the OTEL_* variables configure it (`settings.otel_environ()`), or None when
    they do not turn it on."""
    if not enabled(environ):
        return None
    check(environ)
    sampler = sampler_from(environ)

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create; the default
    # name only replaces the SDK's `unknown_service`.
    resource = Resource.create({SERVICE_VERSION: service_version})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource, sampler=sampler)
    # The exporter reads the endpoint, headers, timeout and TLS settings from OTEL_EXPORTER_*;
    # the batch processor exports off the serving path (OTEL_BSP_* size its queue).
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracing = Tracing(
        provider,
        propagator_from(environ),
        every_header=bool(environ.get("OTEL_PROPAGATORS", "").strip()),
    )
    endpoint = urlsplit(next(environ[n] for n in ENDPOINT_VARIABLES if environ.get(n, "").strip()))
    log.info(
        "tracing on: OTLP/HTTP to %s://%s, sampler %s",
        endpoint.scheme,
        endpoint.hostname if endpoint.port is None else f"{endpoint.hostname}:{endpoint.port}",
        sampler.get_description(),
    )
    return tracing


# Every header `propagator_from`'s default pair reads when extracting (W3C, B3 single and multi).
DEFAULT_PROPAGATION_HEADERS = frozenset(
    {
        b"traceparent",
        b"tracestate",
        b"b3",
        b"x-b3-traceid",
        b"x-b3-spanid",
        b"x-b3-sampled",
        b"x-b3-flags",
    }
)


def propagator_from(environ: Mapping[str, str]) -> Any:
    """W3C trace context, then B3 (single `b3` or multi `x-b3-*` headers): what Envoy sends
    with Istio's OpenTelemetry or Zipkin provider. `OTEL_PROPAGATORS` replaces the pair."""
    if environ.get("OTEL_PROPAGATORS", "").strip():
        from opentelemetry import propagate

        return propagate.get_global_textmap()
    from opentelemetry.propagators.b3 import B3MultiFormat
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    # Later propagators win: a `traceparent` is preferred over B3 headers when both came.
    return CompositePropagator([B3MultiFormat(), TraceContextTextMapPropagator()])


class _HeaderDict:
    """The getter of a request's propagation headers, gathered once per request into a dict
    (`Tracing.start_request`), so each header the propagators ask for (B3 asks for five,
    W3C for two) is a dict lookup rather than a scan of every header of the request.

    Written here rather than taken from opentelemetry-instrumentation-asgi: its middleware
    wraps every receive/send and records extra spans per message, the per-request overhead the
    raw ASGI app exists to avoid; this getter is all of it the server needs.
    """

    def get(self, carrier: Mapping[str, list[str]], key: str) -> list[str] | None:
        return carrier.get(key.lower())

    def keys(self, carrier: Mapping[str, list[str]]) -> list[str]:
        return list(carrier)


_HEADERS = _HeaderDict()
# Distinct (method, path, scheme, HTTP version) whose request-span attributes are kept built.
ATTRIBUTE_CACHE_SIZE = 256


def _route(path: str) -> str:
    if path == "/invocations":
        return path
    return "/v2/models/{model_name}/infer"


class Tracing:
    """A tracer provider with its exporter, and the spans of the serving path."""

    def __init__(self, provider: Any, propagator: Any, every_header: bool = False) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._provider = provider
        self._propagator = propagator
        # The header names the default propagators read, as the raw (lower-case) ASGI byte
        # strings; None (every header) for propagators OTEL_PROPAGATORS chose, which may read
        # headers by prefix (Jaeger's `uberctx-*` baggage). Not the propagators' `fields`:
        # those are what they inject (B3 multi's omit `b3` and `x-b3-flags`, which it reads).
        self._fields = None if every_header else DEFAULT_PROPAGATION_HEADERS
        self._tracer = provider.get_tracer(INSTRUMENTATION)
        self._trace = trace
        self._server = SpanKind.SERVER
        self._error = Status(StatusCode.ERROR)
        self._status = Status
        self._error_code = StatusCode.ERROR
        self._model_attributes: dict[str, str] = {}
        self._request_attributes: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    @property
    def model_attributes(self) -> dict[str, str]:
        """`mlops.model.*` of the served model, on the request and model.predict spans."""
        return self._model_attributes

    @model_attributes.setter
    def model_attributes(self, attributes: dict[str, str]) -> None:
        self._model_attributes = dict(attributes)
        self._request_attributes = {}

    @staticmethod
    def traced_path(path: str) -> bool:
        """Prediction requests only: probes, metrics and metadata would drown them."""
        return path == "/invocations" or (
            path.startswith("/v2/models/") and path.endswith("/infer")
        )

    def _carrier(self, headers: Iterable[tuple[bytes, bytes]]) -> dict[str, list[str]]:
        fields = self._fields
        carrier: dict[str, list[str]] = {}
        for name, value in headers:
            if fields is None or name in fields:
                carrier.setdefault(name.decode("latin-1").lower(), []).append(
                    value.decode("latin-1")
                )
        return carrier

    def _attributes(self, scope: Mapping[str, Any]) -> dict[str, Any]:
        """The request span's attributes, built once per distinct method, path, scheme and
        HTTP version (the SDK copies them into the span, so one dict serves every request)."""
        path: str = scope["path"]
        method: str = scope["method"]
        scheme: str = scope.get("scheme", "http")
        version: str = scope.get("http_version", "1.1")
        key = (method, path, scheme, version)
        cached = self._request_attributes.get(key)
        if cached is None:
            if len(self._request_attributes) >= ATTRIBUTE_CACHE_SIZE:
                self._request_attributes = {}  # many model names in paths: start over
            cached = self._request_attributes[key] = {
                "http.request.method": method,
                "http.route": _route(path),
                "url.path": path,
                "url.scheme": scheme,
                "network.protocol.version": version,
                **self._model_attributes,
            }
        return cached

    def start_request(self, scope: Mapping[str, Any]) -> RequestTrace | None:
        """The server span of a request, continuing the caller's context; None when the
        sampler drops it (nothing then needs ending, and no further span is made for it:
        the sampling decision is taken once, here, for the request and all its steps)."""
        carrier = self._carrier(scope.get("headers", ()))
        # No propagation header: the request starts a trace; extracting would find nothing.
        parent = self._propagator.extract(carrier, getter=_HEADERS) if carrier else None
        attributes = self._attributes(scope)
        span = self._tracer.start_span(
            f"{scope['method']} {attributes['http.route']}",
            context=parent,
            kind=self._server,
            attributes=attributes,
        )
        if not span.is_recording():
            return None
        return RequestTrace(span, self._trace.set_span_in_context(span))

    def begin(self, scope: Mapping[str, Any]) -> RequestTrace | None:
        """`start_request` for a prediction request; None for any other path and for a
        request the sampler drops, which the app then serves exactly as with tracing off."""
        return self.start_request(scope) if self.traced_path(scope["path"]) else None

    def end_request(self, trace: RequestTrace, status: int | None) -> None:
        span = trace.span
        if status is not None:
            span.set_attribute("http.response.status_code", status)
            # Server spans: only the server's own faults are errors (semantic conventions).
            if status >= 500:
                span.set_attribute("error.type", str(status))
                span.set_status(self._error)
        else:
            span.set_attribute("error.type", "no response")
            span.set_status(self._error)
        span.end()

    async def serve(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
        handler: Callable[..., Awaitable[None]],
    ) -> None:
        """Run `handler` (the app's HTTP entry) inside the request's server span."""
        trace = self.begin(scope)
        if trace is None:
            await handler(scope, receive, send)
        else:
            await self.serve_sampled(trace, scope, receive, send, handler)

    async def serve_sampled(
        self,
        trace: RequestTrace,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
        handler: Callable[..., Awaitable[None]],
    ) -> None:
        """Run `handler` for a sampled request (`begin`), then end its server span with the
        response's status. Only sampled requests pay for this wrapper: an extra coroutine
        frame every await of the handler passes through, and a wrapped `send`."""
        status: list[int] = []

        async def send_seen(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        token = CURRENT.set(trace)
        try:
            await handler(scope, receive, send_seen)
        finally:
            CURRENT.reset(token)
            self.end_request(trace, status[0] if status else None)

    def batch_done(
        self,
        traces: Iterable[tuple[RequestTrace, BaseException | None]],
        started_ns: int,
        ended_ns: int,
        rows: int,
        requests: int,
    ) -> None:
        """`batch.wait` and `model.predict` children of each traced request of one batch."""
        tracer = self._tracer
        # One attribute dict for the batch: the SDK copies it into each span.
        attributes = {
            "mlops.batch.rows": rows,
            "mlops.batch.requests": requests,
            **self._model_attributes,
        }
        for trace, failure in traces:
            wait = tracer.start_span(
                "batch.wait", context=trace.context, start_time=trace.enqueued_ns or started_ns
            )
            wait.end(end_time=started_ns)
            predict = tracer.start_span(
                "model.predict",
                context=trace.context,
                start_time=started_ns,
                attributes=attributes,
            )
            if failure is not None:
                predict.set_attribute("error.type", type(failure).__qualname__)
                predict.set_status(self._status(self._error_code, str(failure)[:200]))
            predict.end(end_time=ended_ns)

    def logged(
        self,
        traces: Iterable[RequestTrace],
        started_ns: int,
        ended_ns: int,
        records: int,
        sink: str,
    ) -> None:
        """`prediction_log.write` children: the background write that carried each request."""
        tracer = self._tracer
        attributes = {"mlops.prediction_log.records": records, "mlops.prediction_log.sink": sink}
        for trace in traces:
            span = tracer.start_span(
                "prediction_log.write",
                context=trace.context,
                start_time=started_ns,
                attributes=attributes,
            )
            span.end(end_time=ended_ns)

    def step(
        self,
        trace: RequestTrace,
        name: str,
        started_ns: int,
        ended_ns: int,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """A child span of the request for another step of its own (e.g. fetching online
        features), recorded after the fact from its `time.time_ns()` bounds."""
        span = self._tracer.start_span(
            name, context=trace.context, start_time=started_ns, attributes=attributes
        )
        span.end(end_time=ended_ns)

    def shutdown(self, timeout_seconds: float) -> None:
        """Export what is queued (within `timeout_seconds`), then stop the exporter."""
        if not self._provider.force_flush(max(1, int(timeout_seconds * 1000))):
            log.warning("tracing: not every span was exported within %.1f s", timeout_seconds)
        self._provider.shutdown()
