"""OpenTelemetry traces of `mlops serve`, exported to a real OTLP/HTTP receiver on 127.0.0.1.

The receiver is an HTTP server that decodes each POST /v1/traces body as the collector does:
an `ExportTraceServiceRequest` protobuf (opentelemetry-proto), answered with an
`ExportTraceServiceResponse`. The server under test is the real process with the standard
OTEL_* variables; nothing in it is replaced.
"""

from __future__ import annotations

import gzip
import http.server
import json
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from serving_support import ServerProcess, split_payload, start_server, stop_server, v2_infer_body

from mlops_platform.model_server import tracing

INFER_SPAN = "POST /v2/models/{model_name}/infer"
INVOCATIONS_SPAN = "POST /invocations"
STEPS = {"batch.wait", "model.predict", "prediction_log.write"}


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    start: int
    end: int
    status: int
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


@dataclass
class Receiver:
    """What an OTLP/HTTP collector received: every span of every export request."""

    url: str
    spans: list[Span] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    found.append(
                        Span(
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            name=s.name,
                            kind=s.kind,
                            start=s.start_time_unix_nano,
                            end=s.end_time_unix_nano,
                            status=s.status.code,
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            resource=resource,
                        )
                    )
        with self.lock:
            self.requests += 1
            self.spans.extend(found)

    def of_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(self, what: Callable[[], Any], timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = what()
            if found:
                return found
            time.sleep(0.05)
        with self.lock:
            names = sorted({(s.trace_id[:8], s.name) for s in self.spans})
        raise AssertionError(f"not received within {timeout}s; the receiver has {names}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceResponse,
            )

            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces" or self.headers["Content-Type"] != (
                "application/x-protobuf"
            ):
                self.send_error(404)
                return
            state.add(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Receiver(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def tracing_env(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "churn-serving",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "MLOPS_SERVE_PREDICTION_SINK": "file",
        **extra,
    }


@pytest.fixture(scope="module")
def traced(
    churn_model: dict[str, Any], receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = start_server(
        churn_model["path"], tmp_path_factory.mktemp("traced"), tracing_env(receiver)
    )
    yield proc
    stop_server(proc)


def post(
    server: ServerProcess, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def ids() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def complete_trace(receiver: Receiver, trace_id: str, names: set[str]) -> dict[str, Span]:
    def found() -> dict[str, Span] | None:
        spans = {s.name: s for s in receiver.of_trace(trace_id)}
        return spans if names <= spans.keys() else None

    return receiver.wait_for(found)


def test_incoming_traceparent_is_continued_with_a_span_per_step(
    traced: ServerProcess, receiver: Receiver, churn_model: dict[str, Any]
) -> None:
    trace_id, caller = ids()
    status, answer = post(
        traced,
        "/v2/models/churn/infer",
        v2_infer_body(churn_model["frame"].head(3)),
        {"traceparent": f"00-{trace_id}-{caller}-01"},
    )
    assert status == 200, answer
    spans = complete_trace(receiver, trace_id, {INFER_SPAN, *STEPS})
    assert len(receiver.of_trace(trace_id)) == 4
    server = spans[INFER_SPAN]
    assert server.parent_id == caller  # the sidecar's (here: the caller's) span
    assert server.kind == 2  # SPAN_KIND_SERVER
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["http.route"] == "/v2/models/{model_name}/infer"
    assert server.attributes["url.path"] == "/v2/models/churn/infer"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["mlops.model.name"] == "churn"
    assert server.resource["service.name"] == "churn-serving"
    assert server.resource["service.version"] == "0.1.0"
    for step in STEPS:
        assert spans[step].parent_id == server.span_id, step
        assert spans[step].kind == 1, step  # SPAN_KIND_INTERNAL
        assert spans[step].status == 0, step  # unset: no error
    wait, predict, write = (
        spans[n] for n in ("batch.wait", "model.predict", "prediction_log.write")
    )
    # Queued, then predicted, then answered; the log is written after the answer.
    assert server.start <= wait.start <= wait.end == predict.start <= predict.end <= server.end
    assert write.start >= predict.end
    assert predict.attributes["mlops.batch.rows"] >= 3
    assert predict.attributes["mlops.batch.requests"] >= 1
    assert predict.attributes["mlops.model.version"] == "local"
    assert write.attributes["mlops.prediction_log.sink"] == "file"
    assert write.attributes["mlops.prediction_log.records"] >= 1


def test_b3_headers_are_continued_on_invocations(
    traced: ServerProcess, receiver: Receiver, churn_model: dict[str, Any]
) -> None:
    trace_id, caller = ids()
    status, _ = post(
        traced,
        "/invocations",
        split_payload(churn_model["frame"].head(2)),
        {"X-B3-TraceId": trace_id, "X-B3-SpanId": caller, "X-B3-Sampled": "1"},
    )
    assert status == 200
    spans = complete_trace(receiver, trace_id, {INVOCATIONS_SPAN, *STEPS})
    assert spans[INVOCATIONS_SPAN].parent_id == caller
    assert spans[INVOCATIONS_SPAN].attributes["http.route"] == "/invocations"

    single_trace, single_caller = ids()
    status, _ = post(
        traced,
        "/invocations",
        split_payload(churn_model["frame"].head(1)),
        {"b3": f"{single_trace}-{single_caller}-1"},
    )
    assert status == 200
    spans = complete_trace(receiver, single_trace, {INVOCATIONS_SPAN})
    assert spans[INVOCATIONS_SPAN].parent_id == single_caller


def test_a_request_without_context_starts_a_trace(
    traced: ServerProcess, receiver: Receiver, churn_model: dict[str, Any]
) -> None:
    marker = "/v2/models/churn/infer"
    before = {s.trace_id for s in receiver.spans}
    status, _ = post(traced, marker, v2_infer_body(churn_model["frame"].head(1)), {})
    assert status == 200

    def new_root() -> Span | None:
        with receiver.lock:
            roots = [s for s in receiver.spans if s.trace_id not in before and s.name == INFER_SPAN]
        return roots[0] if roots else None

    root = receiver.wait_for(new_root)
    assert root.parent_id == ""
    complete_trace(receiver, root.trace_id, {INFER_SPAN, *STEPS})


def test_unsampled_requests_probes_and_client_errors(
    traced: ServerProcess, receiver: Receiver, churn_model: dict[str, Any]
) -> None:
    dropped, caller = ids()
    # The caller decided not to sample (flags 00): the server follows (parent-based sampler).
    status, _ = post(
        traced,
        "/v2/models/churn/infer",
        v2_infer_body(churn_model["frame"].head(1)),
        {"traceparent": f"00-{dropped}-{caller}-00"},
    )
    assert status == 200
    assert traced.get("/v2/health/ready").status == 200
    assert traced.get("/v2/models/churn").status == 200
    assert traced.get("/metrics").status == 200
    # A client error is traced (the server span says 422), with no model call under it.
    bad, bad_caller = ids()
    status, _ = post(
        traced,
        "/v2/models/churn/infer",
        {"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": ["x"]}]},
        {"traceparent": f"00-{bad}-{bad_caller}-01"},
    )
    assert status == 422
    # Spans are exported in the order they end: once a later request's log write is there,
    # anything of the earlier ones would be too.
    last, last_caller = ids()
    post(
        traced,
        "/v2/models/churn/infer",
        v2_infer_body(churn_model["frame"].head(1)),
        {"traceparent": f"00-{last}-{last_caller}-01"},
    )
    complete_trace(receiver, last, {INFER_SPAN, *STEPS})
    assert receiver.of_trace(dropped) == []
    rejected = receiver.of_trace(bad)
    assert [(s.name, s.attributes["http.response.status_code"], s.status) for s in rejected] == [
        (INFER_SPAN, 422, 0)
    ]
    with receiver.lock:
        names = {s.name for s in receiver.spans}
    assert names <= {INFER_SPAN, INVOCATIONS_SPAN, *STEPS}, names


def test_sigterm_exports_what_is_queued(
    churn_model: dict[str, Any], receiver: Receiver, tmp_path: Path
) -> None:
    # The export interval (60 s) is longer than the test: only the shutdown's flush sends them.
    server = start_server(
        churn_model["path"], tmp_path, tracing_env(receiver, OTEL_BSP_SCHEDULE_DELAY="60000")
    )
    try:
        trace_id, caller = ids()
        status, _ = post(
            server,
            "/v2/models/churn/infer",
            v2_infer_body(churn_model["frame"].head(2)),
            {"traceparent": f"00-{trace_id}-{caller}-01"},
        )
        assert status == 200
    finally:
        assert stop_server(server) == 0, server.log()
    spans = {s.name for s in receiver.of_trace(trace_id)}
    assert spans == {INFER_SPAN, *STEPS}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "grpc",
            "OTEL_EXPORTER_OTLP_PROTOCOL='grpc': this server exports OTLP over HTTP only",
        ),
        (
            "OTEL_TRACES_SAMPLER_ARG",
            "1.5",
            "OTEL_TRACES_SAMPLER_ARG='1.5' must be a ratio between 0 and 1",
        ),
    ],
)
def test_bad_tracing_settings_stop_the_server(
    churn_model: dict[str, Any],
    receiver: Receiver,
    tmp_path: Path,
    variable: str,
    value: str,
    message: str,
) -> None:
    env = tracing_env(receiver, OTEL_TRACES_SAMPLER="parentbased_traceidratio", **{variable: value})
    server = start_server(churn_model["path"], tmp_path, env, wait=False)
    assert server.proc.wait(timeout=60) == 2
    assert message in server.log()


