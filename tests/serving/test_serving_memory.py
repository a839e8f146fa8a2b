"""Memory stays bounded under a stream of large rejected requests: a few hundred of them, each
near the body limit, must leave the server process's resident memory near its baseline (the
issue: requests rejected for an unseen multi-megabyte category stayed allocated, hundreds of MB
after a few hundred requests, enough to get a 1 GiB pod OOM-killed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from serving_support import ServerProcess, build_rejecting_model, rss_kib, start_server, stop_server

REQUESTS = 200
VALUE_BYTES = 3_900_000  # with the JSON around it, just under the 4 MiB body limit
# Allowance for what a process grows by on its own while serving (allocator arenas, caches):
# far below what REQUESTS * VALUE_BYTES (780 MB) kept alive would be.
SLACK_KIB = 96 * 1024


def _stream(server: ServerProcess, body_of: Any, expect: str) -> tuple[int, int]:
    """Send the bad requests; returns the RSS after them and the longest answer's length."""
    longest = 0
    for i in range(REQUESTS):
        response = server.post("/invocations", body_of(i))
        assert response.status == 422, response.body
        assert response.body["message"].startswith(expect), response.body["message"][:200]
        longest = max(longest, len(response.raw))
    return rss_kib(server.proc.pid), longest


def _baseline(server: ServerProcess, good: bytes) -> int:
    for _ in range(200):  # warm: the allocator and caches reach their serving size
        assert server.post("/invocations", good).status == 200
    return rss_kib(server.proc.pid)


def test_rejected_unseen_categories_do_not_accumulate(server: ServerProcess) -> None:
    row = {"tenure": 1.0, "orders": 1, "spend": 1.0, "plan": "gold"}
    baseline = _baseline(server, json.dumps({"dataframe_records": [row]}).encode())

    def body(i: int) -> bytes:
        huge = {**row, "plan": chr(97 + i % 26) * VALUE_BYTES}
        return json.dumps({"dataframe_records": [huge]}).encode()

    after, longest = _stream(server, body, "column 'plan' row 0: unknown category: string '")
    assert after - baseline < SLACK_KIB, (baseline, after)
    assert longest < 2_000  # the huge value is not echoed back
    assert server.post("/invocations", {"dataframe_records": [row]}).status == 200


@pytest.fixture(scope="module")
def rejecting_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("rejecting")
    server = start_server(build_rejecting_model(tmp), tmp)
    yield server
    stop_server(server)


def test_values_the_model_rejects_do_not_accumulate(rejecting_server: ServerProcess) -> None:
    # A pyfunc model raising ValueError quoting the value: the rejection travels through the
    # micro-batcher's futures and the model's own exception.
    server = rejecting_server
    baseline = _baseline(server, b'{"inputs": {"v": ["ok"]}}')

    def body(i: int) -> bytes:
        return json.dumps({"inputs": {"v": [chr(97 + i % 26) * VALUE_BYTES]}}).encode()

    after, longest = _stream(server, body, "the model rejected the input: unknown values ['")
    assert after - baseline < SLACK_KIB, (baseline, after)
    assert longest < 2_000  # the huge value is not echoed back
    assert server.post("/invocations", b'{"inputs": {"v": ["ok"]}}').body == {"predictions": [1.0]}


def test_rss_is_read_from_proc(tmp_path: Path) -> None:
    import os

    assert rss_kib(os.getpid()) > 1000
