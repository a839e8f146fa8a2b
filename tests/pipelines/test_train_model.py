"""train_model: the model contract (raw frame in, probabilities out), search and persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from mlops_platform.pipelines.components.train_model import logic
from mlops_platform.pipelines.data import churn


@pytest.fixture(scope="module")
def trained(churn_small: pd.DataFrame) -> logic.TrainingResult:
    return logic.train(churn_small, search_iterations=2, search_rows=4000, max_iter=60, seed=0)


def test_search_then_refit_on_all_rows(trained: logic.TrainingResult) -> None:
    assert len(trained.candidates) == 2
    assert trained.search_rows == 4000
    assert trained.train_rows == 8000
    best = max(trained.candidates, key=lambda c: c["pr_auc"])
    assert trained.best_params == best["params"]
    assert set(trained.best_params) == set(logic.SEARCH_SPACE)
    assert all(0.6 < c["roc_auc"] <= 1.0 for c in trained.candidates)
    assert set(trained.seconds) == {"search", "refit"}


def test_model_is_a_pipeline_with_balanced_class_weight(trained: logic.TrainingResult) -> None:
    model = trained.model
    assert isinstance(model, Pipeline)
    assert [name for name, _ in model.steps] == ["preprocess", "classifier"]
    classifier = model.named_steps["classifier"]
    assert isinstance(classifier, HistGradientBoostingClassifier)
    assert classifier.class_weight == "balanced"
    assert list(model.feature_names_in_) == churn.FEATURE_NAMES


def test_model_scores_raw_string_rows_and_unknown_categories(
    trained: logic.TrainingResult, churn_small: pd.DataFrame
) -> None:
    rows = churn_small[churn.FEATURE_NAMES].head(3).astype(object)
    for name in churn.CATEGORICAL_FEATURES:
        rows[name] = rows[name].astype(str)
    rows.loc[rows.index[0], "country"] = "ZZ"  # never seen in training
    rows.loc[rows.index[1], "payment_method"] = None
    proba = trained.model.predict_proba(rows)
    assert proba.shape == (3, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    same = trained.model.predict_proba(churn_small[churn.FEATURE_NAMES].head(3))
    assert proba[2, 1] == pytest.approx(same[2, 1])


def test_save_and_load_round_trip(
    trained: logic.TrainingResult, churn_small: pd.DataFrame, tmp_path: Path
) -> None:
    logic.save(trained, churn_small, str(tmp_path), seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.joblib",
        "signature_sample.parquet",
        "training.json",
    ]
    model, info = logic.load(str(tmp_path))
    frame = churn_small[churn.FEATURE_NAMES].head(50)
    assert np.array_equal(model.predict_proba(frame), trained.model.predict_proba(frame))
    assert info["params"] == {**trained.best_params, "class_weight": "balanced", "seed": 0}
    assert info["train_rows"] == 8000
    assert set(info["reference_profile"]["features"]) == set(churn.FEATURE_NAMES)
    assert len(pd.read_parquet(tmp_path / "signature_sample.parquet")) == 1000


def test_search_iterations_must_be_positive(churn_small: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="search_iterations must be at least 1, got 0"):
        logic.train(churn_small, search_iterations=0)