# --- the configuration, without a process ---------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_enabled_only_with_an_endpoint(environ: dict[str, str], on: bool) -> None:
    assert tracing.enabled(environ) is on
    if not on:
        assert tracing.from_env("0", environ) is None


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "ParentBased{root:AlwaysOnSampler,"),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, "AlwaysOffSampler"),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            "ParentBased{root:TraceIdRatioBased{0.1},",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "0"},
            "TraceIdRatioBased{0.0}",
        ),
    ],
)
def test_sampler_from_the_standard_variables(environ: dict[str, str], expected: str) -> None:
    assert tracing.sampler_from(environ).get_description().startswith(expected)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"OTEL_TRACES_SAMPLER": "jaeger_remote"},
            "OTEL_TRACES_SAMPLER='jaeger_remote' is not supported; use one of always_on,",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
            "OTEL_TRACES_SAMPLER_ARG='half' must be a ratio between 0 and 1 for traceidratio",
        ),
    ],
)
def test_sampler_errors_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(tracing.TracingConfigError) as error:
        tracing.sampler_from(environ)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER='zipkin': this server exports traces with `otlp` only",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL='grpc': this server exports OTLP over HTTP only",
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL='http/json': this server exports OTLP over HTTP only",
        ),
    ],
)
def test_unsupported_exporters_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(tracing.TracingConfigError) as error:
        tracing.check({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **environ})
    assert str(error.value).startswith(message)


