"""Exact per-feature attributions (TreeSHAP) of tree models, through the model's preprocessing.

`TreeAttributor(model)` wraps a fitted model (a bare tree ensemble, or an sklearn Pipeline whose
last step is one and whose preprocessing starts with a ColumnTransformer) and returns, for each
row, one SHAP value per *input* column: the columns a one-hot (or any many-output) encoder makes
from one input are summed back into it, which SHAP's additivity allows. `base_value` plus the
row's attributions is the model's margin (log-odds for gradient boosting, probability for
random forests, the prediction for regressors); `verify` checks that on real rows against the
model itself, so a conversion error can never pass silently.

Used by the model server (per-request attributions, `MLOPS_SERVE_EXPLAIN`) and by the training
pipeline (global attributions in the model card, mlops_platform/pipelines/lib/explain.py).

Why a conversion for HistGradientBoosting: shap's TreeExplainer reads HGB trees itself, but
treats every split as `x <= threshold`, so the bitset (categorical) splits the churn model uses
are read as meaningless numeric splits and the values are wrong (its own additivity check only
catches it when a row happens to take a different branch). `_hgb_tree` rewrites each categorical
split as an equivalent subtree of threshold splits on the same feature, each leaf of which is a
copy of the original left or right child with its cover divided among the copies; the converted
tree computes the same function, and because the copies of a side share that side's cover,
path-dependent TreeSHAP on it gives the same expectations as on the original split. shap's C++
TreeSHAP then does the rest (a hand-written TreeSHAP would be the larger, riskier piece).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# The converted HGB trees are padded to the largest one by shap (trees x max_nodes arrays):
# refuse a model whose categorical splits would blow up past this many nodes in one tree.
MAX_TREE_NODES = 50_000
# |base + sum(attributions) - margin| allowed by `verify`, relative to max(1, |margin|).
ADDITIVITY_TOLERANCE = 1e-6


class Unsupported(Exception):
    """This model cannot be explained exactly by TreeSHAP; the message says why."""


@dataclass(frozen=True)
class Attributions:
    feature_names: tuple[str, ...]
    values: np.ndarray  # (rows, features): one SHAP value per input column
    base_value: float  # the expected margin over the training data (tree covers)
    output: str  # what base + sum(values) is: "log_odds", "probability" or "raw"

    def margin(self) -> np.ndarray:
        return self.base_value + self.values.sum(axis=1)


class TreeAttributor:
    """Built once per model (seconds for hundreds of trees); `attributions` per call."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.preprocess, self.estimator = _split_pipeline(model)
        self.feature_names, self._groups = _input_groups(self.preprocess, self.estimator)
        self.explainer, self.output, self._positive = _tree_explainer(self.estimator)
        base = np.asarray(self.explainer.expected_value, dtype=np.float64).ravel()
        self.base_value = float(base[self._positive] if base.size > 1 else base[0])

    def _model_input(self, frame: Any) -> np.ndarray:
        x = self.preprocess.transform(frame) if self.preprocess is not None else frame
        if hasattr(x, "toarray"):  # sparse output of a one-hot encoder
            x = x.toarray()
        return np.asarray(x, dtype=np.float64)

    def attributions(self, frame: Any) -> Attributions:
        """SHAP values of `frame` (the model's input: a DataFrame of the input columns)."""
        x = self._model_input(frame)
        phi = np.asarray(self.explainer.shap_values(x, check_additivity=False))
        if phi.ndim == 3:  # (rows, columns, classes) for sklearn forests: the positive class
            phi = phi[:, :, self._positive]
        return Attributions(self.feature_names, phi @ self._groups, self.base_value, self.output)

    def margin(self, frame: Any) -> np.ndarray:
        """The model's own output in the units of the attributions (for `verify`)."""
        x = self._model_input(frame)
        est = self.estimator
        if self.output == "probability":
            return est.predict_proba(x)[:, self._positive]
        if self.output == "log_odds":
            kind = type(est).__module__.split(".")[0]
            if kind == "xgboost":
                return np.asarray(est.predict(x, output_margin=True), dtype=np.float64)
            if kind == "lightgbm":
                return np.asarray(est.predict(x, raw_score=True), dtype=np.float64)
            return np.asarray(est.decision_function(x), dtype=np.float64).ravel()
        return np.asarray(est.predict(x), dtype=np.float64).ravel()

    def verify(self, frame: Any) -> float:
        """Check additivity on `frame` against the model itself; the largest error, or
        Unsupported when the attributions do not add up to the model's output."""
        got = self.attributions(frame).margin()
        want = self.margin(frame)
        error = np.abs(got - want) / np.maximum(1.0, np.abs(want))
        worst = float(error.max()) if error.size else 0.0
        if not worst <= ADDITIVITY_TOLERANCE:  # also catches NaN
            raise Unsupported(
                f"TreeSHAP values of {type(self.estimator).__name__} do not add up to its "
                f"output (relative error {worst:.3g} > {ADDITIVITY_TOLERANCE:g})"
            )
        return worst


