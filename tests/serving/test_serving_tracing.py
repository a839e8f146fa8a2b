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