def test_traces_specific_protocol_wins() -> None:
    tracing.check(
        {
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",  # for other signals
        }
    )


def test_a_further_step_is_a_child_of_the_request() -> None:
    """`Tracing.step`, for steps a request may gain (online features): exported as a child of
    the request's span with its own bounds, through the SDK's in-memory exporter."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing.sampler_from({}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = tracing.Tracing(provider, tracing.propagator_from({}))
    trace_id, caller = ids()
    scope = {
        "path": "/invocations",
        "method": "POST",
        "headers": [(b"traceparent", f"00-{trace_id}-{caller}-01".encode())],
    }
    request = traced.start_request(scope)
    assert request is not None
    traced.step(request, "features.fetch", 10, 20, {"mlops.features.rows": 1})
    traced.end_request(request, 200)
    step, server = exporter.get_finished_spans()
    assert (step.name, step.start_time, step.end_time) == ("features.fetch", 10, 20)
    assert step.parent.span_id == server.context.span_id
    assert f"{server.context.trace_id:032x}" == trace_id
    assert f"{server.parent.span_id:016x}" == caller
    assert step.attributes["mlops.features.rows"] == 1


def _in_memory(
    environ: dict[str, str],
) -> tuple[tracing.Tracing, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=tracing.sampler_from(environ))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = tracing.Tracing(provider, tracing.propagator_from({}))
    traced.model_attributes = {"mlops.model.name": "churn", "mlops.model.version": "3"}
    return traced, exporter


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "path": path, "method": "POST", "headers": headers}


def _serve(traced: tracing.Tracing, scope: dict[str, Any]) -> list[Any]:
    """`Tracing.serve` with a handler that records what it was given and answers 200, going
    through the batch and log steps as the app does for a sampled request."""
    import asyncio

    seen: list[Any] = []

    async def send(message: dict[str, Any]) -> None:
        pass

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def handler(scope: Any, receive: Any, send_given: Any) -> None:
        request = tracing.CURRENT.get()
        seen.extend([request, send_given is send])
        if request is not None:
            request.mark_enqueued()
            started = time.time_ns()
            traced.batch_done([(request, None)], started, started + 1000, 1, 1)
        await send_given({"type": "http.response.start", "status": 200, "headers": []})
        await send_given({"type": "http.response.body", "body": b"{}"})
        if request is not None:
            now = time.time_ns()
            traced.logged([request], now, now + 1000, 1, "file")

    asyncio.run(traced.serve(scope, receive, send, handler))
    return seen


@pytest.mark.parametrize(
    ("environ", "headers", "path", "exported"),
    [
        # The caller's decision is followed: flags 01 -> all four spans, 00 -> none.
        ({}, [(b"traceparent", b"00-{t}-{s}-01")], "/invocations", 4),
        ({}, [(b"traceparent", b"00-{t}-{s}-00")], "/invocations", 0),
        ({}, [(b"x-b3-traceid", b"{t}"), (b"x-b3-spanid", b"{s}"), (b"x-b3-sampled", b"0")],
         "/invocations", 0),
        ({}, [(b"b3", b"{t}-{s}-1")], "/v2/models/churn/infer", 4),
        # B3 debug flag: sampled, whatever x-b3-sampled would say.
        ({}, [(b"x-b3-traceid", b"{t}"), (b"x-b3-spanid", b"{s}"), (b"x-b3-flags", b"1")],
         "/invocations", 4),
        # No context: the root sampler decides, once, for the request and its steps.
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
         [], "/invocations", 0),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"},
         [], "/invocations", 4),
        # Probes and metadata are never traced.
        ({}, [(b"traceparent", b"00-{t}-{s}-01")], "/v2/health/ready", 0),
    ],
)  # fmt: skip
def test_sampling_is_decided_once_per_request(
    environ: dict[str, str],
    headers: list[tuple[bytes, bytes]],
    path: str,
    exported: int,
) -> None:
    traced, exporter = _in_memory(environ)
    trace_id, caller = ids()
    filled = [
        (name, value.replace(b"{t}", trace_id.encode()).replace(b"{s}", caller.encode()))
        for name, value in headers
    ]
    request, given_send = _serve(traced, _scope(path, [(b"host", b"x"), *filled]))
    spans = exporter.get_finished_spans()
    assert len(spans) == exported
    if not exported:
        # Served as with tracing off: no request trace for the steps, the app's own `send`.
        assert request is None
        assert given_send is True
        return
    assert given_send is False  # wrapped, to see the status
    by_name = {s.name: s for s in spans}
    server = by_name.pop(f"POST {tracing._route(path)}")
    assert sorted(by_name) == ["batch.wait", "model.predict", "prediction_log.write"]
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["url.path"] == path
    assert server.attributes["mlops.model.version"] == "3"
    if filled:
        assert f"{server.context.trace_id:032x}" == trace_id
        assert f"{server.parent.span_id:016x}" == caller
    else:
        assert server.parent is None
    for step in by_name.values():
        assert step.parent.span_id == server.context.span_id, step.name
        assert step.context.trace_id == server.context.trace_id, step.name
    assert by_name["model.predict"].attributes["mlops.model.name"] == "churn"
    assert by_name["prediction_log.write"].attributes["mlops.prediction_log.sink"] == "file"


def test_request_attributes_follow_the_path_and_the_model() -> None:
    """The request span's attributes are built once per path and reused: a new path or a new
    model must not get another's."""
    traced, exporter = _in_memory({})
    for path in ("/invocations", "/v2/models/a/infer", "/invocations"):
        request = traced.begin(_scope(path, []))
        assert request is not None
        traced.end_request(request, 200)
    traced.model_attributes = {"mlops.model.name": "churn", "mlops.model.version": "4"}
    request = traced.begin(_scope("/invocations", []))
    assert request is not None
    traced.end_request(request, 500)
    spans = exporter.get_finished_spans()
    assert [s.attributes["url.path"] for s in spans] == [
        "/invocations",
        "/v2/models/a/infer",
        "/invocations",
        "/invocations",
    ]
    assert [s.attributes["mlops.model.version"] for s in spans] == ["3", "3", "3", "4"]
    assert [s.attributes.get("error.type") for s in spans] == [None, None, None, "500"]
    assert "http.response.status_code" not in traced._attributes(_scope("/invocations", []))


@pytest.mark.parametrize(
    ("every_header", "expected"),
    [
        (False, {"traceparent": ["t"], "b3": ["b"], "x-b3-flags": ["1"]}),
        (
            True,
            {"host": ["h"], "traceparent": ["t"], "b3": ["b"], "x-b3-flags": ["1"],
             "uberctx-k": ["v"]},
        ),
    ],
)  # fmt: skip
def test_propagation_headers_read_once(every_header: bool, expected: dict[str, list[str]]) -> None:
    """The default propagators get the headers they read (including B3's single header and
    flags, which their `fields` omit); propagators chosen by OTEL_PROPAGATORS get every one."""
    from opentelemetry.sdk.trace import TracerProvider

    traced = tracing.Tracing(TracerProvider(), tracing.propagator_from({}), every_header)
    headers = [
        (b"host", b"h"),
        (b"traceparent", b"t"),
        (b"b3", b"b"),
        (b"x-b3-flags", b"1"),
        (b"uberctx-k", b"v"),
    ]
    assert traced._carrier(headers) == expected