def _split_pipeline(model: Any) -> tuple[Any, Any]:
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        if len(model.steps) == 1:
            return None, model.steps[0][1]
        return model[:-1], model.steps[-1][1]
    return None, model


def _input_groups(preprocess: Any, estimator: Any) -> tuple[tuple[str, ...], np.ndarray]:
    """Input column names and the (model columns x input columns) 0/1 matrix that sums the
    attributions of the columns an input became back into that input."""
    from sklearn.compose import ColumnTransformer

    width = getattr(estimator, "n_features_in_", None)
    if width is None:
        raise Unsupported(f"{type(estimator).__name__} does not say how many columns it takes")
    if preprocess is None:
        names = getattr(estimator, "feature_names_in_", None)
        names = (
            tuple(map(str, names)) if names is not None else tuple(f"x{i}" for i in range(width))
        )
        return names, np.eye(width)
    first = preprocess.steps[0][1]
    if not isinstance(first, ColumnTransformer):
        raise Unsupported(
            f"preprocessing starts with {type(first).__name__}, not a ColumnTransformer: "
            "its output columns cannot be traced back to input columns"
        )
    names = tuple(map(str, first.feature_names_in_))
    index = {name: i for i, name in enumerate(names)}
    groups = np.zeros((width, len(names)))
    covered = 0
    for name, transformer, columns in first.transformers_:
        span = first.output_indices_[name]
        if transformer == "drop" or span.stop == span.start:
            continue
        cols = _column_names(columns, names)
        outputs = range(span.start, span.stop)
        if len(cols) == 1 or len(outputs) == len(cols):
            owners = [index[cols[0]]] * len(outputs) if len(cols) == 1 else [index[c] for c in cols]
        else:  # e.g. one OneHotEncoder over several columns: "<column>_<category>"
            out_names = transformer.get_feature_names_out(cols)
            owners = [index[_owner(str(out), cols, name)] for out in out_names]
        for column, owner in zip(outputs, owners, strict=True):
            if column >= width:
                raise Unsupported("the preprocessing makes more columns than the model takes")
            groups[column, owner] = 1.0
        covered = max(covered, span.stop)
    if covered != width:
        raise Unsupported(
            f"the ColumnTransformer makes {covered} columns but the model takes {width}: "
            "later preprocessing steps change the columns"
        )
    return names, groups


def _column_names(columns: Any, names: tuple[str, ...]) -> list[str]:
    if isinstance(columns, str):
        return [columns]
    values = list(np.asarray(columns).ravel()) if not isinstance(columns, slice) else None
    if values is None:
        return list(names[columns])
    if values and isinstance(values[0], (bool, np.bool_)):
        return [n for n, keep in zip(names, values, strict=True) if keep]
    if values and isinstance(values[0], (int, np.integer)):
        return [names[int(i)] for i in values]
    return [str(v) for v in values]


def _owner(output: str, columns: list[str], transformer: str) -> str:
    matches = [c for c in columns if output == c or output.startswith(c + "_")]
    if not matches:
        raise Unsupported(
            f"output column {output!r} of transformer {transformer!r} names none of its inputs"
        )
    return max(matches, key=len)


def _tree_explainer(estimator: Any) -> tuple[Any, str, int]:
    """(shap explainer, output units, index of the positive class)."""
    import shap

    kind = type(estimator).__name__
    classes = getattr(estimator, "classes_", None)
    if classes is not None and len(classes) > 2:
        raise Unsupported(f"{kind} has {len(classes)} classes; only binary and regression")
    if kind in ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor"):
        return (
            shap.TreeExplainer(_hgb_model(estimator), model_output="raw"),
            _hgb_output(estimator),
            0,
        )
    try:
        explainer = shap.TreeExplainer(estimator, model_output="raw")
    except Exception as exc:  # shap raises bare Exceptions for models it does not know
        raise Unsupported(f"{kind} is not a tree model TreeSHAP reads: {exc}") from None
    tree_output = getattr(explainer.model, "tree_output", None)
    if tree_output == "probability":
        return explainer, "probability", 1
    if tree_output == "log_odds":
        return explainer, "log_odds", 0
    if tree_output == "raw_value" and classes is None:
        return explainer, "raw", 0
    raise Unsupported(f"{kind}: TreeSHAP output {tree_output!r} is not one this server reports")


