"""Global feature attributions: exact TreeSHAP through the preprocessing, the permutation
fallback, and what the training pipeline logs to MLflow and puts in the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_platform.model_server.explain import (
    TreeAttributor,
    Unsupported,
    _category_segments,
)
from mlops_platform.pipelines.data import churn
from mlops_platform.pipelines.lib.explain import bar_plot, card_section, global_attributions


@pytest.fixture(scope="module")
def churn_model(churn_small: pd.DataFrame):
    """The training step's own model (categorical HGB splits), trained on 6000 rows."""
    from mlops_platform.pipelines.components.train_model import logic as training

    result = training.train(churn_small.head(6000), search_iterations=1, max_iter=60)
    return result.model


@pytest.fixture(scope="module")
def held_out(churn_small: pd.DataFrame) -> pd.DataFrame:
    return churn_small.tail(2000)


def test_churn_attributions_add_up_to_the_model_margin(churn_model, held_out) -> None:
    x = held_out[churn.FEATURE_NAMES]
    attributor = TreeAttributor(churn_model)
    result = attributor.attributions(x)
    assert result.feature_names == tuple(churn.FEATURE_NAMES)
    assert result.values.shape == (len(x), len(churn.FEATURE_NAMES))
    assert result.output == "log_odds"
    # base + sum(attributions) is the model's log-odds, and through it the probability.
    margin = churn_model.decision_function(x)
    np.testing.assert_allclose(result.margin(), margin, atol=1e-9)
    proba = 1 / (1 + np.exp(-result.margin()))
    np.testing.assert_allclose(proba, churn_model.predict_proba(x)[:, 1], atol=1e-9)
    assert attributor.verify(x) < 1e-9
    # The base value is the cover-weighted mean margin over the training data.
    assert abs(result.base_value - churn_model[-1]._baseline_prediction.ravel()[0]) < 1.0


def test_categorical_splits_are_what_plain_shap_gets_wrong(churn_model, held_out) -> None:
    """The reason for the conversion: shap reads HGB's bitset splits as numeric thresholds."""
    import shap

    hgb = churn_model[-1]
    assert hgb.is_categorical_.any()
    xt = churn_model[:-1].transform(held_out[churn.FEATURE_NAMES])
    plain = shap.TreeExplainer(hgb, model_output="raw")
    phi = plain.shap_values(xt, check_additivity=False)
    error = np.abs(plain.expected_value + phi.sum(axis=1) - hgb.decision_function(xt))
    assert error.max() > 1e-3


def test_unknown_and_missing_categories_follow_the_models_routing(churn_model) -> None:
    """Unseen categories (NaN after the encoder) and NaN numerics: still exact."""
    x = churn.generate(300, seed=11)[churn.FEATURE_NAMES].copy()
    categorical = list(churn.CATEGORICAL_FEATURES)
    x[categorical[:2]] = x[categorical[:2]].astype(object)
    x.loc[x.index[:100], categorical[0]] = "never-seen"
    x.loc[x.index[100:200], categorical[1]] = None
    numeric = list(churn.NUMERIC_FEATURES)
    x[numeric[0]] = x[numeric[0]].astype("float64")
    x.loc[x.index[50:150], numeric[0]] = np.nan
    attributor = TreeAttributor(churn_model)
    np.testing.assert_allclose(
        attributor.attributions(x).margin(), churn_model.decision_function(x), atol=1e-9
    )


def test_segments_of_a_categorical_split() -> None:
    bitset = np.zeros(8, dtype=np.uint32)
    bitset[0] = 0b101  # codes 0 and 2 go left
    segments = _category_segments(bitset, np.array([0.0, 1.0, 2.0, 3.0]), missing_left=False)
    # negatives: missing side (right); 0 left; 1 right; 2 left; 3..: right (3 known, rest unknown)
    assert segments == [(-np.inf, False), (0.0, True), (1.0, False), (2.0, True), (3.0, False)]


def test_one_hot_columns_are_summed_back_into_their_input() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    n = 600
    x = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "gold", "plus"], n),
            "region": rng.choice(["eu", "us"], n),
            "tenure": rng.uniform(0, 100, n),
        }
    )
    y = ((x["plan"] == "gold") ^ (x["tenure"] < 30)).astype(int)
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(sparse_output=True), ["plan", "region"]),
            ("num", "passthrough", ["tenure"]),
        ]
    )
    model = Pipeline([("pre", pre), ("rf", RandomForestClassifier(20, random_state=0))]).fit(x, y)
    attributor = TreeAttributor(model)
    result = attributor.attributions(x)
    assert result.feature_names == ("plan", "region", "tenure")
    assert result.output == "probability"
    np.testing.assert_allclose(result.margin(), model.predict_proba(x)[:, 1], atol=1e-6)
    importance = np.abs(result.values).mean(axis=0)
    assert importance[0] > importance[1] and importance[2] > importance[1]  # region is noise


