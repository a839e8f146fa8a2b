"""Numpy execution of fitted models, for low-latency serving without pandas or per-call checks.

Why this exists: on a small batch, a fitted model's `predict`/`predict_proba` spends almost all
of its time in per-call input validation, pandas indexing and (for sklearn's forests) thread
pools, not in the model: a `Pipeline(ColumnTransformer, HistGradientBoosting)` costs ~10 ms per
call on this project's 2-core machine whatever the batch size, a bare HistGradientBoosting
~0.9 ms. Here the same fitted parameters (encoder categories, scaler statistics, imputer fills,
coefficients, the trees themselves) are applied to plain numpy arrays instead.

What compiles (`compile_model`), each from named column arrays:
- scikit-learn: a bare estimator or a `Pipeline` of any length, with or without a leading
  `ColumnTransformer` (OrdinalEncoder, OneHotEncoder, StandardScaler, MinMaxScaler,
  SimpleImputer, identity FunctionTransformer, passthrough, nested pipelines) and a final
  HistGradientBoosting / GradientBoosting / RandomForest / ExtraTrees (trees in Treelite's
  GTIL), a linear model (`X @ coef.T + intercept` and sklearn's own link) or, when it was
  fitted on plain arrays, any other estimator called on numpy without validation;
- XGBoost (`XGBClassifier`, `XGBRegressor`, `Booster`): Treelite's GTIL for small batches,
  XGBoost's `inplace_predict` for large ones (crossover measured at load);
- LightGBM (`LGBMClassifier`, `LGBMRegressor`, `Booster`): its own `Booster.predict` on a
  float64 matrix with one thread (faster than GTIL at every batch size, measured).

Nothing is re-fitted or approximated, and it is only used when it gives the same answers:
`compile_model` raises `Unsupported` (with the reason) for anything it does not know, and
`ServedModel` checks the compiled outputs against the real model on the model's input example,
on edge cases and on random rows at load time, keeping the real model if they differ by more
than the tolerance (1e-9; 1e-6 for XGBoost, which computes in float32). Inputs the model would
reject (an unknown category with `handle_unknown="error"`, a missing value for a model that
takes none) raise `NeedsPipeline`, so the caller runs the real model and returns its own error.

Alternatives considered: skl2onnx + onnxruntime evaluates trees in float32 (answers change) and
adds a large runtime; hummingbird needs PyTorch.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Columns = Mapping[str, np.ndarray]
Block = Callable[[np.ndarray], np.ndarray]  # 2-D in -> 2-D float64 out


class Unsupported(Exception):
    """A step the fast path does not implement; the plain pipeline is used instead."""


class NeedsPipeline(Exception):
    """This input needs the real pipeline (e.g. so that it raises sklearn's own error)."""


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# -- categorical encoders ---------------------------------------------------------------------


def _category_lookup(categories: np.ndarray) -> tuple[dict[Any, int], int | None]:
    lookup: dict[Any, int] = {}
    missing_index = None
    for i, category in enumerate(categories.tolist()):
        if _is_missing(category):
            missing_index = i
        else:
            lookup[category] = i
    return lookup, missing_index


def _ordinal(encoder: Any) -> Block:
    if getattr(encoder, "_infrequent_enabled", False):
        raise Unsupported("OrdinalEncoder with infrequent categories")
    if encoder.handle_unknown not in ("error", "use_encoded_value"):
        raise Unsupported(f"OrdinalEncoder handle_unknown={encoder.handle_unknown}")
    lookups = [_category_lookup(c) for c in encoder.categories_]
    missing_encoded = dict(getattr(encoder, "_missing_indices", {}) or {})
    unknown_value = encoder.unknown_value if encoder.handle_unknown == "use_encoded_value" else None
    encoded_missing = encoder.encoded_missing_value
    dtype = np.dtype(encoder.dtype)

    def run(x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape, dtype=dtype)
        for j, (lookup, missing_index) in enumerate(lookups):
            column = x[:, j]
            target = out[:, j]
            for i, value in enumerate(column.tolist()):
                if _is_missing(value):
                    if missing_index is None:
                        if unknown_value is None:
                            raise NeedsPipeline
                        target[i] = unknown_value
                    elif j in missing_encoded:
                        target[i] = encoded_missing
                    else:
                        target[i] = missing_index
                    continue
                code = lookup.get(value)
                if code is None:
                    if unknown_value is None:
                        raise NeedsPipeline
                    target[i] = unknown_value
                else:
                    target[i] = code
        return out

    return run


def _one_hot(encoder: Any) -> Block:
    if getattr(encoder, "_infrequent_enabled", False) or encoder.drop is not None:
        raise Unsupported("OneHotEncoder with drop or infrequent categories")
    if encoder.handle_unknown not in ("error", "ignore"):
        raise Unsupported(f"OneHotEncoder handle_unknown={encoder.handle_unknown}")
    lookups = [_category_lookup(c) for c in encoder.categories_]
    offsets = np.cumsum([0] + [len(c) for c in encoder.categories_])
    ignore = encoder.handle_unknown == "ignore"
    dtype = np.dtype(encoder.dtype)

    def run(x: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], offsets[-1]), dtype=dtype)
        for j, (lookup, missing_index) in enumerate(lookups):
            for i, value in enumerate(x[:, j].tolist()):
                code = missing_index if _is_missing(value) else lookup.get(value)
                if code is None:
                    if ignore:
                        continue
                    raise NeedsPipeline
                out[i, offsets[j] + code] = 1
        return out

    return run


