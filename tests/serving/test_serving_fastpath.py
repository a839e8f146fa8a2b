"""Table tests of the compiled fast path (fastpath.py): for every model kind teams register with
MLflow, the compiled outputs equal the model's own `predict_proba`/`predict`/`decision_function`
(within float tolerance) and the compiled predictions equal the model's `predict`, on random
inputs with missing values and unseen categories where the model takes them. Then the same
through `ServedModel` for models saved with MLflow's flavors, and the load-time fallbacks."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops_platform.model_server.fastpath import (
    Compiled,
    NeedsPipeline,
    Unsupported,
    compile_model,
)

N_FEATURES = 8
NUMERIC = [f"x{i}" for i in range(N_FEATURES)]
KINDS = {**{name: "float" for name in NUMERIC[:-1]}, NUMERIC[-1]: "int"}
MIXED_KINDS = {**KINDS, "plan": "str", "region": "str"}
PLANS = ["basic", "gold", "pro"]
REGIONS = ["eu", "us", "apac", "latam"]


def _frame(n: int, seed: int, nan: bool = False, mixed: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {name: rng.normal(0, 3, n) for name in NUMERIC[:-1]}
    data[NUMERIC[-1]] = rng.integers(0, 50, n).astype(np.int64)
    if nan:
        for name in NUMERIC[:3]:
            data[name][rng.random(n) < 0.15] = np.nan
    if mixed:
        data["plan"] = rng.choice(PLANS, n).astype(object)
        data["region"] = rng.choice(REGIONS, n).astype(object)
    return pd.DataFrame(data)


def _target(df: pd.DataFrame, kind: str) -> np.ndarray:
    signal = np.nan_to_num(df["x0"].to_numpy()) - 0.5 * np.nan_to_num(df["x1"].to_numpy())
    signal = signal + 0.1 * df["x7"].to_numpy()
    if "plan" in df:
        signal = signal + (df["plan"] == "gold").to_numpy() * 2.0
    if kind == "regression":
        return signal * 10 + 3
    if kind == "multiclass":
        return np.digitize(signal, [-1.5, 1.5])  # three classes
    return (signal > 0.5).astype(int)


def _columns(df: pd.DataFrame, kinds: dict[str, str]) -> dict[str, np.ndarray]:
    # What schema.to_arrays gives the model: float64, int64 and object arrays.
    dtype = {"float": np.float64, "int": np.int64, "str": object}
    return {name: df[name].to_numpy(dtype[kind], copy=True) for name, kind in kinds.items()}


def _probe(n: int, seed: int, nan: bool, mixed: bool, unseen: bool) -> pd.DataFrame:
    """Random rows the model has not seen, wider than the training range, with missing values
    and unseen categories where asked for."""
    df = _frame(n, seed, nan=nan, mixed=mixed)
    rng = np.random.default_rng(seed + 1)
    for name in NUMERIC[:-1]:
        df[name] = df[name] * rng.uniform(0.2, 3.0, n)
    if mixed and unseen:
        df.loc[df.index[:5], "plan"] = "never-seen"
    return df


# -- the table --------------------------------------------------------------------------------


def _sk(name: str) -> Callable[[], Any]:
    import sklearn.ensemble as ens
    import sklearn.linear_model as lin

    factories: dict[str, Callable[[], Any]] = {
        "hgb_classifier": lambda: ens.HistGradientBoostingClassifier(max_iter=30, random_state=0),
        "hgb_multiclass": lambda: ens.HistGradientBoostingClassifier(max_iter=20, random_state=0),
        "hgb_regressor": lambda: ens.HistGradientBoostingRegressor(max_iter=30, random_state=0),
        "random_forest_classifier": lambda: ens.RandomForestClassifier(30, random_state=0),
        "random_forest_multiclass": lambda: ens.RandomForestClassifier(20, random_state=0),
        "random_forest_regressor": lambda: ens.RandomForestRegressor(20, random_state=0),
        "extra_trees_classifier": lambda: ens.ExtraTreesClassifier(30, random_state=0),
        "extra_trees_regressor": lambda: ens.ExtraTreesRegressor(20, random_state=0),
        "gradient_boosting_classifier": lambda: ens.GradientBoostingClassifier(
            n_estimators=30, random_state=0
        ),
        "gradient_boosting_multiclass": lambda: ens.GradientBoostingClassifier(
            n_estimators=10, random_state=0
        ),
        "gradient_boosting_regressor": lambda: ens.GradientBoostingRegressor(
            n_estimators=30, random_state=0
        ),
        "logistic_regression": lambda: lin.LogisticRegression(max_iter=500),
        "logistic_multiclass": lambda: lin.LogisticRegression(max_iter=500),
        "linear_regression": lambda: lin.LinearRegression(),
        "ridge": lambda: lin.Ridge(alpha=0.5),
        "elastic_net": lambda: lin.ElasticNet(alpha=0.01),
        "ridge_classifier": lambda: lin.RidgeClassifier(),
        "sgd_classifier": lambda: lin.SGDClassifier(random_state=0),
    }
    return factories[name]


def _pipeline(final: Any, with_ct: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

    if not with_ct:
        return Pipeline(
            [("impute", SimpleImputer()), ("scale", StandardScaler()), ("model", final)]
        )
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer()), ("scale", MinMaxScaler())]), NUMERIC),
            ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
            (
                "region",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                ["region"],
            ),
        ]
    )
    return Pipeline([("pre", pre), ("model", final)])


# (case id, model factory, target kind, training data has NaN, mixed columns)
SKLEARN_CASES: list[tuple[str, Callable[[], Any], str, bool, bool]] = [
    ("hgb_classifier", _sk("hgb_classifier"), "binary", True, False),
    ("hgb_multiclass", _sk("hgb_multiclass"), "multiclass", True, False),
    ("hgb_regressor", _sk("hgb_regressor"), "regression", True, False),
    ("random_forest_classifier", _sk("random_forest_classifier"), "binary", True, False),
    ("random_forest_multiclass", _sk("random_forest_multiclass"), "multiclass", False, False),
    ("random_forest_regressor", _sk("random_forest_regressor"), "regression", True, False),
    ("extra_trees_classifier", _sk("extra_trees_classifier"), "binary", False, False),
    ("extra_trees_regressor", _sk("extra_trees_regressor"), "regression", False, False),
    ("gradient_boosting_classifier", _sk("gradient_boosting_classifier"), "binary", False, False),
    ("gradient_boosting_multiclass", _sk("gradient_boosting_multiclass"), "multiclass", False, 0),
    ("gradient_boosting_regressor", _sk("gradient_boosting_regressor"), "regression", False, 0),
    ("logistic_regression", _sk("logistic_regression"), "binary", False, False),
    ("logistic_multiclass", _sk("logistic_multiclass"), "multiclass", False, False),
    ("linear_regression", _sk("linear_regression"), "regression", False, False),
    ("ridge", _sk("ridge"), "regression", False, False),
    ("elastic_net", _sk("elastic_net"), "regression", False, False),
    ("ridge_classifier", _sk("ridge_classifier"), "binary", False, False),
    ("sgd_classifier", _sk("sgd_classifier"), "multiclass", False, False),
    (
        "pipeline_impute_scale_logistic",
        lambda: _pipeline(_sk("logistic_regression")(), with_ct=False),
        "binary",
        True,
        False,
    ),
    (
        "pipeline_impute_scale_random_forest",
        lambda: _pipeline(_sk("random_forest_regressor")(), with_ct=False),
        "regression",
        True,
        False,
    ),
    (
        "pipeline_column_transformer_hgb",
        lambda: _pipeline(_sk("hgb_classifier")(), with_ct=True),
        "binary",
        True,
        True,
    ),
    (
        "pipeline_column_transformer_gradient_boosting",
        lambda: _pipeline(_sk("gradient_boosting_regressor")(), with_ct=True),
        "regression",
        True,
        True,
    ),
    (
        "pipeline_column_transformer_ridge",
        lambda: _pipeline(_sk("ridge")(), with_ct=True),
        "regression",
        True,
        True,
    ),
]


def _check(
    compiled: Compiled,
    model_predict: Callable[[Any], Any],
    probe: pd.DataFrame,
    kinds: dict[str, str],
) -> None:
    columns = _columns(probe, kinds)
    frame = pd.DataFrame(columns)
    expected = np.asarray(compiled.reference(frame))
    got = compiled.output(columns)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=compiled.rtol, atol=compiled.atol)
    predictions, scores = compiled.answer(got)
    labels = np.asarray(model_predict(frame))
    if labels.dtype.kind == "f":
        np.testing.assert_allclose(predictions, labels, rtol=compiled.rtol, atol=compiled.atol)
    else:
        assert np.array_equal(predictions, labels)
    if scores is not None:
        assert scores.shape == (len(probe),) and scores.dtype == np.float64
    # Rows stay in their order: the first row alone gives the first answer.
    one = {name: values[:1] for name, values in columns.items()}
    np.testing.assert_allclose(
        compiled.output(one), got[:1], rtol=compiled.rtol, atol=compiled.atol
    )


@pytest.mark.parametrize(
    ("case", "factory", "target", "nan", "mixed"),
    SKLEARN_CASES,
    ids=[c[0] for c in SKLEARN_CASES],
)
def test_compiled_sklearn_models_answer_like_the_model(
    case: str, factory: Callable[[], Any], target: str, nan: bool, mixed: bool
) -> None:
    kinds = MIXED_KINDS if mixed else KINDS
    train = _frame(600, seed=0, nan=nan, mixed=mixed)
    model = factory().fit(train, _target(train, target))
    compiled = compile_model(model, kinds)
    probe = _probe(300, seed=1, nan=nan, mixed=mixed, unseen=True)
    _check(compiled, model.predict, probe, kinds)


def _xgboost_cases() -> list[tuple[str, Callable[[], Any], str]]:
    import xgboost as xgb

    common = {"n_estimators": 40, "max_depth": 4, "n_jobs": 1, "random_state": 0}
    return [
        ("xgb_classifier", lambda: xgb.XGBClassifier(**common), "binary"),
        ("xgb_multiclass", lambda: xgb.XGBClassifier(**common), "multiclass"),
        ("xgb_regressor", lambda: xgb.XGBRegressor(**common), "regression"),
    ]


def _lightgbm_cases() -> list[tuple[str, Callable[[], Any], str]]:
    import lightgbm as lgb

    common = {"n_estimators": 40, "num_leaves": 15, "n_jobs": 1, "verbose": -1}
    return [
        ("lgbm_classifier", lambda: lgb.LGBMClassifier(**common), "binary"),
        ("lgbm_multiclass", lambda: lgb.LGBMClassifier(**common), "multiclass"),
        ("lgbm_regressor", lambda: lgb.LGBMRegressor(**common), "regression"),
    ]


BOOSTING_CASES = _xgboost_cases() + _lightgbm_cases()


@pytest.mark.parametrize(
    ("case", "factory", "target"), BOOSTING_CASES, ids=[c[0] for c in BOOSTING_CASES]
)
def test_compiled_xgboost_and_lightgbm_models_answer_like_the_model(
    case: str, factory: Callable[[], Any], target: str
) -> None:
    train = _frame(600, seed=0, nan=True)
    model = factory().fit(train, _target(train, target))
    compiled = compile_model(model, KINDS)
    for n in (1, 7, 300):  # both of XGBoost's kernels (small batches and large)
        probe = _probe(n, seed=n, nan=True, mixed=False, unseen=False)
        _check(compiled, model.predict, probe, KINDS)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm"])
def test_compiled_native_boosters_answer_like_mlflow_pyfunc(library: str) -> None:
    train = _frame(600, seed=0, nan=True)
    y = _target(train, "binary")
    if library == "xgboost":
        import xgboost as xgb

        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
            xgb.DMatrix(train, label=y),
            num_boost_round=30,
        )

        def predict(frame: Any) -> Any:
            return booster.predict(xgb.DMatrix(frame))
    else:
        import lightgbm as lgb

        booster = lgb.train(
            {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1},
            lgb.Dataset(train, label=y),
            num_boost_round=30,
        )
        predict = booster.predict
    compiled = compile_model(booster, KINDS)
    _check(compiled, predict, _probe(200, seed=3, nan=True, mixed=False, unseen=False), KINDS)


# -- what the compiler refuses, and inputs it hands back to the model ------------------------


def test_missing_values_go_to_a_model_that_rejects_them() -> None:
    from sklearn.linear_model import LogisticRegression

    train = _frame(200, seed=0)
    model = LogisticRegression(max_iter=500).fit(train, _target(train, "binary"))
    compiled = compile_model(model, KINDS)
    columns = _columns(_probe(3, seed=2, nan=True, mixed=False, unseen=False), KINDS)
    columns["x0"][0] = np.nan
    with pytest.raises(NeedsPipeline):  # the model raises its own error for this
        compiled.output(columns)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda m: m, "non-numeric column(s) ['plan']"),
        (lambda m: "not a model", "builtins.str"),
    ],
)
def test_unsupported_models_say_why(build: Callable[[Any], Any], reason: str) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    train = _frame(200, seed=0, mixed=True)
    model = HistGradientBoostingClassifier(max_iter=5).fit(
        train[[*NUMERIC, "plan"]].assign(plan=train["plan"].astype("category")),
        _target(train, "binary"),
    )
    kinds = {**KINDS, "plan": "str"}
    with pytest.raises(Unsupported, match=re.escape(reason)):
        compile_model(build(model), kinds)


def test_a_signature_that_does_not_match_the_model_is_unsupported() -> None:
    from sklearn.linear_model import LinearRegression

    train = _frame(100, seed=0)
    model = LinearRegression().fit(train.to_numpy(), _target(train, "regression"))
    with pytest.raises(Unsupported, match="takes 8 features, the signature has 3"):
        compile_model(model, {"a": "float", "b": "float", "c": "float"})


# -- through ServedModel: MLflow flavors, the load-time check and its fallbacks ----------------


def _save(flavor: str, model: Any, path: Path, train: pd.DataFrame) -> Path:
    import importlib

    from mlflow.models import infer_signature

    module = importlib.import_module(f"mlflow.{flavor}")
    kwargs: dict[str, Any] = {}
    if flavor == "pyfunc":
        kwargs["python_model"] = model
    elif flavor == "sklearn":
        kwargs.update(sk_model=model, serialization_format="cloudpickle")
    else:
        kwargs[{"xgboost": "xgb_model", "lightgbm": "lgb_model"}[flavor]] = model
    module.save_model(
        path=str(path),
        signature=infer_signature(train, np.zeros(len(train))),
        input_example=train.head(5),
        **kwargs,
    )
    return path


def _served(path: Path) -> Any:
    from mlops_platform.model_server.model import ServedModel, resolve

    served = ServedModel(resolve(str(path)))
    served.warm_up()
    return served


def _pyfunc_predictions(path: Path, frame: pd.DataFrame) -> list[Any]:
    import mlflow.pyfunc

    return np.asarray(mlflow.pyfunc.load_model(str(path)).predict(frame)).tolist()


def _flavor_models() -> list[tuple[str, str, Callable[[], Any]]]:
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor

    return [
        ("sklearn", "HistGradientBoostingClassifier", lambda: HistGradientBoostingClassifier()),
        ("sklearn", "RandomForestRegressor", lambda: RandomForestRegressor(20, random_state=0)),
        ("xgboost", "XGBClassifier", lambda: xgb.XGBClassifier(n_estimators=30, n_jobs=1)),
        ("lightgbm", "LGBMClassifier", lambda: lgb.LGBMClassifier(n_estimators=30, verbose=-1)),
    ]


FLAVOR_MODELS = _flavor_models()


@pytest.mark.parametrize(
    ("flavor", "kind", "factory"), FLAVOR_MODELS, ids=[f"{f}-{k}" for f, k, _ in FLAVOR_MODELS]
)
def test_served_models_of_each_flavor_take_the_compiled_path(
    flavor: str, kind: str, factory: Callable[[], Any], tmp_path: Path
) -> None:
    from mlops_platform.model_server.schema import to_arrays

    train = _frame(500, seed=0, nan=True)
    target = "regression" if "Regressor" in kind else "binary"
    model = factory().fit(train, _target(train, target))
    path = _save(flavor, model, tmp_path / "model", train)
    served = _served(path)
    assert served.fast_path, served.fast_path_description
    assert kind in served.fast_path_description
    probe = _probe(50, seed=4, nan=True, mixed=False, unseen=False)
    rows = served.schema.validate({c: probe[c].tolist() for c in probe}, len(probe))
    predictions, scores = served.predict(to_arrays(served.schema, [rows]))
    expected = _pyfunc_predictions(path, probe)
    assert np.allclose(predictions, expected, rtol=1e-6, atol=1e-6)
    assert scores is not None and scores.shape == (50,)
    if target == "binary":  # the score is the positive-class probability, not the label
        assert np.allclose(scores, model.predict_proba(probe)[:, 1], rtol=1e-6, atol=1e-6)


def test_a_custom_pyfunc_model_skips_per_call_signature_enforcement(tmp_path: Path) -> None:
    import mlflow.pyfunc

    from mlops_platform.model_server.schema import to_arrays

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return (model_input["x0"] * 2 + model_input["x7"]).to_numpy()

    train = _frame(50, seed=0)
    path = _save("pyfunc", Doubler(), tmp_path / "model", train)
    served = _served(path)
    assert not served.fast_path
    assert "without per-call signature enforcement" in served.fast_path_description
    rows = served.schema.validate({c: train[c].tolist() for c in train}, len(train))
    predictions, _ = served.predict(to_arrays(served.schema, [rows]))
    assert predictions == _pyfunc_predictions(path, train)


def test_a_compiled_path_that_answers_differently_is_dropped_with_the_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.linear_model import LogisticRegression

    from mlops_platform.model_server import fastpath

    original = fastpath._linear

    def off_by_a_little(model: Any) -> Any:
        kernel, method = original(model)
        return (lambda x: kernel(x) + 1e-6), method

    monkeypatch.setattr(fastpath, "_linear", off_by_a_little)
    train = _frame(200, seed=0)
    model = LogisticRegression(max_iter=500).fit(train, _target(train, "binary"))
    path = _save("sklearn", model, tmp_path / "model", train)
    with caplog.at_level(logging.WARNING):
        served = _served(path)
    assert not served.fast_path
    assert "its outputs differ from the model's predict_proba" in caplog.text
    assert "load-time check failed" in served.fast_path_description


def test_a_pyfunc_model_with_a_datetime_column_keeps_signature_enforcement(
    tmp_path: Path,
) -> None:
    import mlflow.pyfunc

    from mlops_platform.model_server.model import _direct_pyfunc
    from mlops_platform.model_server.schema import Column, InputSchema

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return model_input["x0"].to_numpy()

    pyfunc = mlflow.pyfunc.load_model(str(_save("pyfunc", Echo(), tmp_path / "m", _frame(20, 0))))
    numbers = InputSchema((Column("x0", "float", "double"),))
    dates = InputSchema((Column("x0", "float", "double"), Column("when", "str", "datetime")))
    assert _direct_pyfunc(pyfunc, numbers) is not None
    assert _direct_pyfunc(pyfunc, dates) is None  # MLflow converts these; the server does not
