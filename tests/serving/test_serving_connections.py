"""Slow and idle clients cannot starve the server: header, body and idle deadlines close their
connections, and the connection limit answers 503 at once instead of letting requests queue."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving_support import ServerProcess, start_server, stop_server

DEADLINE = 2.0
ROW = {"dataframe_records": [{"tenure": 1.0, "orders": 1, "spend": 1.0, "plan": "gold"}]}


@pytest.fixture(scope="module")
def guarded(
    churn_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("guarded")
    server = start_server(
        churn_model["path"],
        tmp,
        {
            "MLOPS_SERVE_HEADER_TIMEOUT_SECONDS": str(DEADLINE),
            "MLOPS_SERVE_BODY_TIMEOUT_SECONDS": str(DEADLINE),
            "MLOPS_SERVE_IDLE_TIMEOUT_SECONDS": str(DEADLINE),
            "MLOPS_SERVE_MAX_CONNECTIONS": "400",
        },
    )
    yield server
    stop_server(server)


def _connect(server: ServerProcess) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.setblocking(False)
    return sock


def _open(server: ServerProcess, n: int) -> dict[str, list[socket.socket]]:
    held: dict[str, list[socket.socket]] = {
        "idle": [],
        "slow headers": [],
        "slow body": [],
        "kept alive": [],
    }
    body = json.dumps(ROW).encode()
    for _ in range(n):
        held["idle"].append(_connect(server))  # never sends a byte
        sock = _connect(server)
        sock.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\n")  # headers never finish
        held["slow headers"].append(sock)
        sock = _connect(server)
        sock.send(
            b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        held["slow body"].append(sock)
    for _ in range(20):  # a request answered, then the connection kept open and silent
        sock = _connect(server)
        sock.send(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        held["kept alive"].append(sock)
    return held


def _trickle(held: dict[str, list[socket.socket]]) -> None:
    """One more byte on every slow connection: each resets no deadline."""
    for sock in held["slow headers"]:
        _send(sock, b"X")
    for sock in held["slow body"]:
        _send(sock, b" ")


def _send(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # already closed by the server
        sock.send(data)


def _closed(sock: socket.socket) -> bool:
    """True once the server has closed the connection (EOF or reset), after any answer."""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_and_idle_connections_are_closed_and_valid_requests_answered(
    guarded: ServerProcess,
) -> None:
    held = _open(guarded, 100)  # 320 connections, under the limit of 400
    try:
        started = time.monotonic()
        latencies = []
        while time.monotonic() - started < DEADLINE * 0.75:
            _trickle(held)
            t = time.monotonic()
            response = guarded.post("/invocations", ROW)
            latencies.append(time.monotonic() - t)
            assert response.status == 200, response.body
            time.sleep(0.1)
        assert len(latencies) >= 5 and max(latencies) < 1.0, latencies
        # Every held connection is closed by the server soon after its deadline, though the
        # slow ones kept sending.
        deadline = started + DEADLINE * 3
        open_kinds: dict[str, int] = {}
        while time.monotonic() < deadline:
            _trickle(held)
            open_kinds = {k: sum(not _closed(s) for s in v) for k, v in held.items()}
            if not any(open_kinds.values()):
                break
            time.sleep(0.2)
        assert open_kinds == dict.fromkeys(held, 0)
        assert guarded.post("/invocations", ROW).status == 200
    finally:
        for socks in held.values():
            for sock in socks:
                sock.close()


def test_beyond_the_connection_limit_requests_get_503_at_once_until_deadlines_free_them(
    guarded: ServerProcess,
) -> None:
    idle = [_connect(guarded) for _ in range(420)]
    try:
        time.sleep(0.3)
        started = time.monotonic()
        response = guarded.post("/invocations", ROW)
        assert response.status == 503
        assert time.monotonic() - started < 1.0
        time.sleep(DEADLINE + 1)  # the idle ones are closed at their header deadline
        assert guarded.post("/invocations", ROW).status == 200
    finally:
        for sock in idle:
            sock.close()


def test_the_deadlines_are_settings(tmp_path: Path) -> None:
    from mlops_platform.model_server.settings import Settings

    s = Settings.from_env({})
    assert (s.header_timeout_seconds, s.body_timeout_seconds) == (10.0, 30.0)
    assert (s.idle_timeout_seconds, s.max_connections) == (75.0, 512)