# -- numeric transformers ---------------------------------------------------------------------


def _scaler(scaler: Any) -> Block:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def run(x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=np.float64)
        if mean is not None:
            out -= mean
        if scale is not None:
            out /= scale
        return out

    return run


def _min_max(scaler: Any) -> Block:
    scale, offset, clip = scaler.scale_, scaler.min_, scaler.clip
    low, high = scaler.feature_range

    def run(x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=np.float64)
        out *= scale
        out += offset
        if clip:
            np.clip(out, low, high, out=out)
        return out

    return run


def _imputer(imputer: Any) -> Block:
    if imputer.add_indicator or not (
        isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)
    ):
        raise Unsupported("SimpleImputer with an indicator or a non-NaN missing marker")
    fill = np.asarray(imputer.statistics_, dtype=np.float64)
    if np.isnan(fill).any():
        raise Unsupported("SimpleImputer dropping all-missing features")

    def run(x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=np.float64)
        mask = np.isnan(out)
        if mask.any():
            out[mask] = np.broadcast_to(fill, out.shape)[mask]
        return out

    return run


def _as_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _transformer(step: Any) -> Block:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        StandardScaler,
    )
    from sklearn.utils.validation import check_array

    if isinstance(step, str) and step == "passthrough":
        return _as_float
    if step is None:
        return _as_float
    if type(step) is OrdinalEncoder:
        return _ordinal(step)
    if type(step) is OneHotEncoder:
        return _one_hot(step)
    if type(step) is StandardScaler:
        return _scaler(step)
    if type(step) is SimpleImputer:
        return _imputer(step)
    if type(step) is MinMaxScaler:
        return _min_max(step)
    if type(step) is FunctionTransformer:
        func = step.func
        if func is None or (isinstance(func, functools.partial) and func.func is check_array):
            return _as_float
        raise Unsupported(f"FunctionTransformer({func!r})")
    if type(step) is Pipeline:
        blocks = [_transformer(s) for _, s in step.steps]

        def run(x: np.ndarray) -> np.ndarray:
            for block in blocks:
                x = block(x)
            return x

        return run
    raise Unsupported(type(step).__name__)


# -- column transformer -----------------------------------------------------------------------


def _column_transformer(ct: Any, named: bool) -> Callable[[Any], np.ndarray]:
    """Named input: a mapping of column arrays; positional input: a 2-D array."""
    names = list(getattr(ct, "feature_names_in_", []))
    n_in = ct.n_features_in_
    parts: list[tuple[list[Any], Block]] = []
    for _name, trans, columns in ct.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        selected = _resolve_columns(columns, names, n_in, named)
        if not selected:
            continue
        parts.append((selected, _transformer(trans)))

    def run(x: Any) -> np.ndarray:
        blocks = []
        for selected, block in parts:
            if named:
                first = x[selected[0]]
                if len(selected) == 1:
                    sub = first.reshape(-1, 1)
                else:
                    sub = np.empty((len(first), len(selected)), dtype=_common_dtype(x, selected))
                    for j, col in enumerate(selected):
                        sub[:, j] = x[col]
            else:
                sub = x[:, selected]
            blocks.append(block(sub))
        return np.hstack(blocks) if len(blocks) > 1 else blocks[0]

    return run


