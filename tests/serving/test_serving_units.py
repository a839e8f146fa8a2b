"""Unit tests of the pure parts: settings registry, input schema, drift window, fast path."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_support import PROFILE, training_frame

from mlops_platform.model_server import settings as settings_mod
from mlops_platform.model_server.drift import (
    DriftWindow,
    ProfileError,
    parse_profile,
    psi,
)
from mlops_platform.model_server.schema import Column, InputError, InputSchema, to_arrays
from mlops_platform.model_server.settings import REGISTRY, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "mlops_platform" / "model_server" / "README.md"

# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults_come_from_the_registry() -> None:
    s = Settings.from_env({})
    for var in REGISTRY:
        assert getattr(s, var.field) == var.default, var.name
    assert (s.host, s.port, s.prediction_sink, s.kafka_topic) == (
        "127.0.0.1",
        8080,
        "file",
        "predictions",
    )


def test_settings_parse_types_and_overrides() -> None:
    env = {
        "MLOPS_SERVE_PORT": "9000",
        "MLOPS_SERVE_BATCH_WAIT_MS": "1.5",
        "MLOPS_SERVE_PREDICTION_SINK": "kafka",
        "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS": "k:9092",
        "MLOPS_SERVE_HOST": "0.0.0.0",
    }
    s = Settings.from_env(env, host="127.0.0.2", port=None)
    assert (s.port, s.batch_wait_ms, s.prediction_sink, s.host) == (9000, 1.5, "kafka", "127.0.0.2")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOPS_SERVE_PORT": "http"}, "MLOPS_SERVE_PORT='http' is not a valid int: "),
        ({"MLOPS_SERVE_PORT": "-1"}, "MLOPS_SERVE_PORT=-1 must be >= 0"),
        (
            {"MLOPS_SERVE_PREDICTION_SINK": "s3"},
            "MLOPS_SERVE_PREDICTION_SINK='s3' must be one of file, kafka, none",
        ),
        (
            {"MLOPS_SERVE_BATCH_WAIT_MS": "nan"},
            "MLOPS_SERVE_BATCH_WAIT_MS='nan' is not a valid float",
        ),
        (
            {"MLOPS_SERVE_PREDICTION_SINK": "kafka"},
            "MLOPS_SERVE_KAFKA_BOOTSTRAP_SERVERS must be set when "
            "MLOPS_SERVE_PREDICTION_SINK=kafka",
        ),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert str(err.value).startswith(message)


def test_readme_settings_table_matches_the_registry() -> None:
    text = README.read_text()
    assert settings_mod.markdown_table() in text, "run `uv run mlops docs`"


def test_only_the_registry_reads_the_environment() -> None:
    package = Path(settings_mod.__file__).parent
    offenders = [
        p.name
        for p in package.glob("*.py")
        if p.name != "settings.py" and re.search(r"os\.environ|getenv", p.read_text())
    ]
    assert offenders == []


# -- schema -----------------------------------------------------------------------------------

SCHEMA = InputSchema(
    (
        Column("x", "float", "double"),
        Column("n", "int", "long"),
        Column("opt", "float", "double", required=False),
        Column("c", "str", "string"),
        Column("flag", "bool", "boolean"),
    )
)


def test_all_formats_give_the_same_rows() -> None:
    split = {"columns": ["x", "n", "c", "flag"], "data": [[1.5, 2, "a", True], [2, 3, "b", False]]}
    records = [
        {"x": 1.5, "n": 2, "c": "a", "flag": True},
        {"x": 2, "n": 3, "c": "b", "flag": False},
    ]
    columns = {"x": [1.5, 2], "n": [2, 3], "c": ["a", "b"], "flag": [True, False]}
    expected = {
        "x": [1.5, 2],
        "n": [2, 3],
        "opt": [None, None],
        "c": ["a", "b"],
        "flag": [True, False],
    }
    for payload in (
        {"dataframe_split": split},
        {"dataframe_records": records},
        {"instances": records},
        {"inputs": columns},
    ):
        rows = SCHEMA.rows_from_invocations(payload)
        assert (rows.columns, rows.n_rows) == (expected, 2), payload
    v2 = {
        "inputs": [
            {"name": "x", "shape": [2], "datatype": "FP64", "data": [1.5, 2]},
            {"name": "n", "shape": [2, 1], "datatype": "INT64", "data": [[2], [3]]},
            {"name": "c", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
            {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [True, False]},
        ]
    }
    assert SCHEMA.rows_from_v2(v2).columns == expected
    arrays = to_arrays(
        SCHEMA, [SCHEMA.rows_from_v2(v2), SCHEMA.rows_from_invocations({"inputs": columns})]
    )
    assert arrays["x"].dtype == np.float64 and arrays["x"].tolist() == [1.5, 2.0, 1.5, 2.0]
    assert arrays["n"].dtype == np.int64 and arrays["n"].tolist() == [2, 3, 2, 3]
    assert np.isnan(arrays["opt"]).all()
    assert arrays["c"].dtype == object and arrays["flag"].dtype == np.bool_


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            {"x": 1.0, "n": 1, "c": "a", "flag": 1},
            "column 'flag' row 0: expected a boolean (boolean), got integer 1",
        ),
        (
            {"x": True, "n": 1, "c": "a", "flag": True},
            "column 'x' row 0: expected a number (double), got boolean True",
        ),
        (
            {"x": 1.0, "n": float("nan"), "c": "a", "flag": True},
            "column 'n' row 0: missing value (null/NaN)",
        ),
        ({"x": 1.0, "n": 1, "c": None, "flag": True}, "column 'c' row 0: missing value (null/NaN)"),
        ({"x": -math.inf, "n": 1, "c": "a", "flag": True}, "column 'x' row 0: -inf is not allowed"),
        (
            {"x": 1.0, "n": 1, "opt": math.inf, "c": "a", "flag": True},
            "column 'opt' row 0: inf is not allowed",
        ),
        (
            {"x": 1.0, "n": 1, "c": ["a"], "flag": True},
            "column 'c' row 0: expected a string (string), got list ['a']",
        ),
    ],
)
def test_type_errors_name_column_and_row(row: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as err:
        SCHEMA.rows_from_invocations({"dataframe_records": [row]})
    assert err.value.status == 422
    assert str(err.value).startswith(message)


def test_integral_floats_are_accepted_for_integer_columns() -> None:
    rows = SCHEMA.rows_from_invocations({"inputs": {"x": 1.0, "n": 4.0, "c": "a", "flag": False}})
    assert rows.columns["n"] == [4] and type(rows.columns["n"][0]) is int


@pytest.mark.parametrize(
    ("payload", "message", "status"),
    [
        (
            {"dataframe_split": {"columns": ["x", "x"], "data": []}},
            "'dataframe_split.columns' has duplicate names",
            400,
        ),
        ({"dataframe_split": {"columns": ["x"], "data": []}}, "the request has no rows", 422),
        (
            {"dataframe_records": [1]},
            "'dataframe_records' must be a list of objects (one per row)",
            400,
        ),
        (
            {"dataframe_records": [{"x": 1}, {"y": 1}]},
            "'dataframe_records' row 1 has different columns than row 0; extra: 'y'; missing: 'x'",
            422,
        ),
        (
            {"inputs": {"x": [1, 2], "n": [1]}},
            "'inputs' columns have different lengths: [1, 2]",
            422,
        ),
        ({"inputs": "x"}, "'inputs' must be a list of records or an object of columns", 400),
        ({"weird": 1}, "unknown top-level key(s): weird", 400),
    ],
)
def test_shape_errors(payload: Any, message: str, status: int) -> None:
    with pytest.raises(InputError) as err:
        SCHEMA.rows_from_invocations(payload)
    assert (str(err.value), err.value.status) == (message, status)


# -- drift ------------------------------------------------------------------------------------


def test_psi_of_a_matching_window_is_zero_and_grows_with_shift() -> None:
    refs = parse_profile(PROFILE)
    window = DriftWindow(refs, window_rows=8)
    window.update(
        {
            "tenure": np.array([10.0, 30.0, 60.0, 90.0]),
            "plan": np.array(["basic", "gold", "basic", "gold"], dtype=object),
        }
    )
    assert window.psi() == {"tenure": 0.0, "plan": 0.0}
    # All rows in the top bucket / an unseen category (__other__ has reference share 0).
    window.update({"tenure": np.full(8, 99.0), "plan": np.array(["x"] * 8, dtype=object)})
    assert window.rows() == 8  # the window slid: only the last 8 rows count
    expected_tenure = psi(np.full(4, 0.25), np.array([0.0, 0.0, 0.0, 1.0]))
    assert window.psi()["tenure"] == pytest.approx(expected_tenure)
    assert window.psi()["tenure"] == pytest.approx(
        3 * (0.25 - 1e-4) * math.log(0.25 / 1e-4) + 0.75 * math.log(4), rel=1e-9
    )


def test_missing_values_are_left_out_like_the_profile_does() -> None:
    window = DriftWindow(parse_profile(PROFILE), window_rows=10)
    window.update(
        {"tenure": np.array([np.nan, 10.0]), "plan": np.array([None, "basic"], dtype=object)}
    )
    result = window.psi()
    assert result["tenure"] == pytest.approx(psi(np.full(4, 0.25), np.array([1.0, 0, 0, 0])))
    assert result["plan"] == pytest.approx(psi(np.array([0.5, 0.5, 0.0]), np.array([1.0, 0, 0])))


def test_server_psi_matches_the_training_pipeline_library() -> None:
    drift_lib = pytest.importorskip("mlops_platform.pipelines.lib.drift")
    reference = training_frame(2000, seed=1)
    current = training_frame(500, seed=2)
    current["tenure"] = current["tenure"] * 1.3  # some drift
    profile = drift_lib.reference_profile(reference, ["tenure", "orders", "spend", "plan"])
    window = DriftWindow(parse_profile(profile), window_rows=500)
    window.update(
        {c: current[c].to_numpy(dtype=object if c == "plan" else np.float64) for c in current}
    )
    ours = window.psi()
    theirs = drift_lib.profile_psi(profile, current)
    assert ours.keys() == theirs.keys()
    for feature, value in theirs.items():
        assert ours[feature] == pytest.approx(value, rel=1e-9, abs=1e-12), feature


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"version": 2, "features": {}}, "reference_profile.version must be 1, got 2"),
        (
            {
                "version": 1,
                "features": {
                    "a": {"kind": "numeric", "edges": [2.0, 1.0], "fractions": [0.3, 0.3, 0.4]}
                },
            },
            "reference_profile.features.a.edges must be strictly ascending",
        ),
        (
            {
                "version": 1,
                "features": {"a": {"kind": "numeric", "edges": [1.0], "fractions": [1.0]}},
            },
            "reference_profile.features.a.fractions must have len(edges)+1 = 2 values",
        ),
        (
            {"version": 1, "features": {"a": {"kind": "categorical", "fractions": {"x": 0.5}}}},
            "reference_profile.features.a.fractions sum to 0.5, expected 1",
        ),
        (
            {"version": 1, "features": {"a": {"kind": "text"}}},
            "reference_profile.features.a.kind must be 'numeric' or 'categorical', got 'text'",
        ),
    ],
)
def test_profile_errors_name_the_feature(profile: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError) as err:
        parse_profile(profile)
    assert str(err.value) == message


# -- fast path --------------------------------------------------------------------------------


def _hgb_pipeline() -> tuple[Any, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    df = training_frame(600, seed=3)
    df.loc[df.index[:30], "plan"] = None  # missing categories in training
    y = ((df["tenure"] < 40) ^ (df["plan"] == "gold")).astype(int)
    pre = ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    dtype=np.float64,
                ),
                ["plan"],
            ),
            ("num", "passthrough", ["tenure", "orders", "spend"]),
        ],
        verbose_feature_names_out=False,
    )
    model = Pipeline(
        [
            ("pre", pre),
            (
                "clf",
                HistGradientBoostingClassifier(
                    categorical_features=[0], max_iter=20, random_state=0
                ),
            ),
        ]
    ).fit(df, y)
    return model, df


def _columns(df: Any) -> dict[str, np.ndarray]:
    return {
        "tenure": df["tenure"].to_numpy(np.float64),
        "orders": df["orders"].to_numpy(np.int64),
        "spend": df["spend"].to_numpy(np.float64),
        "plan": df["plan"].to_numpy(object),
    }


def test_fast_path_equals_the_pipeline_for_hist_gradient_boosting() -> None:
    import pandas as pd

    from mlops_platform.model_server.fastpath import compile_predict_proba

    model, df = _hgb_pipeline()
    fast = compile_predict_proba(model)
    assert fast is not None
    sample = df.sample(200, random_state=0).copy()
    sample.loc[sample.index[:5], "plan"] = "never-seen"
    sample.loc[sample.index[5:10], "spend"] = np.nan
    cols = _columns(sample)
    expected = model.predict_proba(pd.DataFrame(cols))
    # Treelite sums the trees' margins in its own order: equal up to float rounding.
    assert np.allclose(fast(cols), expected, rtol=0, atol=1e-12)
    assert not np.array_equal(fast(cols)[:, 1], expected[::-1, 1])  # rows stay in order


def test_fast_path_equals_the_pipeline_for_one_hot_logistic(churn_model: dict[str, Any]) -> None:
    import pandas as pd

    from mlops_platform.model_server.fastpath import NeedsPipeline, compile_predict_proba

    model = churn_model["model"]
    fast = compile_predict_proba(model)
    assert fast is not None
    cols = _columns(churn_model["frame"])
    assert np.allclose(fast(cols), model.predict_proba(pd.DataFrame(cols)), rtol=0, atol=1e-12)
    unknown = {**cols, "plan": np.array(["platinum"] * len(cols["plan"]), dtype=object)}
    with pytest.raises(NeedsPipeline):  # handle_unknown="error": the pipeline must say why
        fast(unknown)


def test_unsupported_steps_fall_back_to_the_pipeline() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import PolynomialFeatures

    from mlops_platform.model_server.fastpath import compile_predict_proba

    df = training_frame(100)
    pre = ColumnTransformer([("poly", PolynomialFeatures(), ["tenure", "orders"])])
    model = Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(df, df["orders"] > 10)
    assert compile_predict_proba(model) is None


# -- image ------------------------------------------------------------------------------------

IMAGE_DIR = README.parent


def _dockerfile() -> str:
    return (IMAGE_DIR / "Dockerfile").read_text()


def test_dockerfile_base_is_a_slim_image_pinned_by_tag_and_digest() -> None:
    text = _dockerfile()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert base is not None
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base.group(1))
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    # The uv stage only lends its binary to the build stage; the default image is the base plus
    # the build's environment, the explain image that plus the explain build's additions, and
    # the last stage (what a build without --target makes) is the default image.
    assert froms == [
        "${UV_IMAGE}",
        "${BASE_IMAGE}",
        "${BASE_IMAGE}",
        "build",
        "model-server",
        "model-server",
    ], froms
    assert re.search(r"^ARG UV_IMAGE=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+$", text, re.M)
    assert "COPY --from=uv /uv " in text
    assert "latest" not in text


def test_dockerfile_runs_as_non_root_on_a_read_only_root() -> None:
    text = _dockerfile()
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users == ["10001:10001"]
    assert "TMPDIR=/tmp" in text and "HOME=/tmp" in text and "PYTHONDONTWRITEBYTECODE=1" in text
    assert "MLOPS_SERVE_PREDICTION_FILE=/tmp/" in text
    assert re.search(r'^ENTRYPOINT \["python", "-m", "mlops_platform.model_server"\]$', text, re.M)
    # Every MLOPS_SERVE_* variable the image sets is a registered setting.
    names = {v.name for v in REGISTRY}
    assert set(re.findall(r"(MLOPS_SERVE_[A-Z_]+)=", text)) <= names


def test_image_requirements_are_pinned_to_the_lock_file() -> None:
    import tomllib

    lock = tomllib.loads((IMAGE_DIR.parents[1] / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    pins = [
        line.split("==")
        for name in ("requirements.txt", "requirements-explain.txt")
        for line in (IMAGE_DIR / name).read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert pins and all(len(p) == 2 for p in pins)
    assert {name: locked.get(name) for name, _ in pins} == dict(pins)


def test_explanations_on_an_image_without_shap_stop_the_start_up(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "shap" else real(name, *a)
    )
    with pytest.raises(SettingsError, match="needs shap, which this image leaves out"):
        Settings.from_env({"MLOPS_SERVE_EXPLAIN": "true"})
    assert Settings.from_env({"MLOPS_SERVE_EXPLAIN": "false"}).explain is False


def test_only_the_explain_requirements_carry_shap() -> None:
    default = (IMAGE_DIR / "requirements.txt").read_text()
    assert not re.search(r"^shap==", default, re.M)
    assert re.search(r"^shap==", (IMAGE_DIR / "requirements-explain.txt").read_text(), re.M)


def test_fast_path_is_skipped_when_fitted_internals_are_not_where_expected() -> None:
    from mlops_platform.model_server.fastpath import compile_predict_proba

    model, _df = _hgb_pipeline()
    del model[-1]._predictors  # what a future sklearn might rename
    assert compile_predict_proba(model) is None
