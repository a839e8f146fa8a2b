"""In-process cost of the server's tracing per request, without HTTP: the CPU time of
`Tracing`'s calls for one request (server span, batch.wait, model.predict, prediction_log.write)
with a batch span processor whose exporter drops everything, and of the OTLP encoding of those
spans (what the exporter's thread does before posting them).

    uv run python -m bench.tracing.spans [--requests 20000]

Prints microseconds per request at sampling 1.0, 0.1 and 0; a profile of where it goes is
`python -m cProfile -s tottime -m bench.tracing.spans`. Not a test; runs on demand.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from mlops_platform.model_server import tracing

SCOPE = {
    "type": "http",
    "path": "/invocations",
    "method": "POST",
    "scheme": "http",
    "http_version": "1.1",
    "headers": [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json")],
}


def _tracing(ratio: float, exporter: Any) -> tracing.Tracing:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    environ = {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": str(ratio),
    }
    provider = TracerProvider(sampler=tracing.sampler_from(environ))
    provider.add_span_processor(
        BatchSpanProcessor(
            exporter, max_queue_size=10**6, schedule_delay_millis=10**6, max_export_batch_size=10**6
        )
    )
    traced = tracing.Tracing(provider, tracing.propagator_from({}))
    traced.model_attributes = {"mlops.model.name": "m", "mlops.model.version": "1"}
    return traced


def one_request(traced: tracing.Tracing) -> None:
    request = traced.begin(SCOPE)
    if request is None:
        return
    request.mark_enqueued()
    now = time.time_ns()
    traced.batch_done([(request, None)], now, now + 1000, 1, 1)
    traced.end_request(request, 200)
    traced.logged([request], now + 1000, now + 2000, 1, "file")


def main(argv: list[str] | None = None) -> int:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    parser = argparse.ArgumentParser(prog="python -m bench.tracing.spans")
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    for ratio in (1.0, 0.1, 0.0):
        traced = _tracing(ratio, Dropped())
        started = time.perf_counter()
        for _ in range(args.requests):
            one_request(traced)
        elapsed = time.perf_counter() - started
        print(
            f"sampling {ratio}: {elapsed / args.requests * 1e6:6.1f} us/request to create the spans"
        )

    memory = InMemorySpanExporter()
    traced = _tracing(1.0, memory)
    for _ in range(128):
        one_request(traced)
    traced.shutdown(5)
    spans = memory.get_finished_spans()
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        encode_spans(spans).SerializePartialToString()
    per_span = (time.perf_counter() - started) / rounds / len(spans)
    print(
        f"OTLP encoding: {per_span * 1e6:6.1f} us/span, {4 * per_span * 1e6:6.1f} us/sampled request"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