def test_a_linear_model_falls_back_to_permutation_importance(churn_small) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in churn.NUMERIC_FEATURES][:6]
    frame = churn_small[[*numeric, "membership_tier", churn.LABEL]].dropna()
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["membership_tier"]),
        ]
    )
    model = Pipeline([("pre", pre), ("lr", LogisticRegression(max_iter=500))])
    model.fit(frame.drop(columns=churn.LABEL), frame[churn.LABEL])
    with pytest.raises(Unsupported, match="LogisticRegression is not a tree model"):
        TreeAttributor(model)
    summary = global_attributions(
        model, frame.drop(columns=churn.LABEL), frame[churn.LABEL], rows=800
    )
    assert summary["method"] == "permutation_importance"
    assert summary["units"] == "roc_auc"
    assert summary["rows"] == 800
    assert "LogisticRegression is not a tree model" in summary["reason"]
    assert {row["feature"] for row in summary["features"]} == {*numeric, "membership_tier"}
    importances = [row["importance"] for row in summary["features"]]
    assert importances == sorted(importances, reverse=True) and importances[0] > 0.001


def test_global_summary_plot_and_card(churn_model, held_out, tmp_path: Path) -> None:
    summary = global_attributions(
        churn_model, held_out[churn.FEATURE_NAMES], held_out[churn.LABEL], rows=500
    )
    assert summary["method"] == "tree_shap" and summary["rows"] == 500
    assert summary["additivity_error"] < 1e-9
    assert len(summary["features"]) == len(churn.FEATURE_NAMES)
    top = summary["features"][0]
    assert top["importance"] == max(row["importance"] for row in summary["features"])
    png = Path(bar_plot(summary, str(tmp_path / "plot.png")))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = card_section(summary, "explanation/attributions.png", top=3)
    assert f"| 1 | {top['feature']} | {top['importance']:.4f} |" in lines
    assert "![feature attributions](explanation/attributions.png)" in lines
    with pytest.raises(ValueError, match="explain_rows must be at least 1"):
        global_attributions(
            churn_model, held_out[churn.FEATURE_NAMES], held_out[churn.LABEL], rows=0
        )


def test_training_pipeline_logs_attributions_and_card(
    tmp_path: Path, churn_small: pd.DataFrame, sqlite_mlflow: str
) -> None:
    """The real training pipeline under kfp's local runner (the tracking store is SQLite, as in
    the other pipeline runs here: `mlflow server` takes over a minute to start on a loaded
    machine): attributions JSON, plot, per-feature metrics and the model card."""
    import mlflow
    from mlflow import MlflowClient

    from mlops_platform.pipelines.demo import run_pipeline
    from mlops_platform.pipelines.pipelines.training import training_pipeline

    data = churn.write_parquet(churn_small, tmp_path / "churn.parquet")
    run_pipeline(
        training_pipeline,
        "training",
        {
            "data_uri": str(data),
            "tracking_uri": sqlite_mlflow,
            "search_iterations": 1,
            "max_iter": 40,
        },
        tmp_path / "root",
        tmp_path / "training.log",
    )
    client = MlflowClient(sqlite_mlflow)
    version = client.get_model_version("churn", "1")
    run = client.get_run(version.run_id)
    explanation = mlflow.artifacts.load_dict(
        f"runs:/{version.run_id}/explanation/attributions.json"
    )
    card = mlflow.artifacts.load_text(f"runs:/{version.run_id}/model_card.md")
    plot = mlflow.artifacts.download_artifacts(
        f"runs:/{version.run_id}/explanation/attributions.png", dst_path=str(tmp_path / "dl")
    )
    assert explanation["method"] == "tree_shap"
    assert explanation["rows"] == 1600  # the golden split (20% of 8000), all below 2000
    assert explanation["additivity_error"] < 1e-9
    assert run.data.tags["attribution_method"] == "tree_shap"
    for row in explanation["features"]:
        assert run.data.metrics[f"attribution/{row['feature']}"] == pytest.approx(row["importance"])
    top = explanation["features"][0]
    assert "## Feature attributions" in card
    assert f"| 1 | {top['feature']} | {top['importance']:.4f} |" in card
    assert "explanation/attributions.png)" in card
    assert Path(plot).read_bytes()[:4] == b"\x89PNG"
    kfp_card = next((tmp_path / "root").glob("*/register-model/model_card")).read_text()
    assert kfp_card == card
