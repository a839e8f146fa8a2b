"""Evaluation on the golden set, per segment, and the promotion decision against the champion."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

METRICS = ("roc_auc", "pr_auc", "f1")
# F1 needs hard decisions; probabilities come from a class-balanced model, so 0.5 is the point
# where both classes weigh the same. Both candidate and champion are scored at this threshold.
DECISION_THRESHOLD = 0.5


def score(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float | int | None]:
    """ROC AUC, PR AUC (average precision) and F1; AUCs are None when only one class occurs."""
    import numpy as np
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    y_true = np.asarray(y_true).astype("int64")
    both_classes = len(np.unique(y_true)) == 2
    return {
        "rows": len(y_true),
        "positive_rate": round(float(y_true.mean()), 5) if len(y_true) else None,
        "roc_auc": round(float(roc_auc_score(y_true, y_score)), 5) if both_classes else None,
        "pr_auc": round(float(average_precision_score(y_true, y_score)), 5)
        if both_classes
        else None,
        "f1": round(float(f1_score(y_true, y_score >= DECISION_THRESHOLD, zero_division=0)), 5),
    }


def evaluate(model: Any, golden: pd.DataFrame, segment_features: list[str]) -> dict[str, Any]:
    """Overall and per-segment metrics of `model` (anything with predict_proba) on `golden`."""
    from mlops_platform.pipelines.data import churn

    unknown = [name for name in segment_features if name not in churn.FEATURE_NAMES]
    if unknown:
        raise ValueError(f"segment_features: unknown feature(s) {', '.join(unknown)}")
    y_true = golden[churn.LABEL].to_numpy()
    y_score = model.predict_proba(golden[churn.FEATURE_NAMES])[:, 1]
    segments: dict[str, dict[str, Any]] = {}
    for feature in segment_features:
        values = golden[feature].astype(str).to_numpy()
        segments[feature] = {
            value: score(y_true[values == value], y_score[values == value])
            for value in sorted(set(values))
        }
    return {"overall": score(y_true, y_score), "segments": segments}


def decide(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    primary_metric: str,
    tolerance: float,
) -> tuple[bool, str]:
    """(promote, reason). A candidate is promoted unless it is worse than the champion on
    `primary_metric` by more than `tolerance` (absolute)."""
    if primary_metric not in METRICS:
        raise ValueError(
            f"primary_metric must be one of {', '.join(METRICS)}, got {primary_metric!r}"
        )
    new = candidate["overall"][primary_metric]
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return False, f"candidate {primary_metric} is undefined on the golden set"
    if champion is None:
        return True, f"no champion yet; candidate {primary_metric}={new:.4f}"
    old = champion["overall"][primary_metric]
    if old is None:
        return True, f"champion {primary_metric} undefined on this golden set"
    delta = new - old
    verdict = delta >= -tolerance
    relation = "within tolerance of or better than" if verdict else "worse than"
    return verdict, (
        f"candidate {primary_metric}={new:.4f} is {relation} champion {old:.4f} "
        f"(delta {delta:+.4f}, tolerance {tolerance})"
    )
