"""End-to-end tests of `mlops serve` on a real socket: endpoints, bad input, metrics, log."""

from __future__ import annotations

import http.client
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_support import COLUMNS, ServerProcess, metric, split_payload


def as_columns(frame: Any) -> dict[str, list[Any]]:
    split = json.loads(frame.to_json(orient="split", index=False, double_precision=15))
    return {c: [row[i] for row in split["data"]] for i, c in enumerate(split["columns"])}


def expected(churn_model: dict[str, Any], frame: Any) -> tuple[list[int], list[float]]:
    model = churn_model["model"]
    return model.predict(frame).tolist(), model.predict_proba(frame)[:, 1].tolist()


def test_health_and_metadata(server: ServerProcess) -> None:
    assert server.get("/v2/health/live").body == {"live": True}
    assert server.get("/v2/health/ready").body == {"ready": True}
    assert server.get("/v2/models/churn/ready").body == {"name": "churn", "ready": True}
    meta = server.get("/v2/models/churn").body
    assert meta["name"] == "churn"
    assert meta["versions"] == ["local"]
    assert meta["platform"] == "mlflow_sklearn"
    assert [(i["name"], i["datatype"], i["parameters"]["required"]) for i in meta["inputs"]] == [
        ("tenure", "FP64", True),
        ("orders", "INT64", True),
        ("spend", "FP64", False),
        ("plan", "BYTES", True),
    ]


def test_invocations_formats_agree_with_the_model(
    server: ServerProcess, churn_model: dict[str, Any]
) -> None:
    frame = churn_model["frame"].head(7)
    labels, _ = expected(churn_model, frame)
    records = json.loads(frame.to_json(orient="records", double_precision=15))
    columns = as_columns(frame)
    bodies = {
        "dataframe_split": split_payload(frame),
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": columns},
    }
    for name, body in bodies.items():
        response = server.post("/invocations", body)
        assert response.status == 200, (name, response.body)
        assert response.body == {"predictions": labels}, name


def test_v2_infer_returns_labels_and_scores(
    server: ServerProcess, churn_model: dict[str, Any]
) -> None:
    frame = churn_model["frame"].iloc[10:14]
    labels, scores = expected(churn_model, frame)
    datatypes = {"tenure": "FP64", "orders": "INT64", "spend": "FP64", "plan": "BYTES"}
    columns = as_columns(frame)
    body = {
        "id": "req-1",
        "inputs": [
            {"name": c, "shape": [4], "datatype": datatypes[c], "data": columns[c]} for c in COLUMNS
        ],
    }
    response = server.post("/v2/models/churn/infer", body)
    assert response.status == 200, response.body
    out = response.body
    assert (out["model_name"], out["model_version"], out["id"]) == ("churn", "local", "req-1")
    assert out["outputs"][0] == {
        "name": "predictions",
        "datatype": "INT64",
        "shape": [4],
        "data": labels,
    }
    assert out["outputs"][1]["name"] == "scores"
    assert out["outputs"][1]["data"] == pytest.approx(scores, abs=1e-12)
    versioned = server.post("/v2/models/churn/versions/local/infer", body)
    assert versioned.status == 200


ROW = {"tenure": 12.5, "orders": 3, "spend": 40.0, "plan": "gold"}


def records(**changes: Any) -> dict[str, Any]:
    row = {**ROW, **changes}
    return {"dataframe_records": [{k: v for k, v in row.items() if v is not _DROP}]}


_DROP = object()

