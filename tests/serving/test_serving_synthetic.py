"""The golden-set requests of a progressive rollout: the example endpoint the load tester reads,
and synthetic requests that are answered and scored but kept out of the drift window and the
prediction log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from serving_support import metric, split_payload, start_server, stop_server, training_frame

SYNTHETIC = {"X-Mlops-Synthetic": "golden-set"}


@pytest.fixture
def example_server(churn_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory):
    """A server of its own per test: the window and log counts start from nothing."""
    tmp = tmp_path_factory.mktemp("example-server")
    server = start_server(
        churn_model["path"],
        tmp,
        env={
            "MLOPS_SERVE_EXAMPLE_ENDPOINT": "true",
            "MLOPS_SERVE_PREDICTION_SINK": "file",
            "MLOPS_SERVE_PREDICTION_FILE": str(tmp / "predictions.jsonl"),
        },
    )
    yield server, tmp / "predictions.jsonl"
    stop_server(server)


def _post(server, path: str, body: dict[str, Any], headers: dict[str, str] | None = None):
    import urllib.request

    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_the_example_endpoint_is_off_by_default(server):
    assert server.get("/v2/models/churn/example").status == 404


def test_the_example_is_the_models_input_example_and_a_valid_request(example_server, churn_model):
    server, _ = example_server
    response = server.get("/v2/models/churn/example")
    assert response.status == 200
    expected = json.loads(
        churn_model["frame"].head(3).to_json(orient="split", index=False, double_precision=15)
    )
    assert response.body["dataframe_split"]["columns"] == expected["columns"]
    assert len(response.body["dataframe_split"]["data"]) == 3
    status, answer = _post(server, "/invocations", response.body)
    assert status == 200 and len(answer["predictions"]) == 3
    assert server.request("POST", "/v2/models/churn/example", {}).status == 405


def test_synthetic_requests_are_scored_but_stay_out_of_drift_and_the_log(example_server):
    server, log_file = example_server
    frame = training_frame(200, seed=5)
    before = server.metrics()
    scored = metric(before, "model_server_prediction_score_count", model="churn")
    window = metric(before, "model_server_drift_window_rows", model="churn")
    for start in range(0, 200, 50):
        body = split_payload(frame.iloc[start : start + 50])
        assert _post(server, "/invocations", body, SYNTHETIC)[0] == 200
    assert _post(server, "/v2/models/churn/infer", _v2(frame.head(10)), SYNTHETIC)[0] == 200
    after = server.metrics()
    assert metric(after, "model_server_prediction_score_count", model="churn") == scored + 210
    assert metric(after, "model_server_drift_window_rows", model="churn") == window
    # A live request in the same breath is logged and windowed, alone.
    assert _post(server, "/invocations", split_payload(frame.head(7)))[0] == 200
    deadline = time.monotonic() + 10
    while 7 not in _logged_requests(log_file) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)  # anything else would have been flushed with it
    # The live request alone, none of the synthetic 50-row and 10-row ones.
    assert _logged_requests(log_file) == [7]
    assert metric(server.metrics(), "model_server_drift_window_rows", model="churn") == window + 7


def _v2(frame) -> dict[str, Any]:
    inputs = []
    for column in frame.columns:
        values = frame[column].astype(object).where(frame[column].notna(), None).tolist()
        kind = {"f": "FP64", "i": "INT64"}.get(frame[column].dtype.kind, "BYTES")
        inputs.append({"name": column, "datatype": kind, "shape": [len(frame)], "data": values})
    return {"inputs": inputs}


def _logged_requests(path: Path) -> list[int]:
    """Rows of each request in the prediction log (one JSON record per request)."""
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [len(record["predictions"]) for record in records]
