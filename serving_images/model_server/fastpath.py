"""Numpy-only execution of common fitted scikit-learn pipelines, for low-latency serving.

Why this exists: on a small batch, a fitted `Pipeline(ColumnTransformer, HistGradientBoosting)`
spends almost all of its `predict_proba` time in per-call input validation and pandas
indexing (about 10 ms per call on this project's 2-core machine, whatever the batch size),
not in the model. Here the same fitted parameters (encoder categories, scaler statistics,
imputer fills, the trees themselves) are applied to plain numpy arrays instead.

Nothing is re-fitted or approximated, and it is only used when it gives the same answers:
`compile_predict_proba` returns None for any step it does not know, and `ServedModel` checks
the compiled function against the real pipeline on the model's input example (and on edge
cases) at load time, keeping the plain pipeline if they differ by more than 1e-9. Inputs the
pipeline would reject (an unknown category with `handle_unknown="error"`) raise
`NeedsPipeline`, so the caller runs the real pipeline and returns sklearn's own error.

HistGradientBoosting trees are evaluated by Treelite's GTIL instead of sklearn's per-tree
predictor (see `_hist_gradient_boosting`). Alternatives considered: skl2onnx + onnxruntime
evaluates trees in float32 (answers change) and adds a large runtime; hummingbird needs PyTorch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
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


# -- final estimators -------------------------------------------------------------------------


def _hist_gradient_boosting(model: Any, n_threads: int) -> Callable[[np.ndarray], np.ndarray]:
    # The trees run in Treelite's GTIL (a C++ tree evaluator): sklearn's own predictor costs
    # one Python-level call, five memoryviews and an OpenMP region per tree, about 3 us each,
    # which for a 48-tree model was most of a single-row request. GTIL walks every tree in one
    # call. Its raw margins go through sklearn's own loss, so the probabilities are computed
    # exactly as `predict_proba` does; ServedModel verifies them against the pipeline.
    import treelite
    from treelite.gtil.gtil import GTILConfig, _predict_impl

    preprocess = (
        _column_transformer(model._preprocessor, named=False)
        if model._preprocessor is not None
        else _as_float
    )
    try:
        forest = treelite.sklearn.import_model(model)
    except Exception as exc:  # a model Treelite cannot represent: use the pipeline
        raise Unsupported(f"treelite cannot import {type(model).__name__}: {exc}") from exc
    n_outputs = model.n_trees_per_iteration_
    loss = model._loss
    # `gtil.predict(..., pred_margin=True)` parses a new JSON config on every call (5% of a
    # single-row request); the parsed config is built once here (treelite is pinned).
    config = GTILConfig(predict_type="raw", nthread=n_threads)

    def run(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(preprocess(x), dtype=np.float64)
        raw = _predict_impl(forest, x, config=config)
        return loss.predict_proba(raw.reshape(x.shape[0], n_outputs))

    return run


def _final(estimator: Any, n_threads: int) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    if type(estimator) is HistGradientBoostingClassifier:
        return _hist_gradient_boosting(estimator, n_threads)
    if hasattr(estimator, "feature_names_in_"):
        raise Unsupported("final estimator fitted on a DataFrame")
    if not hasattr(estimator, "predict_proba"):
        raise Unsupported("final estimator without predict_proba")

    def run(x: np.ndarray) -> np.ndarray:
        import sklearn

        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return estimator.predict_proba(x)

    return run


def compile_predict_proba(model: Any, n_threads: int = 1) -> Callable[[Columns], np.ndarray] | None:
    """`predict_proba` over named column arrays, or None when a step is not supported."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if type(model) is not Pipeline or len(model.steps) < 2:
        return None
    first, *middle, (_, final) = model.steps
    if type(first[1]) is not ColumnTransformer:
        return None
    try:
        head = _column_transformer(first[1], named=True)
        blocks = [_transformer(step) for _, step in middle]
        tail = _final(final, n_threads)
    except Unsupported:
        return None
    except (AttributeError, TypeError, ValueError, KeyError):
        # Fitted attributes this code reads (some private to sklearn, which is pinned) are
        # not where it expects them, e.g. after an upgrade: use the pipeline itself.
        return None

    def predict_proba(columns: Columns) -> np.ndarray:
        x = head(columns)
        for block in blocks:
            x = block(x)
        return tail(x)

    return predict_proba
