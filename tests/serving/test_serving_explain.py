"""Per-request attributions on the v2 endpoint (MLOPS_SERVE_EXPLAIN): real `mlops serve`
processes on 127.0.0.1, a tree model that gets them, and the refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from serving_support import (
    ServerProcess,
    build_tree_model,
    start_server,
    stop_server,
    v2_infer_body,
)

COLUMNS = ["tenure", "orders", "spend", "plan"]


@pytest.fixture(scope="module")
def tree_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_tree_model(tmp_path_factory.mktemp("tree-model"))


@pytest.fixture(scope="module")
def explaining(
    tree_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    proc = start_server(
        tree_model["path"], tmp_path_factory.mktemp("explain"), {"MLOPS_SERVE_EXPLAIN": "true"}
    )
    yield proc
    stop_server(proc)


def _attributions(response: Any) -> dict[str, Any]:
    found = [o for o in response.body["outputs"] if o["name"] == "attributions"]
    assert len(found) == 1, response.body
    return found[0]


def test_attributions_add_up_to_each_rows_score(
    explaining: ServerProcess, tree_model: dict[str, Any]
) -> None:
    frame = tree_model["frame"].iloc[10:16].copy()
    frame.loc[frame.index[0], "plan"] = "platinum"  # unseen category: routed as missing
    body = {**v2_infer_body(frame), "parameters": {"explain": True}}
    response = explaining.post("/v2/models/tree/infer", body)
    assert response.status == 200, response.body
    tensor = _attributions(response)
    assert tensor["datatype"] == "FP64" and tensor["shape"] == [6, 4]
    params = tensor["parameters"]
    assert params["features"] == COLUMNS
    assert params["units"] == "log_odds"
    values = np.asarray(tensor["data"]).reshape(tensor["shape"])
    scores = np.asarray(next(o for o in response.body["outputs"] if o["name"] == "scores")["data"])
    margin = params["base_value"] + values.sum(axis=1)
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), scores, atol=1e-6)
    # and against the model in this process, attribution by attribution's sum
    expected = tree_model["model"].decision_function(frame)
    np.testing.assert_allclose(margin, expected, atol=1e-9)


def test_no_attributions_unless_asked(explaining: ServerProcess, tree_model) -> None:
    body = v2_infer_body(tree_model["frame"].head(2))
    for extra in ({}, {"parameters": {"explain": False}}, {"parameters": {}}):
        response = explaining.post("/v2/models/tree/infer", {**body, **extra})
        assert response.status == 200
        assert [o["name"] for o in response.body["outputs"]] == ["predictions", "scores"]


def test_explain_must_be_a_boolean(explaining: ServerProcess, tree_model) -> None:
    body = {**v2_infer_body(tree_model["frame"].head(1)), "parameters": {"explain": "yes"}}
    response = explaining.post("/v2/models/tree/infer", body)
    assert response.status == 400
    assert "parameters.explain must be true or false, got 'yes'" in response.raw.decode()


def test_off_by_default_asking_is_a_400(
    tree_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    proc = start_server(tree_model["path"], tmp_path_factory.mktemp("explain-off"))
    try:
        body = v2_infer_body(tree_model["frame"].head(1))
        refused = proc.post("/v2/models/tree/infer", {**body, "parameters": {"explain": True}})
        plain = proc.post("/v2/models/tree/infer", body)
    finally:
        stop_server(proc)
    assert refused.status == 400
    assert "attributions are off on this server" in refused.raw.decode()
    assert "MLOPS_SERVE_EXPLAIN=true" in refused.raw.decode()
    assert plain.status == 200


def test_a_model_treeshap_cannot_read_is_a_422(
    churn_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The serving tests' LogisticRegression churn model, with attributions enabled."""
    proc = start_server(
        churn_model["path"], tmp_path_factory.mktemp("explain-lr"), {"MLOPS_SERVE_EXPLAIN": "1"}
    )
    try:
        body = v2_infer_body(churn_model["frame"].head(1))
        refused = proc.post("/v2/models/churn/infer", {**body, "parameters": {"explain": True}})
        plain = proc.post("/v2/models/churn/infer", body)
    finally:
        stop_server(proc)
    assert refused.status == 422
    assert "cannot be explained: LogisticRegression is not a tree model" in refused.raw.decode()
    assert plain.status == 200


@pytest.mark.parametrize(
    ("settings", "rendered"),
    [({}, None), ({"explain": True}, "true"), ({"explain": False}, "false")],
)
def test_a_stack_turns_attributions_on_through_server_settings(settings, rendered) -> None:
    """The serving component passes `server_settings.explain` as MLOPS_SERVE_EXPLAIN (the
    registry validates it); without it the server keeps the default, off."""
    from mlops_platform.components.serving.model import ModelDeploymentConfig, deployment

    config = ModelDeploymentConfig.model_validate(
        {
            "stable": {"model_uri": "models:/churn@champion"},
            "mlflow_tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
            "server_settings": settings,
        }
    )
    env = deployment("churn", config, "stable")["spec"]["template"]["spec"]["containers"][0]["env"]
    values = {var["name"]: var.get("value") for var in env}
    assert values.get("MLOPS_SERVE_EXPLAIN") == rendered
