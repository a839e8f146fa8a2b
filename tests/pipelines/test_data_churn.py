"""Synthetic churn generator: schema, determinism, label model, seasonality, drift injection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlops_platform.pipelines.data import churn
from mlops_platform.pipelines.data.churn import DriftScenario, generate


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return generate(60_000, seed=11)


def _assert_same_columns(left: pd.DataFrame, right: pd.DataFrame) -> None:
    # Column by column with Series.equals: pd.testing.assert_frame_equal takes seconds on
    # categorical columns in pandas 3.
    assert list(left.columns) == list(right.columns)
    for name in left.columns:
        assert left[name].dtype == right[name].dtype, name
        assert left[name].equals(right[name]), name


def test_schema_has_47_features_in_four_groups() -> None:
    assert len(churn.FEATURES) == 47
    assert len(set(churn.FEATURE_NAMES)) == 47
    groups: dict[str, int] = {}
    for spec in churn.FEATURES:
        groups[spec.group] = groups.get(spec.group, 0) + 1
    assert groups == {"demographics": 10, "behaviour": 17, "temporal": 10, "marketing": 10}
    assert len(churn.NUMERIC_FEATURES) == 34
    assert len(churn.CATEGORICAL_FEATURES) == 13
    assert churn.FEATURE_NAMES[:3] == ["age", "gender", "country"]
    assert (churn.LABEL, churn.TIMESTAMP, churn.ID) == ("churned", "snapshot_date", "customer_id")


def test_frame_columns_and_dtypes(base: pd.DataFrame) -> None:
    assert list(base.columns) == [churn.ID, churn.TIMESTAMP, *churn.FEATURE_NAMES, churn.LABEL]
    for name in churn.NUMERIC_FEATURES:
        assert pd.api.types.is_numeric_dtype(base[name]), name
    for spec in churn.FEATURES:
        if spec.kind == "categorical":
            assert isinstance(base[spec.name].dtype, pd.CategoricalDtype), spec.name
            assert list(base[spec.name].cat.categories) == list(spec.categories)
        if spec.lower is not None:
            assert base[spec.name].min() >= spec.lower, spec.name
        if spec.upper is not None:
            assert base[spec.name].max() <= spec.upper, spec.name
    assert base[churn.LABEL].dtype == np.int64
    assert set(base[churn.LABEL].unique()) == {0, 1}
    assert base[churn.ID].is_unique
    assert base[churn.TIMESTAMP].is_monotonic_increasing
    assert base[churn.TIMESTAMP].min() == pd.Timestamp("2023-01-01")
    assert base[churn.TIMESTAMP].max() == pd.Timestamp("2025-12-30")
    assert not base.isna().any().any()


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    first = generate(5_000, seed=3)
    _assert_same_columns(first, generate(5_000, seed=3))
    assert not first.equals(generate(5_000, seed=4))


def test_pinned_values_for_seed_zero() -> None:
    # Pins the generator: any change of the random stream or of the formulas shows up here.
    frame = generate(1_000, seed=0, start="2024-03-01", days=30)
    first = frame.iloc[0]
    assert first[churn.TIMESTAMP] == pd.Timestamp("2024-03-01")
    assert int(frame[churn.LABEL].sum()) == PINNED_POSITIVES
    assert int(frame["orders_90d"].sum()) == PINNED_ORDERS
    assert frame["payment_method"].value_counts().to_dict() == PINNED_PAYMENT


PINNED_POSITIVES = 164
PINNED_ORDERS = 2944
PINNED_PAYMENT = {"card": 474, "paypal": 251, "wallet": 149, "bank_transfer": 88, "cod": 38}


def test_positive_rate_is_about_15_percent() -> None:
    rate = generate(200_000, seed=5)[churn.LABEL].mean()
    assert 0.14 <= rate <= 0.16, rate


def test_gradient_boosting_gets_a_realistic_auc() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    frame = generate(30_000, seed=21)
    features, label = frame[churn.FEATURE_NAMES], frame[churn.LABEL]
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", max_iter=60, random_state=0
    )
    # One thread: on a shared, loaded machine OpenMP threads spin-wait and run several times slower.
    with threadpool_limits(1):
        model.fit(features[:20_000], label[:20_000])
    auc = roc_auc_score(label[20_000:], model.predict_proba(features[20_000:])[:, 1])
    assert 0.80 <= auc <= 0.90, auc


def test_seasonality_peaks_in_december_and_can_be_turned_off() -> None:
    def december_over_june(frame: pd.DataFrame) -> float:
        month = frame[churn.TIMESTAMP].dt.month
        return (
            frame.loc[month == 12, "orders_90d"].mean() / frame.loc[month == 6, "orders_90d"].mean()
        )

    assert december_over_june(generate(100_000, seed=2)) > 1.3
    assert december_over_june(generate(100_000, seed=2, seasonality=0.0)) == pytest.approx(
        1.0, abs=0.05
    )


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        (0, {}, "rows must be at least 1, got 0"),
        (10, {"days": 0}, "days must be at least 1, got 0"),
        (10, {"start": "yesterday"}, "start must be an ISO date (YYYY-MM-DD), got 'yesterday'"),
    ],
)
def test_bad_arguments_are_named(rows: int, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        generate(rows, **kwargs)
    assert str(excinfo.value) == message


def _drifted_pair(kind: str, **extra) -> tuple[pd.DataFrame, pd.DataFrame, DriftScenario]:
    scenario = DriftScenario(
        kind=kind,
        magnitude=0.5,
        features=("avg_order_value", "payment_method"),
        start_day=400,
        **extra,
    )
    clean = generate(30_000, seed=8, days=800)
    return clean, generate(30_000, seed=8, days=800, drift=scenario), scenario


def _day(frame: pd.DataFrame) -> np.ndarray:
    return (frame[churn.TIMESTAMP] - pd.Timestamp("2023-01-01")).dt.days.to_numpy()


@pytest.mark.parametrize("kind", ["sudden", "gradual", "seasonal"])
def test_drift_moves_only_the_named_features(kind: str) -> None:
    clean, drifted, scenario = _drifted_pair(kind)
    untouched = [c for c in clean.columns if c not in scenario.features]
    _assert_same_columns(clean[untouched], drifted[untouched])
    before = _day(clean) < scenario.start_day
    for name in scenario.features:
        assert clean.loc[before, name].equals(drifted.loc[before, name]), name
        assert not clean.loc[~before, name].equals(drifted.loc[~before, name]), name


@pytest.mark.parametrize("kind", ["sudden", "gradual", "seasonal"])
def test_numeric_drift_moves_the_mean_by_magnitude_times_std(kind: str) -> None:
    clean, drifted, _ = _drifted_pair(kind)
    day = _day(clean).astype(np.float64)
    doy = (clean[churn.TIMESTAMP].dt.day_of_year.to_numpy() - 1).astype(np.float64)
    std = float(np.std(clean["avg_order_value"].to_numpy()))
    if kind == "sudden":
        intensity = np.where(day >= 400, 0.5, 0.0)
    elif kind == "gradual":
        intensity = np.where(day >= 400, 0.5 * np.clip((day - 400) / 180, 0, 1), 0.0)
    else:
        intensity = np.where(day >= 400, 0.5 * np.cos(2 * np.pi * (doy - 172) / 365.25), 0.0)
    expected = np.clip(clean["avg_order_value"].to_numpy() + intensity * std, 1, None)
    np.testing.assert_allclose(drifted["avg_order_value"].to_numpy(), expected, rtol=1e-12)


def test_categorical_sudden_drift_moves_a_quarter_of_rows_to_the_last_category() -> None:
    clean, drifted, _ = _drifted_pair("sudden")
    after = _day(clean) >= 400
    before_share = (clean.loc[after, "payment_method"] == "cod").mean()
    after_share = (drifted.loc[after, "payment_method"] == "cod").mean()
    # a share min(1, 0.5 / 2) = 0.25 of rows moves to `cod`
    assert after_share == pytest.approx(before_share + 0.25 * (1 - before_share), abs=0.015)
    changed = clean.loc[after, "payment_method"] != drifted.loc[after, "payment_method"]
    assert set(drifted.loc[after].loc[changed, "payment_method"].unique()) == {"cod"}


def test_integer_features_stay_integer_and_in_bounds_under_drift() -> None:
    scenario = DriftScenario(kind="sudden", magnitude=3.0, features=("sessions_30d", "age"))
    frame = generate(20_000, seed=1, drift=scenario)
    assert frame["sessions_30d"].dtype == np.int64
    assert frame["age"].max() == 85
    assert frame["age"].min() >= 18


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "sudden", "features": ("age", "shoe_size")}, "shoe_size"),
        ({"kind": "sudden", "features": ()}, "drift.features must name at least one feature"),
        ({"kind": "sudden", "features": ("age", "age")}, "drift.features lists a feature twice"),
        ({"kind": "tidal"}, "kind"),
        ({"magnitude": -1}, "magnitude"),
        ({"start": 3}, "start"),
    ],
)
def test_drift_scenario_validation_names_the_field(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        DriftScenario(**fields)
    assert message in str(excinfo.value)


def test_parquet_round_trip(tmp_path, base: pd.DataFrame) -> None:
    target = churn.write_parquet(base.head(2_000), tmp_path / "nested" / "churn.parquet")
    assert target == tmp_path / "nested" / "churn.parquet"
    back = churn.read_parquet(target)
    pd.testing.assert_frame_equal(back, base.head(2_000), check_dtype=False)
    assert isinstance(back["country"].dtype, pd.CategoricalDtype)