BAD_INPUTS = [
    ("malformed json", b'{"dataframe_split": {', 400, "malformed JSON: "),
    ("empty body", b"", 400, "request body is empty; send a JSON object"),
    ("not an object", b"[1, 2]", 400, "request body must be a JSON object with one of the keys"),
    (
        "two formats",
        {"instances": [ROW], "inputs": [ROW]},
        400,
        "request body must have exactly one of the keys dataframe_split, dataframe_records, "
        "instances, inputs (got 2)",
    ),
    (
        "unknown column",
        records(colour="red"),
        422,
        "unknown column(s): 'colour'; the model expects: tenure, orders, spend, plan",
    ),
    ("missing column", records(plan=_DROP), 422, "missing required column(s): 'plan'"),
    (
        "string for a number",
        records(tenure="twelve"),
        422,
        "column 'tenure' row 0: expected a number (double), got string 'twelve'",
    ),
    (
        "fraction for an integer",
        records(orders=2.5),
        422,
        "column 'orders' row 0: expected an integer (long), got number 2.5",
    ),
    (
        "number for a string",
        records(plan=7),
        422,
        "column 'plan' row 0: expected a string (string), got integer 7",
    ),
    (
        "null in a required column",
        records(tenure=None),
        422,
        "column 'tenure' row 0: missing value (null/NaN), but the model's signature marks the "
        "column as required",
    ),
    (
        "NaN in a required column",
        b'{"dataframe_records": [{"tenure": NaN, "orders": 1, "spend": 1.0, "plan": "gold"}]}',
        422,
        "column 'tenure' row 0: missing value (null/NaN), but the model's signature marks the "
        "column as required",
    ),
    (
        "Infinity in an optional column",
        b'{"dataframe_records": [{"tenure": 1.0, "orders": 1, "spend": Infinity, "plan": "gold"}]}',
        422,
        "column 'spend' row 0: inf is not allowed (only finite numbers)",
    ),
    (
        "ragged split row",
        {"dataframe_split": {"columns": COLUMNS, "data": [[1.0, 2, 3.0, "gold"], [1.0, 2]]}},
        422,
        "'dataframe_split.data' row 1 has 2 values; expected 4 (one per column)",
    ),
    (
        "category the model cannot encode",
        records(plan="platinum"),
        422,
        "column 'plan' row 0: unknown category: string 'platinum'; the model was trained on "
        "'basic', 'gold'",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(
    server: ServerProcess, case: str, body: Any, status: int, message: str
) -> None:
    response = server.post("/invocations", body)
    assert response.status == status, response.body
    assert response.body["message"].startswith(message), response.body
    assert response.body["error_code"] in {"BAD_REQUEST", "INVALID_PARAMETER_VALUE"}
    # ... and the server keeps serving.
    assert server.post("/invocations", records()).status == 200


def test_optional_column_accepts_null_nan_and_absence(server: ServerProcess) -> None:
    for body in (
        records(spend=None),
        records(spend=_DROP),
        b'{"dataframe_records": [{"tenure": 1.0, "orders": 1, "spend": NaN, "plan": "gold"}]}',
    ):
        response = server.post("/invocations", body)
        assert response.status == 200, response.body
        assert response.body["predictions"] in ([0], [1])


def test_v2_errors(server: ServerProcess) -> None:
    unknown = server.post("/v2/models/fraud/infer", {"inputs": []})
    assert unknown.status == 404
    assert unknown.body == {"error": "unknown model 'fraud'; this server serves 'churn'"}
    wrong_version = server.get("/v2/models/churn/versions/7")
    assert wrong_version.status == 404
    assert wrong_version.body == {
        "error": "model 'churn' has no version '7'; served version is 'local'"
    }
    wrong_type = server.post(
        "/v2/models/churn/infer",
        {"inputs": [{"name": "tenure", "shape": [1], "datatype": "BYTES", "data": ["x"]}]},
    )
    assert wrong_type.status == 422
    assert wrong_type.body == {
        "error": "input 'tenure' has datatype 'BYTES' but the model expects FP64 (double)"
    }
    bad_shape = server.post(
        "/v2/models/churn/infer",
        {"inputs": [{"name": "tenure", "shape": [2], "datatype": "FP64", "data": [1.0]}]},
    )
    assert bad_shape.status == 422
    assert bad_shape.body == {"error": "input 'tenure': shape [2] says 2 values, data has 1"}
    assert server.get("/v2/models/churn/infer").body == {
        "error": "method GET not allowed; use POST"
    }
    assert server.get("/nope").status == 404


def test_payload_over_the_size_limit_is_413(server: ServerProcess) -> None:
    # The fixture server runs with the default limit of 4 MiB. The server answers from the
    # declared length, before the body is sent (a client streaming 5 MiB would see a reset).
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/invocations")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(5 * 1024 * 1024))
    conn.endheaders()
    conn.send(b'{"inputs": {"plan": ["')
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 413
    assert body["message"] == "request body of 5242880 bytes exceeds the limit of 4194304 bytes"
    assert server.post("/invocations", records()).status == 200


def test_unsupported_content_type_is_415(server: ServerProcess) -> None:
    response = server.post("/invocations", "tenure,orders\n1,2\n", content_type="text/csv")
    assert response.status == 415
    assert response.body["message"] == "unsupported Content-Type 'text/csv'; send application/json"


def test_concurrent_requests_are_batched_and_answered_individually(
    server: ServerProcess, churn_model: dict[str, Any]
) -> None:
    frame = churn_model["frame"].head(64)
    labels, _ = expected(churn_model, frame)

    def one(i: int) -> Any:
        return server.post("/invocations", split_payload(frame.iloc[i : i + 1])).body["predictions"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(64)))
    assert answers == [[label] for label in labels]


def test_metrics(server: ServerProcess, churn_model: dict[str, Any]) -> None:
    before = server.metrics()
    ok_before = metric(before, "model_server_requests_total", endpoint="invocations", code="200")
    bad_before = metric(before, "model_server_requests_total", endpoint="invocations", code="422")
    scores_before = metric(before, "model_server_prediction_score_count", model="churn")
    frame = churn_model["frame"].head(5)
    assert server.post("/invocations", split_payload(frame)).status == 200
    assert server.post("/invocations", records(tenure="x")).status == 422
    after = server.metrics()
    labels = {"model": "churn", "version": "local"}
    assert (
        metric(after, "model_server_requests_total", endpoint="invocations", code="200", **labels)
        == ok_before + 1
    )
    assert (
        metric(after, "model_server_requests_total", endpoint="invocations", code="422", **labels)
        == bad_before + 1
    )
    assert metric(after, "model_server_prediction_score_count", **labels) == scores_before + 5
    assert (
        metric(
            after, "model_server_request_duration_seconds_count", endpoint="invocations", **labels
        )
        > 0
    )
    assert metric(after, "model_server_batch_rows_count", **labels) > 0
    assert metric(after, "model_server_request_rows_bucket", le="8.0", **labels) > 0
    assert metric(after, "model_server_ready") == 1.0
    # Drift gauges: one per profiled feature, finite, after the log thread caught up.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = server.metrics()
        if "model_server_feature_psi{" in text:
            break
        time.sleep(0.1)
    for feature in ("tenure", "plan"):
        assert math.isfinite(metric(text, "model_server_feature_psi", feature=feature, **labels))
    assert 'feature="orders"' not in text  # not in the reference profile


def test_prediction_log_file(server: ServerProcess, churn_model: dict[str, Any]) -> None:
    frame = churn_model["frame"].iloc[100:102]
    labels, scores = expected(churn_model, frame)
    assert server.post("/invocations", split_payload(frame)).status == 200
    path = Path(server.log_path.parent / "predictions.jsonl")
    deadline = time.monotonic() + 5
    wanted = None
    while time.monotonic() < deadline and wanted is None:
        for line in path.read_text().splitlines() if path.exists() else []:
            record = json.loads(line)
            if record["features"]["tenure"] == as_columns(frame)["tenure"]:
                wanted = record
        time.sleep(0.1)
    assert wanted is not None, "no record for the request"
    assert wanted["model"] == "churn" and wanted["version"] == "local"
    assert wanted["predictions"] == labels
    assert np.allclose(wanted["scores"], scores)
    assert wanted["features"]["plan"] == frame["plan"].tolist()
    assert len(wanted["request_id"]) == 32


def test_a_rejected_request_does_not_fail_its_batch_neighbours(
    server: ServerProcess, churn_model: dict[str, Any]
) -> None:
    frame = churn_model["frame"].head(24)
    labels, _ = expected(churn_model, frame)
    bad = records(plan="platinum")

    def one(i: int) -> Any:
        if i % 4 == 3:
            return server.post("/invocations", bad).status
        return server.post("/invocations", split_payload(frame.iloc[i : i + 1])).body

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(one, range(24)))
    for i, answer in enumerate(answers):
        assert answer == (422 if i % 4 == 3 else {"predictions": [labels[i]]}), i
