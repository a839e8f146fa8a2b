"""Hostile input never hurts anyone else: every malformed or out-of-range value is a 4xx naming
the field, rejected at validation (before it can join a micro-batch), and neighbours in the
same batch are answered as if it had never been sent."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pytest
from serving_support import ServerProcess

from mlops_platform.model_server.app import _parse_json
from mlops_platform.model_server.schema import Column, InputError, InputSchema, to_arrays

SCHEMA = InputSchema(
    (
        Column("x", "float", "double"),
        Column("n", "int", "long"),
        Column("c", "str", "string"),
    )
)


def _rows(body: bytes) -> Any:
    return SCHEMA.rows_from_invocations(_parse_json(body))


def _record(x: str = "1.5", n: str = "2", c: str = '"a"') -> bytes:
    return f'{{"dataframe_records": [{{"x": {x}, "n": {n}, "c": {c}}}]}}'.encode()


# -- numbers out of range -------------------------------------------------------------------

OUT_OF_RANGE = [
    # beyond int64, above and below: orjson gives an int above, a float below (which int()
    # would have turned into exactly -2**63: a silent clamp)
    (_record(n="9223372036854775808"), "column 'n' row 0: integer 9223372036854775808 is out"),
    (_record(n="18446744073709551616"), "column 'n' row 0: 1.8446744073709552e+19 is beyond 2**53"),
    (_record(n="-9223372036854775809"), "column 'n' row 0: -9.223372036854776e+18 is beyond 2**53"),
    (_record(n="1e19"), "column 'n' row 0: 1e+19 is beyond 2**53"),
    (_record(n="1" + "0" * 400), "column 'n' row 0: integer <an integer of 401 digits>"),
    # a very long integer literal in a number column: no float64 can hold it
    (_record(x="1" + "0" * 400), "column 'x' row 0: integer <an integer of 401 digits> is"),
    (_record(x="-" + "9" * 4000), "column 'x' row 0: integer -<an integer of 4000 digits>"),
]


@pytest.mark.parametrize(("body", "message"), OUT_OF_RANGE, ids=range(len(OUT_OF_RANGE)))
def test_numbers_out_of_range_are_rejected_naming_the_column(body: bytes, message: str) -> None:
    with pytest.raises(InputError) as err:
        _rows(body)
    assert err.value.status == 422
    assert err.value.message.startswith(message), err.value.message
    assert len(err.value.message) < 300  # never echoes thousands of digits


def test_values_that_cancel_out_in_a_sum_are_still_checked() -> None:
    # The fast path proves a group finite with one sum(); two huge integers of opposite signs
    # sum to 0 and must not slip through it.
    big = "1" + "0" * 400
    data = f'[[{big}, 1, "a"], [-{big}, 1, "a"]]'
    body = f'{{"dataframe_split": {{"columns": ["x", "n", "c"], "data": {data}}}}}'
    with pytest.raises(InputError, match="column 'x' row 0: integer"):
        _rows(body.encode())


def test_values_at_the_limits_are_accepted_exactly() -> None:
    rows = _rows(_record(x="1e308", n="9223372036854775807"))
    rows_min = _rows(_record(x="-1" + "0" * 300, n="-9223372036854775808"))
    arrays = to_arrays(SCHEMA, [rows, rows_min])
    assert arrays["n"].tolist() == [2**63 - 1, -(2**63)]
    assert arrays["x"].tolist() == [1e308, -1e300]
    assert _rows(_record(n="9007199254740992.0")).columns["n"] == [2**53]


def test_a_very_long_literal_is_a_400_not_a_crash() -> None:
    # Beyond Python's 4300-digit limit the stdlib parser refuses it: malformed JSON.
    with pytest.raises(InputError) as err:
        _rows(_record(x="1" * 5000))
    assert err.value.status == 400


# -- v2 datatypes ---------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", [["FP64"], {"a": 1}, None, 3, "FLOAT", "fp64"])
def test_a_v2_datatype_that_is_not_a_datatype_name_is_a_422(datatype: Any) -> None:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": datatype, "data": [1.0]}]}
    with pytest.raises(InputError) as err:
        SCHEMA.rows_from_v2(body)
    assert err.value.status == 422
    assert err.value.message.startswith("input 'x': datatype must be one of the protocol's")


# -- the server -----------------------------------------------------------------------------

ROW = {"tenure": 12.5, "orders": 3, "spend": 40.0, "plan": "gold"}


def _body(**changes: str) -> bytes:
    """A dataframe_records body with raw JSON text for the changed values."""
    row = {k: json.dumps(v) for k, v in ROW.items()}
    row.update(changes)
    return (
        "{" + '"dataframe_records": [{' + ", ".join(f'"{k}": {v}' for k, v in row.items()) + "}]}"
    ).encode()


def _v2(datatype: Any = "INT64", data: Any = (3,)) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "tenure", "shape": [1], "datatype": "FP64", "data": [12.5]},
            {"name": "orders", "shape": [1], "datatype": datatype, "data": list(data)},
            {"name": "spend", "shape": [1], "datatype": "FP64", "data": [40.0]},
            {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["gold"]},
        ]
    }


SERVER_CASES: list[tuple[str, str, Any, int, str]] = [
    (
        "int above int64",
        "/invocations",
        _body(orders="9223372036854775808"),
        422,
        "column 'orders' row 0: integer 9223372036854775808 is out of range",
    ),
    (
        "int below int64",
        "/invocations",
        _body(orders="-9223372036854775809"),
        422,
        "column 'orders' row 0: -9.223372036854776e+18 is beyond 2**53",
    ),
    (
        "long literal in a number column",
        "/invocations",
        _body(tenure="7" * 1000),
        422,
        "column 'tenure' row 0: integer <an integer of 1000 digits>",
    ),
    (
        "v2 int above int64",
        "/v2/models/churn/infer",
        _v2(data=[2**63]),
        422,
        "column 'orders' row 0: integer 9223372036854775808",
    ),
    (
        "v2 datatype list",
        "/v2/models/churn/infer",
        _v2(datatype=["INT64"]),
        422,
        "input 'orders': datatype must be one of",
    ),
    (
        "v2 datatype object",
        "/v2/models/churn/infer",
        _v2(datatype={"t": "INT64"}),
        422,
        "input 'orders': datatype must be one of",
    ),
]


def _message(response: Any) -> str:
    body = response.body
    return body["message"] if "message" in body else body["error"]


@pytest.mark.parametrize(
    ("case", "path", "body", "status", "message"), SERVER_CASES, ids=[c[0] for c in SERVER_CASES]
)
def test_the_server_rejects_hostile_values_and_neighbours_are_unharmed(
    server: ServerProcess, case: str, path: str, body: Any, status: int, message: str
) -> None:
    good = _body()
    expected = server.post("/invocations", good)
    assert expected.status == 200
    # The bad request and many good ones at once, so they share micro-batches.
    with ThreadPoolExecutor(8) as pool:
        goods = [pool.submit(server.post, "/invocations", good) for _ in range(24)]
        bad = pool.submit(server.post, path, body)
        answers = [f.result() for f in goods]
    response = bad.result()
    assert response.status == status, response.body
    assert _message(response).startswith(message), response.body
    assert [(a.status, a.body) for a in answers] == [(200, expected.body)] * 24
    orjson.loads(response.raw)  # the error itself is valid JSON


def test_accepted_extremes_round_trip(server: ServerProcess) -> None:
    response = server.post("/invocations", _body(orders="9223372036854775807", tenure="1e300"))
    assert response.status == 200, response.body
    assert np.asarray(response.body["predictions"]).shape == (1,)


# -- lone UTF-16 surrogates -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (_record(c='"gold\\ud800"'), "$.dataframe_records[0].c"),
        (b'{"dataframe_records": [{"x\\udfff": 1}]}', "$.dataframe_records[0] (an object key)"),
        (b'{"inputs": [{"name": "\\ud800", "data": [NaN]}]}', "$.inputs[0].name"),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_where_it_is(body: bytes, where: str) -> None:
    with pytest.raises(InputError) as err:
        _parse_json(body)
    assert err.value.status == 400
    assert err.value.message.startswith(f"invalid JSON string at {where}: a lone UTF-16 surrogate")


def test_a_surrogate_pair_is_text_and_accepted() -> None:
    assert _rows(_record(c='"\\ud83d\\ude00"')).columns["c"] == ["\U0001f600"]


SURROGATES = [
    ("in a column name", "/invocations", b'{"dataframe_records": [{"pl\\ud800an": "x"}]}'),
    ("in a value", "/invocations", _body(plan='"gold\\udc00"')),
    ("in a v2 input name", "/v2/models/churn/infer", b'{"inputs": [{"name": "\\ud800"}]}'),
    ("in a v2 id", "/v2/models/churn/infer", b'{"id": "\\ud800", "inputs": []}'),
    ("in a NaN body", "/invocations", b'{"inputs": {"tenure": NaN, "plan": "\\ud800"}}'),
]


@pytest.mark.parametrize(("case", "path", "body"), SURROGATES, ids=[c[0] for c in SURROGATES])
def test_the_server_answers_lone_surrogates_with_a_serialisable_400(
    server: ServerProcess, case: str, path: str, body: bytes
) -> None:
    response = server.post(path, body)
    assert response.status == 400, response.body
    assert "a lone UTF-16 surrogate" in _message(response)
    orjson.loads(response.raw)
    assert server.post("/invocations", _body()).status == 200


# -- values only the model knows are bad ----------------------------------------------------


def test_encoder_categories_are_read_from_the_fitted_pipeline(churn_model: dict[str, Any]) -> None:
    from mlops_platform.model_server.model import encoder_categories

    assert encoder_categories(churn_model["model"]) == {
        "plan": (frozenset({"basic", "gold"}), False)
    }


def test_unknown_categories_are_rejected_at_validation_alone(server: ServerProcess) -> None:
    from serving_support import metric

    good = _body()
    expected = server.post("/invocations", good)
    splits_before = metric(server.metrics(), "model_server_batch_splits_total")
    bad_bodies = [_body(plan='"platinum"'), _body(plan=json.dumps("x" * 100_000))]
    with ThreadPoolExecutor(8) as pool:
        goods = [pool.submit(server.post, "/invocations", good) for _ in range(40)]
        bads = [pool.submit(server.post, "/invocations", b) for b in bad_bodies * 5]
        answers = [f.result() for f in goods]
        rejected = [f.result() for f in bads]
    assert [(a.status, a.body) for a in answers] == [(200, expected.body)] * 40
    for response in rejected:
        assert response.status == 422
        assert _message(response).startswith("column 'plan' row 0: unknown category: string '")
        assert len(response.raw) < 500
    # None of them reached the model: no merged batch had to be split and re-run.
    assert metric(server.metrics(), "model_server_batch_splits_total") == splits_before == 0
