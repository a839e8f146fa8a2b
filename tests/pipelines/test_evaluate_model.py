"""evaluate_model: metric values, segments and the promotion rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_platform.pipelines.components.evaluate_model.logic import decide, evaluate, score
from mlops_platform.pipelines.data import churn


def test_score_exact_values() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_score = np.array([0.1, 0.6, 0.4, 0.9])
    assert score(y_true, y_score) == {
        "rows": 4,
        "positive_rate": 0.5,
        "roc_auc": 0.75,
        "pr_auc": 0.83333,
        "f1": 0.5,
    }


def test_score_with_one_class_has_no_auc() -> None:
    assert score(np.array([0, 0]), np.array([0.2, 0.7])) == {
        "rows": 2,
        "positive_rate": 0.0,
        "roc_auc": None,
        "pr_auc": None,
        "f1": 0.0,
    }


class ConstantModel:
    """predict_proba from one feature, so expected metrics are computable by hand."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = (frame["complaints_90d"].to_numpy() > 0).astype(float) * 0.8 + 0.1
        return np.column_stack([1 - p, p])


def test_evaluate_overall_and_per_segment(churn_small: pd.DataFrame) -> None:
    result = evaluate(ConstantModel(), churn_small, ["preferred_device"])
    assert set(result["segments"]["preferred_device"]) == {"desktop", "mobile", "tablet"}
    rows = sum(s["rows"] for s in result["segments"]["preferred_device"].values())
    assert rows == result["overall"]["rows"] == 8000
    mobile = churn_small[churn_small["preferred_device"] == "mobile"]
    expected = score(mobile[churn.LABEL].to_numpy(), ConstantModel().predict_proba(mobile)[:, 1])
    assert result["segments"]["preferred_device"]["mobile"] == expected


def test_unknown_segment_feature_is_named(churn_small: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="segment_features: unknown feature\\(s\\) shoe_size"):
        evaluate(ConstantModel(), churn_small, ["shoe_size"])


def result(roc_auc: float | None) -> dict:
    return {"overall": {"roc_auc": roc_auc, "pr_auc": 0.5, "f1": 0.5}}


@pytest.mark.parametrize(
    ("candidate", "champion", "promote", "reason"),
    [
        (0.80, None, True, "no champion yet; candidate roc_auc=0.8000"),
        (
            0.80,
            0.805,
            True,
            "candidate roc_auc=0.8000 is within tolerance of or better than champion 0.8050 "
            "(delta -0.0050, tolerance 0.01)",
        ),
        (
            0.78,
            0.80,
            False,
            "candidate roc_auc=0.7800 is worse than champion 0.8000 "
            "(delta -0.0200, tolerance 0.01)",
        ),
        (None, 0.80, False, "candidate roc_auc is undefined on the golden set"),
    ],
)
def test_promotion_rule(candidate, champion, promote, reason) -> None:
    assert decide(
        result(candidate), None if champion is None else result(champion), "roc_auc", 0.01
    ) == (promote, reason)


def test_primary_metric_must_be_known() -> None:
    with pytest.raises(ValueError, match="primary_metric must be one of roc_auc, pr_auc, f1"):
        decide(result(0.8), None, "accuracy", 0.01)
