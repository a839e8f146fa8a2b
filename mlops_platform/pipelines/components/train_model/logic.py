"""Training: an sklearn Pipeline (ordinal encoding + HistGradientBoosting) chosen by a small search.

The model takes the 47 raw feature columns as a DataFrame (strings for categoricals), which is
the contract the model server relies on. Class imbalance (about 15% churners) is handled with
`class_weight="balanced"`; candidates are ranked by PR AUC, which, unlike accuracy or ROC AUC,
moves with how well the rare class is ranked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

MODEL_FILE = "model.joblib"
INFO_FILE = "training.json"
SAMPLE_FILE = "signature_sample.parquet"
# Rows kept with the model to infer its MLflow signature and input example at registration.
SAMPLE_ROWS = 1000

# The searched space: few, influential knobs, so a 4-candidate search is meaningful.
SEARCH_SPACE: dict[str, list[Any]] = {
    "learning_rate": [0.1, 0.2],
    "max_leaf_nodes": [15, 31, 63],
    "min_samples_leaf": [20, 100, 400],
    "l2_regularization": [0.0, 1.0, 10.0],
}


@dataclass
class TrainingResult:
    model: Pipeline
    best_params: dict[str, Any]
    candidates: list[dict[str, Any]]
    search_rows: int
    train_rows: int
    n_iter: int
    seconds: dict[str, float] = field(default_factory=dict)


def build_model(params: dict[str, Any], seed: int, max_iter: int = 200) -> Pipeline:
    """Preprocessing + classifier as one sklearn Pipeline taking the raw feature frame."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    from mlops_platform.pipelines.data import churn

    categorical = list(churn.CATEGORICAL_FEATURES)
    preprocess = ColumnTransformer(
        [
            (
                "categorical",
                # Unknown or missing categories become NaN, which the trees route as missing,
                # so a category never seen in training does not break serving.
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    dtype=np.float64,
                ),
                categorical,
            ),
            ("numeric", "passthrough", list(churn.NUMERIC_FEATURES)),
        ],
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(
        categorical_features=list(range(len(categorical))),
        class_weight="balanced",
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        max_iter=max_iter,
        random_state=seed,
        **params,
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def features_and_label(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    from mlops_platform.pipelines.data import churn

    return df[churn.FEATURE_NAMES], df[churn.LABEL].astype("int64")


def train(
    df: pd.DataFrame,
    *,
    search_iterations: int = 4,
    search_rows: int = 50_000,
    max_iter: int = 200,
    seed: int = 0,
) -> TrainingResult:
    """Search `search_iterations` parameter sets on a sample, then refit the best on all of `df`.

    The search trains on the older 80% of a sample of at most `search_rows` rows and scores on
    the newer 20%, so the choice favours parameters that hold up over time; refitting on every
    row then costs one fit instead of `search_iterations`.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import ParameterSampler

    from mlops_platform.pipelines.data import churn

    if search_iterations < 1:
        raise ValueError(f"search_iterations must be at least 1, got {search_iterations}")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    sample = df if len(df) <= search_rows else df.sample(n=search_rows, random_state=seed)
    if churn.TIMESTAMP in sample.columns:
        sample = sample.sort_values(churn.TIMESTAMP, kind="stable")
    cut = int(len(sample) * 0.8)
    x_fit, y_fit = features_and_label(sample.iloc[:cut])
    x_val, y_val = features_and_label(sample.iloc[cut:])

    candidates: list[dict[str, Any]] = []
    for params in ParameterSampler(SEARCH_SPACE, n_iter=search_iterations, random_state=seed):
        fit_started = time.perf_counter()
        model = build_model(params, seed, max_iter).fit(x_fit, y_fit)
        scores = model.predict_proba(x_val)[:, 1]
        candidates.append(
            {
                "params": params,
                "pr_auc": float(average_precision_score(y_val, scores)),
                "roc_auc": float(roc_auc_score(y_val, scores)),
                "n_iter": int(model.named_steps["classifier"].n_iter_),
                "seconds": round(time.perf_counter() - fit_started, 3),
            }
        )
    seconds["search"] = time.perf_counter() - started
    best = max(candidates, key=lambda c: c["pr_auc"])

    refit_started = time.perf_counter()
    x_all, y_all = features_and_label(df)
    final = build_model(best["params"], seed, max_iter).fit(x_all, y_all)
    seconds["refit"] = time.perf_counter() - refit_started
    return TrainingResult(
        model=final,
        best_params=dict(best["params"]),
        candidates=candidates,
        search_rows=len(sample),
        train_rows=len(df),
        n_iter=int(final.named_steps["classifier"].n_iter_),
        seconds={k: round(v, 3) for k, v in seconds.items()},
    )


def save(result: TrainingResult, train_df: pd.DataFrame, model_dir: str, seed: int) -> None:
    """Write the model, a signature sample and the training record into one directory."""
    import joblib

    from mlops_platform.pipelines.data import churn
    from mlops_platform.pipelines.lib.drift import reference_profile

    target = Path(model_dir)
    target.mkdir(parents=True, exist_ok=True)
    joblib.dump(result.model, target / MODEL_FILE)
    sample = train_df[churn.FEATURE_NAMES].sample(
        n=min(SAMPLE_ROWS, len(train_df)), random_state=seed
    )
    sample.to_parquet(target / SAMPLE_FILE, index=False)
    info = {
        "params": {**result.best_params, "class_weight": "balanced", "seed": seed},
        "candidates": result.candidates,
        "search_rows": result.search_rows,
        "train_rows": result.train_rows,
        "n_iter": result.n_iter,
        "seconds": result.seconds,
        "reference_profile": reference_profile(train_df[churn.FEATURE_NAMES]),
    }
    (target / INFO_FILE).write_text(json.dumps(info, indent=1, default=str))


def load(model_dir: str) -> tuple[Pipeline, dict[str, Any]]:
    import joblib

    target = Path(model_dir)
    return joblib.load(target / MODEL_FILE), json.loads((target / INFO_FILE).read_text())
