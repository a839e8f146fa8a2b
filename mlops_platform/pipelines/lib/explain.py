"""Global feature attributions of a trained model on a held-out sample, and their bar plot.

Tree models (the churn HistGradientBoosting pipeline, sklearn forests and boosting, XGBoost,
LightGBM) get exact TreeSHAP values per input column (mlops_platform/model_server/explain.py,
the code the model server uses per request); a feature's global attribution is the mean
|SHAP value| over the sample, in the model's margin units (log-odds for the churn model).

Every other model gets the fallback, sklearn's `permutation_importance` on the same sample: the
drop in ROC AUC (binary classifiers; the estimator's own score otherwise) when one input column
is shuffled. Chosen over shap's model-agnostic explainers because it runs the whole pipeline on
the raw columns (strings and missing values included, so it is per input column by
construction), needs no background set, and costs `repeats x columns` batch predictions
(seconds), where Kernel/Permutation SHAP costs thousands of model calls per explained row. Its
numbers are not SHAP values (a score drop, not a margin share): the summary names its method and
units so the two are never compared as if they were.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# Rows of the held-out set explained: TreeSHAP cost is linear in rows; 2000 rows make the mean
# |SHAP| stable to about 2-3% for the churn model's top features.
SAMPLE_ROWS = 2000
PERMUTATION_REPEATS = 5
TOP_FEATURES = 10


def sample_rows(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    if rows < 1:
        raise ValueError(f"explain_rows must be at least 1, got {rows}")
    if len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed)


def global_attributions(
    model: Any,
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    rows: int = SAMPLE_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """The summary logged to MLflow and shown in the model card.

    `features`/`labels`: the held-out set (input columns only / the label); at most `rows` of
    it are used. Features are sorted by importance, largest first.
    """
    import numpy as np

    from mlops_platform.model_server.explain import TreeAttributor, Unsupported

    sample = sample_rows(features, rows, seed)
    y = labels.loc[sample.index]
    try:
        attributor = TreeAttributor(model)
        error = attributor.verify(sample)
        result = attributor.attributions(sample)
    except Unsupported as exc:
        return _permutation(model, sample, y, seed, reason=str(exc))
    importance = np.abs(result.values).mean(axis=0)
    mean = result.values.mean(axis=0)
    table = [
        {"feature": name, "importance": float(imp), "mean": float(avg)}
        for name, imp, avg in zip(result.feature_names, importance, mean, strict=True)
    ]
    return {
        "method": "tree_shap",
        "statistic": "mean |SHAP value|",
        "units": result.output,
        "base_value": result.base_value,
        "additivity_error": error,
        "rows": len(sample),
        "reason": "exact TreeSHAP (path-dependent) through the model's preprocessing",
        "features": sorted(table, key=lambda row: -row["importance"]),
    }


def _permutation(
    model: Any, sample: pd.DataFrame, y: pd.Series, seed: int, reason: str
) -> dict[str, Any]:
    from sklearn.inspection import permutation_importance

    binary = hasattr(model, "predict_proba") and y.nunique() == 2
    scoring = "roc_auc" if binary else None
    found = permutation_importance(
        model, sample, y, scoring=scoring, n_repeats=PERMUTATION_REPEATS, random_state=seed
    )
    table = [
        {"feature": str(name), "importance": float(mean), "std": float(std)}
        for name, mean, std in zip(
            sample.columns, found.importances_mean, found.importances_std, strict=True
        )
    ]
    return {
        "method": "permutation_importance",
        "statistic": f"mean drop in {scoring or 'score'} over {PERMUTATION_REPEATS} shuffles",
        "units": scoring or "score",
        "rows": len(sample),
        "reason": f"TreeSHAP not applicable: {reason}",
        "features": sorted(table, key=lambda row: -row["importance"]),
    }


def bar_plot(summary: dict[str, Any], path: str, top: int = 20) -> str:
    """A horizontal bar chart of the `top` features (PNG at `path`); returns `path`."""
    import matplotlib

    matplotlib.use("Agg")  # headless: pipeline pods have no display
    import matplotlib.pyplot as plt

    rows = summary["features"][:top][::-1]
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    try:
        axes.barh([r["feature"] for r in rows], [r["importance"] for r in rows], color="#3b75af")
        axes.set_xlabel(f"{summary['statistic']} ({summary['units']})")
        axes.set_title(f"Feature attributions: {summary['method']} on {summary['rows']} rows")
        figure.tight_layout()
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path


def card_section(summary: dict[str, Any], plot_link: str, top: int = TOP_FEATURES) -> list[str]:
    """The model card's Markdown lines for `summary` (top features and the plot)."""
    lines = [
        "## Feature attributions",
        "",
        f"Method: {summary['method']} ({summary['statistic']}, units: {summary['units']}) "
        f"on {summary['rows']} held-out rows. {summary['reason']}.",
        "",
        f"| rank | feature | {summary['statistic']} |",
        "|---|---|---|",
    ]
    for rank, row in enumerate(summary["features"][:top], start=1):
        lines.append(f"| {rank} | {row['feature']} | {row['importance']:.4f} |")
    lines += ["", f"![feature attributions]({plot_link})", "", f"Plot: `{plot_link}`", ""]
    return lines
