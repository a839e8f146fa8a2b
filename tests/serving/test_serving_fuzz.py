"""Property-based fuzzing of every endpoint with hypothesis: whatever a client sends, the answer
is never a 5xx, and the server is alive and answering correctly afterwards.

Requests are generated around the real request shapes (the four `/invocations` formats, v2
infer tensors) with hostile values mixed in (integers far beyond int64, NaN/Infinity tokens,
lone surrogates, huge and nested values, wrong types, unknown names), plus arbitrary JSON and
raw bytes, methods and paths. Bounded: a fixed number of examples, well under a minute.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_support import COLUMNS, ServerProcess

PATHS = [
    "/invocations",
    "/v2/models/churn/infer",
    "/v2/models/churn/versions/local/infer",
    "/v2/models/churn",
    "/v2/models/churn/ready",
    "/v2/models/churn/example",
    "/v2/models/other/infer",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2",
    "/ping",
    "/health",
    "/version",
    "/metrics",
]
NAMES = [*COLUMNS, "", "colour", "\ud800", "plan\udfff", "x" * 300]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers().map(lambda i: i * 10**300),  # far beyond int64 and float64
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 2**53 + 1, -(2**53) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["gold", "basic", "platinum", "\ud800", "a\udfffb", "x" * 5000]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(NAMES), inner, max_size=4)
    ),
    max_leaves=12,
)
column_values = st.lists(values, min_size=0, max_size=4)


@st.composite
def invocations(draw: Any) -> Any:
    names = draw(st.lists(st.sampled_from(NAMES), max_size=6))
    n = draw(st.integers(0, 3))
    kind = draw(st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs"]))
    if kind == "dataframe_split":
        data = draw(
            st.lists(st.lists(values, min_size=len(names), max_size=len(names) + 1), max_size=n)
        )
        body: Any = {"columns": draw(st.one_of(st.just(names), values)), "data": data}
    elif kind == "inputs" and draw(st.booleans()):
        body = {name: draw(column_values) for name in names}
    else:
        body = [{name: draw(values) for name in names} for _ in range(n)]
    payload = {kind: draw(st.one_of(st.just(body), values))}
    if draw(st.booleans()):
        payload[draw(st.sampled_from(["params", "extra", "inputs"]))] = draw(values)
    return payload


@st.composite
def v2_infer(draw: Any) -> Any:
    inputs = []
    for name in draw(st.lists(st.sampled_from(NAMES), max_size=5)):
        data = draw(column_values)
        tensor = {
            "name": draw(st.one_of(st.just(name), values)),
            "shape": draw(st.one_of(st.just([len(data)]), st.lists(values, max_size=3))),
            "datatype": draw(
                st.one_of(st.sampled_from(["FP64", "INT64", "BYTES", "BOOL", "FP32"]), values)
            ),
            "data": draw(st.one_of(st.just(data), values)),
        }
        inputs.append(tensor)
    payload: dict[str, Any] = {"inputs": draw(st.one_of(st.just(inputs), values))}
    if draw(st.booleans()):
        payload["id"] = draw(values)
    return payload


ROW = {"tenure": 12.5, "orders": 3, "spend": 40.0, "plan": "gold"}
DATATYPES = {"tenure": "FP64", "orders": "INT64", "spend": "FP64", "plan": "BYTES"}
_DROP = object()


@st.composite
def near_valid_rows(draw: Any) -> list[dict[str, Any]]:
    """A few valid rows, each with up to two values replaced by hostile ones (or dropped),
    maybe an extra column: what gets past the shape checks into value validation."""
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        row = dict(ROW)
        for name in draw(st.lists(st.sampled_from(COLUMNS), max_size=2)):
            row[name] = draw(st.one_of(scalars, st.just(_DROP)))
        if draw(st.integers(0, 9)) == 0:
            row[draw(st.sampled_from(NAMES))] = draw(scalars)
        rows.append({k: v for k, v in row.items() if v is not _DROP})
    return rows


@st.composite
def near_valid_request(draw: Any) -> tuple[str, Any]:
    rows = draw(near_valid_rows())
    names = list(rows[0])
    rows = [r for r in rows if list(r) == names]  # the same columns in every row
    kind = draw(
        st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs", "v2"])
    )
    if kind == "v2":
        inputs = [
            {
                "name": n,
                "shape": [len(rows)],
                "datatype": DATATYPES.get(n, "BYTES"),
                "data": [r[n] for r in rows],
            }
            for n in names
        ]
        return "/v2/models/churn/infer", {"inputs": inputs}
    if kind == "dataframe_split":
        body: Any = {"columns": names, "data": [[r[n] for n in names] for r in rows]}
    elif kind == "inputs":
        body = {n: [r[n] for r in rows] for n in names}
    else:
        body = rows
    return "/invocations", {kind: body}


predict_requests = near_valid_request().map(
    lambda r: ("POST", r[0], json.dumps(r[1]).encode(), "application/json")
)

bodies = st.one_of(
    invocations().map(lambda p: json.dumps(p).encode()),
    v2_infer().map(lambda p: json.dumps(p).encode()),
    values.map(lambda p: json.dumps(p).encode()),
    st.binary(max_size=200),
    st.just(b""),
)
any_requests = st.tuples(
    st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]),
    st.one_of(
        st.sampled_from(["/invocations", "/v2/models/churn/infer"]),
        st.sampled_from(PATHS),
        st.sampled_from(PATHS).map(lambda p: p + "/x"),
    ),
    bodies,
    st.sampled_from(["application/json", "application/json; charset=utf-8", "text/csv", ""]),
)
requests = st.one_of(predict_requests, any_requests)


def test_no_input_gives_a_5xx_and_the_server_stays_correct(server: ServerProcess) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    seen: dict[int, int] = {}
    good = {"dataframe_records": [{"tenure": 12.5, "orders": 3, "spend": 40.0, "plan": "gold"}]}
    expected = server.post("/invocations", good)
    assert expected.status == 200
    started = time.monotonic()

    @settings(
        max_examples=600,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: a failure is reproducible
        suppress_health_check=list(HealthCheck),
    )
    @given(requests)
    def check(request: tuple[str, str, bytes, str]) -> None:
        method, path, body, content_type = request
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        seen[response.status] = seen.get(response.status, 0) + 1
        assert response.status < 500, (method, path, body[:300], raw[:300])
        if response.getheader("content-type") == "application/json":
            json.loads(raw)  # every answer is valid JSON
        if response.getheader("connection") == "close":
            connection.close()

    check()
    print("FUZZ", seen, round(time.monotonic() - started, 1))
    assert time.monotonic() - started < 60
    assert server.proc.poll() is None
    assert server.post("/invocations", good).body == expected.body
    assert server.get("/v2/health/ready").status == 200
    # The fuzzing reached validation and the model, not only the front door.
    assert seen.get(200, 0) > 0 and seen.get(422, 0) > 0 and seen.get(400, 0) > 0, seen