def _common_dtype(x: Columns, selected: list[str]) -> Any:
    kinds = {x[c].dtype.kind for c in selected}
    return np.float64 if kinds <= set("fiub") else object


def _resolve_columns(columns: Any, names: list[str], n_in: int, named: bool) -> list[Any]:
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(columns, slice):
        columns = list(range(n_in))[columns]
    array = np.asarray(columns)
    if array.dtype == bool:
        array = np.flatnonzero(array)
    values = array.tolist()
    if not values:
        return []
    if isinstance(values[0], str):
        if not named:
            raise Unsupported("named columns on positional input")
        return values
    if named:
        if not names:
            raise Unsupported("positional columns without feature names")
        return [names[i] for i in values]
    return values


# -- what a compiled model is --------------------------------------------------------------

Output = Callable[[Columns], np.ndarray]
Answer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Compiled:
    """A model compiled to numpy: `output(columns)` reproduces `reference(frame)` (the real
    model's own `predict_proba`, `predict` or `decision_function`), and `answer(output)` turns
    it into what the model's pyfunc `predict` returns plus the score the server reports (the
    positive-class probability of a binary classifier, a regressor's value, else None)."""

    description: str
    output: Output
    reference: Callable[[Any], np.ndarray]
    answer: Answer
    # The load-time check's tolerance: float64 models reproduce sklearn up to summation order;
    # XGBoost computes in float32.
    atol: float = 1e-9
    rtol: float = 0.0


def _numeric_scores(values: np.ndarray) -> np.ndarray | None:
    return values.astype(np.float64) if values.ndim == 1 and values.dtype.kind in "fiub" else None


