"""A minimal OTLP/HTTP trace receiver for the tracing benchmark: decodes every export request
(`ExportTraceServiceRequest`, as a collector does) and counts requests, spans and bytes.

    python -m bench.tracing.receiver PORT STATS_FILE

Runs in its own process, so decoding does not share the server's GIL (it does share the
machine, as a collector on the same node would). On SIGTERM it writes its counts as JSON to
STATS_FILE and exits.
"""

from __future__ import annotations

import gzip
import http.server
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ANSWER = ExportTraceServiceResponse().SerializeToString()


class Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.spans = 0
        self.bytes = 0
        self.names: dict[str, int] = {}

    def add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        names: dict[str, int] = {}
        spans = 0
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans += 1
                    names[span.name] = names.get(span.name, 0) + 1
        with self.lock:
            self.requests += 1
            self.spans += spans
            self.bytes += len(body)
            for name, n in names.items():
                self.names[name] = self.names.get(name, 0) + n

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {
                "export_requests": self.requests,
                "spans": self.spans,
                "bytes": self.bytes,
                "spans_by_name": dict(sorted(self.names.items())),
            }


def main(argv: list[str]) -> int:
    port, stats = int(argv[0]), Path(argv[1])
    counts = Counts()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            counts.add(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def stop(_signum: int, _frame: Any) -> None:
        stats.write_text(json.dumps(counts.as_dict()))
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