def _hgb_output(hgb: Any) -> str:
    return "log_odds" if hasattr(hgb, "classes_") else "raw"


def _hgb_model(hgb: Any) -> dict[str, Any]:
    """An HGB model as the tree dictionaries shap's TreeExplainer takes (see the module doc)."""
    if getattr(hgb, "n_trees_per_iteration_", 1) != 1:
        raise Unsupported("multi-class HistGradientBoosting is not supported")
    known: dict[int, np.ndarray] = {}
    if hgb.is_categorical_ is not None:
        for feature in np.flatnonzero(hgb.is_categorical_):
            known[int(feature)] = np.asarray(hgb._bin_mapper.bin_thresholds_[feature])
    trees = [_hgb_tree(iteration[0], known) for iteration in hgb._predictors]
    baseline = float(np.asarray(hgb._baseline_prediction, dtype=np.float64).ravel()[0])
    return {
        "trees": trees,
        "base_offset": baseline,
        "tree_output": "log_odds" if hasattr(hgb, "classes_") else "raw_value",
        "objective": "binary_crossentropy" if hasattr(hgb, "classes_") else "squared_error",
        "input_dtype": np.float64,
        "internal_dtype": np.float64,
    }


def _in_bitset(bitset: np.ndarray, value: int) -> bool:
    return bool((int(bitset[value // 32]) >> (value % 32)) & 1)


def _category_segments(
    left_bitset: np.ndarray, known: np.ndarray, missing_left: bool
) -> list[tuple[float, bool]]:
    """The real line cut where a categorical split's routing changes, as (start, goes_left).

    sklearn's predictor truncates the value to an integer code: a code in the left bitset goes
    left, another known code right, and negatives and unknown codes go where missing values go.
    Codes are below 256 (HGB's bin limit); values from 256 up are treated as unknown.
    """
    known_codes = {int(v) for v in known}
    segments: list[tuple[float, bool]] = [(-np.inf, missing_left)]
    for code in range(256):
        if _in_bitset(left_bitset, code):
            side = True
        elif code in known_codes:
            side = False
        else:
            side = missing_left
        segments.append((float(code), side))
    segments.append((256.0, missing_left))
    merged = [segments[0]]
    for start, side in segments[1:]:
        if side != merged[-1][1]:
            merged.append((start, side))
    return merged


def _hgb_tree(predictor: Any, known: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    nodes = predictor.nodes
    bitsets = predictor.raw_left_cat_bitsets
    left: list[int] = []
    right: list[int] = []
    default: list[int] = []
    feature: list[int] = []
    threshold: list[float] = []
    value: list[float] = []
    cover: list[float] = []

    def add(f: int, t: float, v: float) -> int:
        if len(left) >= MAX_TREE_NODES:
            raise Unsupported(
                f"a HistGradientBoosting tree has more than {MAX_TREE_NODES} nodes once its "
                "categorical splits are rewritten as threshold splits"
            )
        for column, item in ((left, -1), (right, -1), (default, -1), (feature, f)):
            column.append(item)
        threshold.append(t)
        value.append(v)
        cover.append(0.0)
        return len(left) - 1

    def emit(i: int, scale: float) -> int:
        node = nodes[i]
        if node["is_leaf"]:
            at = add(-2, 0.0, float(node["value"]))
            cover[at] = float(node["count"]) * scale
            return at
        f = int(node["feature_idx"])
        missing_left = bool(node["missing_go_to_left"])
        if not node["is_categorical"]:
            at = add(f, float(node["num_threshold"]), float(node["value"]))
            left[at] = emit(int(node["left"]), scale)
            right[at] = emit(int(node["right"]), scale)
            default[at] = left[at] if missing_left else right[at]
            cover[at] = cover[left[at]] + cover[right[at]]
            return at
        segments = _category_segments(bitsets[node["bitset_idx"]], known[f], missing_left)
        copies = {side: sum(1 for _, s in segments if s == side) for side in (True, False)}

        def build(a: int, b: int) -> int:
            if a == b:
                side = segments[a][1]
                child = int(node["left"] if side else node["right"])
                return emit(child, scale / copies[side])
            mid = (a + b + 1) // 2
            # x <= nextafter(start, -inf) is x < start: codes from `start` up go right.
            at = add(f, float(np.nextafter(segments[mid][0], -np.inf)), float(node["value"]))
            left[at] = build(a, mid - 1)
            right[at] = build(mid, b)
            has_missing_side = any(s == missing_left for _, s in segments[a:mid])
            default[at] = left[at] if has_missing_side else right[at]
            cover[at] = cover[left[at]] + cover[right[at]]
            return at

        return build(0, len(segments) - 1)

    emit(0, 1.0)
    return {
        "children_left": np.asarray(left, dtype=np.int32),
        "children_right": np.asarray(right, dtype=np.int32),
        "children_default": np.asarray(default, dtype=np.int32),
        "features": np.asarray(feature, dtype=np.int32),
        "thresholds": np.asarray(threshold, dtype=np.float64),
        "values": np.asarray(value, dtype=np.float64).reshape(-1, 1),
        "node_sample_weight": np.asarray(cover, dtype=np.float64),
    }


# -- per-request attributions in the model server ---------------------------------------------


class ExplainRefused(Exception):
    """A request asked for attributions this server cannot give; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RequestExplainer:
    """What the v2 endpoint needs: whether a request asks for attributions, whether they can be
    given, and the `attributions` output tensor. Built once when the model is installed."""

    def __init__(self, attributor: TreeAttributor | None, refusal: ExplainRefused | None) -> None:
        self.attributor = attributor
        self.refusal = refusal

    @classmethod
    def for_model(cls, model: Any, enabled: bool) -> RequestExplainer:
        """`model`: the served model (its sklearn estimator is explained). Additivity is
        verified on the model's warm-up rows (its input example) before anything is served."""
        if not enabled:
            return cls(
                None,
                ExplainRefused(
                    400,
                    "attributions are off on this server: start it with MLOPS_SERVE_EXPLAIN=true "
                    'to answer "parameters": {"explain": true}',
                ),
            )
        label = f"model {getattr(model, 'name', '?')} version {getattr(model, 'version', '?')}"
        # ServedModel keeps the loaded sklearn estimator (None for a pyfunc model).
        estimator = getattr(model, "estimator", None) or getattr(model, "_estimator", None)
        if estimator is None:
            return cls(
                None, ExplainRefused(422, f"{label} is not an sklearn model: no attributions")
            )
        try:
            attributor = TreeAttributor(estimator)
            check_rows = _warmup_frame(model)
            if check_rows is not None:
                attributor.verify(check_rows)
        except Unsupported as exc:
            return cls(None, ExplainRefused(422, f"{label} cannot be explained: {exc}"))
        return cls(attributor, None)

    @staticmethod
    def requested(payload: Any) -> bool:
        """Whether an infer request asks for attributions (`parameters.explain`, a boolean)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("parameters"), dict):
            return False
        value = payload["parameters"].get("explain", False)
        if not isinstance(value, bool):
            raise ExplainRefused(400, f"parameters.explain must be true or false, got {value!r}")
        return value

    def check(self) -> None:
        if self.refusal is not None:
            raise self.refusal

    def tensor(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """The `attributions` output for validated request columns (`arrays`, one per input):
        shape [rows, features], row-major, features named in `parameters.features`."""
        import pandas as pd

        assert self.attributor is not None
        result = self.attributor.attributions(pd.DataFrame(arrays, copy=False))
        return {
            "name": "attributions",
            "datatype": "FP64",
            "shape": list(result.values.shape),
            "data": result.values.ravel().tolist(),
            "parameters": {
                "features": list(result.feature_names),
                "base_value": result.base_value,
                "units": result.output,
            },
        }


def _warmup_frame(model: Any) -> Any:
    import pandas as pd

    from mlops_platform.model_server.schema import to_arrays

    schema = getattr(model, "schema", None)
    if schema is None or not hasattr(model, "warmup_rows"):
        return None
    rows = model.warmup_rows()
    return pd.DataFrame(to_arrays(schema, rows), copy=False) if rows else None