def _proba_answer(classes: np.ndarray, predict_fn: str) -> Answer:
    """Labels (or the probabilities themselves, for models saved with
    `pyfunc_predict_fn="predict_proba"`) from a `predict_proba` matrix, the way sklearn
    classifiers' own `predict` picks them: the first class with the highest probability."""

    def answer(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        scores = np.ascontiguousarray(proba[:, 1]) if proba.shape[1] == 2 else None
        if predict_fn == "predict_proba":
            return proba, scores
        if scores is not None:  # one comparison instead of an argmax: ties go to class 0 too
            labels = classes[(scores > proba[:, 0]).astype(np.intp)]
        else:
            labels = classes[np.argmax(proba, axis=1)]
        return labels, scores if scores is not None else _numeric_scores(labels)

    return answer


def _value_answer(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    return values, _numeric_scores(values)


# -- input: named columns -> one float64 matrix ---------------------------------------------


def _matrix(order: list[str]) -> Callable[[Columns], np.ndarray]:
    width = len(order)

    def run(columns: Columns) -> np.ndarray:
        out = np.empty((len(columns[order[0]]), width), dtype=np.float64)
        for j, name in enumerate(order):
            out[:, j] = columns[name]
        return out

    return run


def _input_order(names: Any, n_features: int, kinds: Mapping[str, str], model: str) -> list[str]:
    """The model's input columns, in the order it was fitted on: its own feature names when it
    kept them, else the signature's order (which is the order MLflow hands it a DataFrame in).
    Only numeric columns: a model without an encoder in front cannot take strings."""
    order = [str(n) for n in names] if names is not None and len(names) else list(kinds)
    if len(order) != n_features:
        raise Unsupported(f"{model} takes {n_features} features, the signature has {len(order)}")
    missing = [n for n in order if n not in kinds]
    if missing:
        raise Unsupported(f"{model} feature(s) {missing[:3]} not in the signature")
    text = [n for n in order if kinds[n] not in ("float", "int", "bool")]
    if text:
        raise Unsupported(f"non-numeric column(s) {text[:3]} without an encoder")
    return order


# -- scikit-learn -----------------------------------------------------------------------------


def _treelite_forest(model: Any, float32_inputs: bool, n_threads: int) -> Block:
    # sklearn's tree ensembles compare float32 copies of the inputs against float64 thresholds
    # (HistGradientBoosting compares float64): the inputs are rounded the same way here, so
    # every split goes the same way as in sklearn.
    import treelite
    from treelite.gtil.gtil import GTILConfig, _predict_impl

    try:
        forest = treelite.sklearn.import_model(model)
    except Exception as exc:  # a model Treelite cannot represent: use the model itself
        raise Unsupported(f"treelite cannot import {type(model).__name__}: {exc}") from exc
    # `gtil.predict` parses a new JSON config on every call (5% of a single-row request); the
    # parsed config is built once here (treelite is pinned).
    config = GTILConfig(predict_type="raw", nthread=n_threads)

    def run(x: np.ndarray) -> np.ndarray:
        if float32_inputs:
            x = x.astype(np.float32).astype(np.float64)
        raw = _predict_impl(forest, np.ascontiguousarray(x, dtype=np.float64), config=config)
        return raw.reshape(x.shape[0], -1)

    return run


def _hist_gradient_boosting(model: Any, n_threads: int) -> Block:
    # The trees run in Treelite's GTIL (a C++ tree evaluator): sklearn's own predictor costs
    # one Python-level call, five memoryviews and an OpenMP region per tree, about 3 us each,
    # which for a 48-tree model was most of a single-row request. GTIL walks every tree in one
    # call. Its raw margins go through sklearn's own loss, so the outputs are computed
    # exactly as `predict_proba` / `predict` do; ServedModel verifies them against the model.
    from sklearn.base import is_classifier

    preprocess = (
        _column_transformer(model._preprocessor, named=False)
        if model._preprocessor is not None
        else _as_float
    )
    forest = _treelite_forest(model, float32_inputs=False, n_threads=n_threads)
    loss = model._loss
    classifier = is_classifier(model)

    def run(x: np.ndarray) -> np.ndarray:
        raw = forest(preprocess(x))
        if classifier:
            return loss.predict_proba(raw if raw.shape[1] > 1 else raw.ravel())
        return loss.link.inverse(raw.ravel())

    return run


def _gradient_boosting(model: Any, n_threads: int) -> Block:
    from sklearn.base import is_classifier

    forest = _treelite_forest(model, float32_inputs=True, n_threads=n_threads)
    loss = model._loss
    classifier = is_classifier(model)

    def run(x: np.ndarray) -> np.ndarray:
        raw = forest(x)
        if classifier:
            return loss.predict_proba(raw if raw.shape[1] > 1 else raw.ravel())
        return raw.ravel()

    return run


def _forest(model: Any, n_threads: int) -> Block:
    from sklearn.base import is_classifier

    if getattr(model, "n_outputs_", 1) != 1:
        raise Unsupported("multi-output forest")
    forest = _treelite_forest(model, float32_inputs=True, n_threads=n_threads)
    if is_classifier(model):
        return forest  # Treelite averages the trees' class-probability leaves, as sklearn does

    def run(x: np.ndarray) -> np.ndarray:
        return forest(x).ravel()

    return run


def _linear(model: Any) -> tuple[Block, str]:
    """`X @ coef.T + intercept`, then sklearn's own link: the same arithmetic as
    `decision_function`/`predict`/`predict_proba`, without their per-call validation."""
    from scipy.special import expit
    from sklearn.base import is_classifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils.extmath import softmax

    coef_t = np.ascontiguousarray(np.asarray(model.coef_, dtype=np.float64).T)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if not is_classifier(model):

        def predict(x: np.ndarray) -> np.ndarray:
            return x @ coef_t + intercept

        return predict, "predict"
    binary = coef_t.ndim == 1 or coef_t.shape[1] == 1

    def decision(x: np.ndarray) -> np.ndarray:
        scores = x @ coef_t + intercept
        return scores.ravel() if binary else scores

    if type(model) is not LogisticRegression:
        return decision, "decision_function"

    def predict_proba(x: np.ndarray) -> np.ndarray:
        if binary:
            p = expit(decision(x))
            return np.stack([1 - p, p], axis=1)
        return softmax(decision(x), copy=False)

    return predict_proba, "predict_proba"


def _decision_answer(classes: np.ndarray) -> Answer:
    def answer(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        index = (scores > 0).astype(np.intp) if scores.ndim == 1 else np.argmax(scores, axis=1)
        labels = classes[index]
        return labels, _numeric_scores(labels)

    return answer


_LINEAR = frozenset(
    {
        "LinearRegression", "Ridge", "RidgeCV", "Lasso", "LassoCV", "ElasticNet", "ElasticNetCV",
        "SGDRegressor", "HuberRegressor", "BayesianRidge", "ARDRegression", "LogisticRegression",
        "LogisticRegressionCV", "RidgeClassifier", "RidgeClassifierCV", "SGDClassifier",
        "LinearSVC", "LinearSVR", "Perceptron", "PassiveAggressiveClassifier",
    }
)  # fmt: skip
_FORESTS = frozenset(
    {
        "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    }
)  # fmt: skip


def _final(estimator: Any, n_threads: int) -> tuple[Block, str, str]:
    """(kernel, the estimator method it reproduces, how it is computed) for a final step."""
    from sklearn.base import is_classifier

    name = type(estimator).__name__
    module = type(estimator).__module__
    if not module.startswith("sklearn."):
        raise Unsupported(f"{module}.{name} is not a scikit-learn estimator")
    if name in ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"):
        kernel = _hist_gradient_boosting(estimator, n_threads)
        method = "predict_proba" if is_classifier(estimator) else "predict"
        return kernel, method, "treelite"
    if name in ("GradientBoostingClassifier", "GradientBoostingRegressor"):
        kernel = _gradient_boosting(estimator, n_threads)
        method = "predict_proba" if is_classifier(estimator) else "predict"
        return kernel, method, "treelite"
    if name in _FORESTS:
        kernel = _forest(estimator, n_threads)
        method = "predict_proba" if is_classifier(estimator) else "predict"
        return kernel, method, "treelite"
    if name in _LINEAR and module.startswith(("sklearn.linear_model", "sklearn.svm")):
        kernel, method = _linear(estimator)
        return kernel, method, "numpy"
    if hasattr(estimator, "feature_names_in_"):
        raise Unsupported(f"{name} fitted on a DataFrame (it needs one)")
    method = "predict_proba" if is_classifier(estimator) else "predict"
    if not hasattr(estimator, method):
        raise Unsupported(f"{name} without {method}")
    bound = getattr(estimator, method)

    def run(x: np.ndarray) -> np.ndarray:
        import sklearn

        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return np.asarray(bound(x))

    return run, method, "sklearn on numpy"


def _allows_nan(estimator: Any) -> bool:
    try:
        return bool(estimator.__sklearn_tags__().input_tags.allow_nan)
    except AttributeError:
        return False


def _sklearn(model: Any, kinds: Mapping[str, str], predict_fn: str, n_threads: int) -> Compiled:
    from sklearn.base import is_classifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if predict_fn not in ("predict", "predict_proba"):
        raise Unsupported(f"pyfunc predict_fn {predict_fn!r}")
    pipeline = type(model) is Pipeline
    if type(model).__module__.startswith("sklearn.pipeline") and not pipeline:
        raise Unsupported(type(model).__name__)
    steps = [s for _, s in model.steps] if pipeline else [model]
    *transforms, final = steps
    if final is None or isinstance(final, str):
        raise Unsupported("pipeline without a final estimator")
    if transforms and type(transforms[0]) is ColumnTransformer:
        head: Callable[[Columns], np.ndarray] = _column_transformer(transforms[0], named=True)
        transforms = transforms[1:]
        shape = ["ColumnTransformer"]
    else:
        order = _input_order(
            getattr(model, "feature_names_in_", None), model.n_features_in_, kinds, "the model"
        )
        head = _matrix(order)
        shape = []
    blocks = [_transformer(step) for step in transforms]
    kernel, method, how = _final(final, n_threads)
    if predict_fn == "predict_proba" and method != "predict_proba":
        raise Unsupported(f"predict_proba of {type(final).__name__}")
    nan_ok = _allows_nan(final)

    def output(columns: Columns) -> np.ndarray:
        x = head(columns)
        for block in blocks:
            x = block(x)
        if not nan_ok and np.isnan(x).any():
            raise NeedsPipeline  # the model rejects missing values: let it say so
        return kernel(x)

    if method == "predict_proba":
        answer = _proba_answer(np.asarray(model.classes_), predict_fn)
    elif method == "decision_function":
        answer = _decision_answer(np.asarray(model.classes_))
    else:
        answer = _value_answer
    if is_classifier(model) and not hasattr(model, "classes_"):
        raise Unsupported("classifier without classes_")
    shape += [type(s).__name__ for s in transforms] + [type(final).__name__]
    description = (f"Pipeline({', '.join(shape)})" if pipeline else shape[-1]) + f" via {how}"
    return Compiled(description, output, getattr(model, method), answer)


# -- XGBoost ----------------------------------------------------------------------------------


def _fastest_below(small: Block, large: Block, width: int, dtype: Any) -> int:
    """The largest batch size (1, 4, 16, 64 or 256 rows) at which `small` beats `large`,
    measured now, on this machine and this model (0: never)."""
    import time

    rng = np.random.default_rng(0)
    best = 0
    for n in (1, 4, 16, 64, 256):
        x = rng.normal(size=(n, width)).astype(dtype)
        timings = []
        for fn in (small, large):
            fn(x)
            elapsed = []
            for _ in range(5):
                start = time.perf_counter()
                fn(x)
                elapsed.append(time.perf_counter() - start)
            timings.append(min(elapsed))
        if timings[0] >= timings[1]:
            break
        best = n
    return best


def _xgboost(model: Any, kinds: Mapping[str, str], n_threads: int) -> Compiled:
    """XGBoost's own `inplace_predict` (no DMatrix, no DataFrame) for batches, Treelite's GTIL
    for small ones: `inplace_predict` costs ~200 us per call whatever the batch, GTIL ~50 us
    for one row of a 100-tree model but more per row; the crossover is measured at load."""
    import treelite
    import xgboost as xgb
    from treelite.gtil.gtil import GTILConfig, _predict_impl

    sklearn_api = isinstance(model, xgb.XGBModel)
    booster = model.get_booster() if sklearn_api else model
    if not isinstance(booster, xgb.Booster):
        raise Unsupported(f"xgboost model of type {type(model).__name__}")
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    if sklearn_api:
        best = getattr(model, "best_iteration", None) if _early_stopped(model) else None
        if best is not None:
            booster = booster[: best + 1]  # what XGBModel.predict evaluates
    if any(t == "c" for t in (booster.feature_types or [])):
        raise Unsupported("xgboost model with categorical features")
    order = _input_order(booster.feature_names, booster.num_features(), kinds, "the booster")
    head = _matrix(order)
    booster.set_param({"nthread": n_threads})
    try:
        forest = treelite.frontend.from_xgboost(booster)
    except Exception as exc:
        raise Unsupported(f"treelite cannot import the booster: {exc}") from exc
    gtil_config = GTILConfig(predict_type="default", nthread=n_threads)

    def native(x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.inplace_predict(x, validate_features=False))

    def gtil(x: np.ndarray) -> np.ndarray:
        out = _predict_impl(forest, np.ascontiguousarray(x, dtype=np.float32), config=gtil_config)
        return out.reshape(x.shape[0], -1)

    probe = np.random.default_rng(1).normal(size=(64, len(order)))
    same = np.allclose(gtil(probe).reshape(native(probe).shape), native(probe), atol=1e-6)
    threshold = _fastest_below(gtil, native, len(order), np.float32) if same else 0

    def values(x: np.ndarray) -> np.ndarray:
        if x.shape[0] <= threshold:
            out = gtil(x)
            return out.ravel() if out.shape[1] == 1 else out
        return native(x)

    how = f"treelite up to {threshold} rows, then xgboost inplace_predict"
    if sklearn_api and isinstance(model, xgb.XGBClassifier):
        if objective not in ("binary:logistic", "multi:softprob"):
            raise Unsupported(f"XGBClassifier with objective {objective}")

        def output(columns: Columns) -> np.ndarray:
            p = values(head(columns))
            return np.stack([1 - p, p], axis=1) if p.ndim == 1 else p

        def answer(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
            # XGBClassifier.predict: the positive class above 0.5, else the highest one.
            if proba.shape[1] == 2:
                return (proba[:, 1] > 0.5).astype(np.int64), np.asarray(proba[:, 1], np.float64)
            labels = np.argmax(proba, axis=1)
            return labels, labels.astype(np.float64)

        return Compiled(
            f"XGBClassifier via {how}", output, model.predict_proba, answer, atol=1e-6, rtol=1e-6
        )

    def predict(columns: Columns) -> np.ndarray:
        return values(head(columns))

    def reference(frame: Any) -> np.ndarray:
        if sklearn_api:
            return model.predict(frame)
        return model.predict(xgb.DMatrix(frame))  # what mlflow's xgboost pyfunc does

    return Compiled(
        f"{type(model).__name__} via {how}", predict, reference, _value_answer, 1e-6, 1e-6
    )


def _early_stopped(model: Any) -> bool:
    try:
        model.best_iteration  # noqa: B018 - raises AttributeError when not early-stopped
    except AttributeError:
        return False
    return True


# -- LightGBM ---------------------------------------------------------------------------------


def _lightgbm(model: Any, kinds: Mapping[str, str], n_threads: int) -> Compiled:
    """LightGBM's own `Booster.predict` on a float64 matrix, one thread: measured faster than
    Treelite's GTIL at every batch size (33 us vs 44 us for one row of a 100-tree model)."""
    import lightgbm as lgb

    sklearn_api = isinstance(model, lgb.LGBMModel)
    booster = model.booster_ if sklearn_api else model
    if not isinstance(booster, lgb.Booster):
        raise Unsupported(f"lightgbm model of type {type(model).__name__}")
    if booster.pandas_categorical:
        raise Unsupported("lightgbm model with pandas categorical features")
    # LightGBM reads a DataFrame's columns by position (its feature names are sanitised
    # copies): the signature's order is the order it was trained on.
    order = _input_order(None, booster.num_feature(), kinds, "the booster")
    head = _matrix(order)
    iteration = getattr(model, "_best_iteration", None) if sklearn_api else None

    def values(columns: Columns) -> np.ndarray:
        # typed as a union over modes; an ndarray without pred_contrib
        return booster.predict(head(columns), num_iteration=iteration, num_threads=n_threads)  # type: ignore[return-value]

    if sklearn_api and isinstance(model, lgb.LGBMClassifier):
        classes = np.asarray(model.classes_)

        def output(columns: Columns) -> np.ndarray:
            p = values(columns)
            return np.stack([1 - p, p], axis=1) if p.ndim == 1 else p

        return Compiled(
            "LGBMClassifier via lightgbm Booster.predict",
            output,
            model.predict_proba,  # type: ignore[arg-type]  # an ndarray without pred_contrib
            _proba_answer(classes, "predict"),
        )
    return Compiled(
        f"{type(model).__name__} via lightgbm Booster.predict",
        values,
        model.predict,
        _value_answer,
    )


# -- entry points -----------------------------------------------------------------------------


def compile_model(
    model: Any, kinds: Mapping[str, str], predict_fn: str = "predict", n_threads: int = 1
) -> Compiled:
    """Compile a fitted scikit-learn estimator or pipeline, XGBoost or LightGBM model for
    input columns named and typed as in `kinds` (column -> schema kind, in signature order).
    Raises `Unsupported` with the reason when it cannot."""
    module = type(model).__module__.split(".")[0]
    try:
        if module == "sklearn":
            return _sklearn(model, kinds, predict_fn, n_threads)
        if predict_fn != "predict":
            raise Unsupported(f"pyfunc predict_fn {predict_fn!r}")
        if module == "xgboost":
            return _xgboost(model, kinds, n_threads)
        if module == "lightgbm":
            return _lightgbm(model, kinds, n_threads)
    except Unsupported:
        raise
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        # Fitted attributes this code reads (some private to the library, which is pinned)
        # are not where it expects them, e.g. after an upgrade: use the model itself.
        raise Unsupported(f"{type(model).__name__}: {type(exc).__name__}: {exc}") from exc
    raise Unsupported(f"{type(model).__module__}.{type(model).__name__}")


def compile_predict_proba(model: Any, n_threads: int = 1) -> Callable[[Columns], np.ndarray] | None:
    """`predict_proba` over named column arrays of a `Pipeline(ColumnTransformer, ...)`, or
    None when a step is not supported (the narrower entry point this module started with)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if type(model) is not Pipeline or type(model.steps[0][1]) is not ColumnTransformer:
        return None
    try:
        compiled = _sklearn(model, {}, "predict_proba", n_threads)
    except (Unsupported, AttributeError, TypeError, ValueError, KeyError):
        return None
    return compiled.output
