"""The model kinds the serving benchmark builds and registers itself.

Data the project did not tune for: sklearn's `make_classification` (20 features, 8 of them
informative, 5 % label noise), plus the project's own churn pipeline. Every kind is logged
with the MLflow flavor a team would use (sklearn, xgboost, lightgbm), a signature and an
input example, and registered as `<kind>@champion` in the benchmark's throw-away registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ALIAS = "champion"


@dataclass(frozen=True)
class Kind:
    name: str
    description: str
    family: str  # "tree" | "linear" (the throughput target applies to both)
    register: Callable[[int, int], Any]  # (rows, seed) -> the frame requests are drawn from


def _classification(rows: int, seed: int) -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=20, n_informative=8, flip_y=0.05, random_state=seed
    )
    return pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(20)]), y


def _log(flavor: str, model: Any, name: str, x: Any, y_sample: Any, **extra: Any) -> None:
    import importlib

    import mlflow
    from mlflow.models import infer_signature

    module = importlib.import_module(f"mlflow.{flavor}")
    with mlflow.start_run(run_name=name):
        info = module.log_model(
            model,
            name="model",
            signature=infer_signature(x, y_sample),
            input_example=x.head(5),
            registered_model_name=name,
            **extra,
        )
    mlflow.MlflowClient().set_registered_model_alias(
        name, ALIAS, str(info.registered_model_version)
    )


def _sklearn_kind(name: str, factory: Callable[[int], Any]) -> Callable[[int, int], Any]:
    def register(rows: int, seed: int) -> Any:
        x, y = _classification(rows, seed)
        model = factory(seed).fit(x, y)
        _log(
            "sklearn",
            model,
            name,
            x,
            model.predict(x.head(100)),
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn==1.9.1", "pandas==3.1.1"],
        )
        return x

    return register


def _hist_gradient_boosting(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=100, random_state=seed)


def _random_forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, min_samples_leaf=5, random_state=seed)


def _logistic_regression(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    # The usual linear model: scaled inputs, then the regression (a two-step Pipeline
    # without a ColumnTransformer).
    return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(max_iter=1000))])


def _xgboost(rows: int, seed: int) -> Any:
    import xgboost as xgb

    x, y = _classification(rows, seed)
    model = xgb.XGBClassifier(n_estimators=100, max_depth=6, n_jobs=1, random_state=seed)
    model.fit(x, y)
    _log("xgboost", model, "xgboost", x, model.predict(x.head(100)))
    return x


def _lightgbm(rows: int, seed: int) -> Any:
    import lightgbm as lgb

    x, y = _classification(rows, seed)
    model = lgb.LGBMClassifier(n_estimators=100, num_leaves=31, n_jobs=1, verbose=-1)
    model.fit(x, y)
    _log("lightgbm", model, "lightgbm", x, model.predict(x.head(100)))
    return x


def _churn(rows: int, seed: int) -> Any:
    from mlops_platform.pipelines.components.train_model.logic import build_model
    from mlops_platform.pipelines.data import churn
    from mlops_platform.pipelines.lib.drift import reference_profile

    df = churn.generate(rows, seed=seed)
    x = df[churn.FEATURE_NAMES]
    model = build_model({"learning_rate": 0.1, "max_leaf_nodes": 31}, seed).fit(x, df[churn.LABEL])
    _log(
        "sklearn",
        model,
        "churn",
        x,
        model.predict_proba(x.head(100))[:, 1],
        metadata={"reference_profile": reference_profile(x)},
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn==1.9.1", "pandas==3.1.1"],
    )
    return x


KINDS = [
    Kind(
        "churn", "the project's churn Pipeline(ColumnTransformer, HGB), 47 columns", "tree", _churn
    ),
    Kind(
        "hist_gradient_boosting",
        "bare HistGradientBoostingClassifier (100 iterations), sklearn flavor",
        "tree",
        _sklearn_kind("hist_gradient_boosting", _hist_gradient_boosting),
    ),
    Kind(
        "xgboost",
        "XGBClassifier (100 trees, depth 6), xgboost flavor",
        "tree",
        _xgboost,
    ),
    Kind(
        "lightgbm",
        "LGBMClassifier (100 trees, 31 leaves), lightgbm flavor",
        "tree",
        _lightgbm,
    ),
    Kind(
        "random_forest",
        "bare RandomForestClassifier (100 trees, min_samples_leaf=5), sklearn flavor",
        "tree",
        _sklearn_kind("random_forest", _random_forest),
    ),
    Kind(
        "logistic_regression",
        "Pipeline(StandardScaler, LogisticRegression), sklearn flavor",
        "linear",
        _sklearn_kind("logistic_regression", _logistic_regression),
    ),
]
