"""Drift detection: per-kind tests, correction, effect floors, seasonal reference, PSI by hand,
the reference profile contract, verdicts and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlops_platform.pipelines.data import churn
from mlops_platform.pipelines.lib import drift
from mlops_platform.pipelines.lib.drift import detect_drift, reference_profile


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """Two years of clean data: 2023 is the reference, 2024 holds current windows."""
    return churn.generate(120_000, seed=31, days=731)


@pytest.fixture(scope="module")
def drifted_history() -> pd.DataFrame:
    scenario = churn.DriftScenario(kind="sudden", magnitude=0.5, start_day=365)
    return churn.generate(120_000, seed=31, days=731, drift=scenario)


def _window(frame: pd.DataFrame, start: str, days: int = 21) -> pd.DataFrame:
    begin = pd.Timestamp(start)
    stamp = frame[churn.TIMESTAMP]
    return frame[(stamp >= begin) & (stamp < begin + pd.Timedelta(days=days))]


def _reference(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame[churn.TIMESTAMP] < pd.Timestamp("2024-01-01")]


@pytest.mark.parametrize(
    ("reference", "current", "expected"),
    [
        ([0.25, 0.25, 0.5], [0.5, 0.25, 0.25], 0.5 * math.log(2)),
        ([0.5, 0.3, 0.2], [0.3, 0.3, 0.4], 0.2 * math.log(2) - 0.2 * math.log(0.6)),
        ([0.4, 0.6], [0.4, 0.6], 0.0),
        # an empty bucket is floored at 1e-4 instead of making PSI infinite
        ([0.5, 0.5], [1.0, 0.0], 0.5 * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)),
    ],
)
def test_psi_matches_hand_computation(reference, current, expected) -> None:
    assert drift.psi(reference, current) == pytest.approx(expected, rel=1e-12)


def test_psi_needs_matching_buckets() -> None:
    with pytest.raises(ValueError, match="PSI needs the same buckets on both sides, got 2 and 3"):
        drift.psi([0.5, 0.5], [0.2, 0.3, 0.5])


def test_reference_profile_exact_format() -> None:
    frame = pd.DataFrame(
        {
            "x": np.arange(10, dtype=np.int64),
            "mostly_zero": [0] * 8 + [1, 2],
            "colour": ["red"] * 6 + ["blue"] * 4,
        }
    )
    profile = reference_profile(frame, bins=4)
    assert profile == {
        "version": 1,
        "features": {
            "x": {"kind": "numeric", "edges": [2.25, 4.5, 6.75], "fractions": [0.3, 0.2, 0.2, 0.3]},
            # quantiles 0, 0, 0 collapse to one edge; x == edge falls in the upper bucket
            "mostly_zero": {"kind": "numeric", "edges": [0.0], "fractions": [0.0, 1.0]},
            "colour": {
                "kind": "categorical",
                "fractions": {"red": 0.6, "blue": 0.4, "__other__": 0.0},
            },
        },
    }
    assert json.loads(json.dumps(profile)) == profile


def test_reference_profile_of_churn_data_is_complete(history: pd.DataFrame) -> None:
    profile = reference_profile(_reference(history))
    assert list(profile["features"]) == churn.FEATURE_NAMES
    for name, spec in profile["features"].items():
        if spec["kind"] == "numeric":
            assert spec["edges"] == sorted(set(spec["edges"])), name
            assert len(spec["fractions"]) == len(spec["edges"]) + 1, name
            assert sum(spec["fractions"]) == pytest.approx(1.0), name
        else:
            assert set(spec["fractions"]) == {
                *churn.FEATURE_SPECS[name].categories,
                "__other__",
            }, name
            assert sum(spec["fractions"].values()) == pytest.approx(1.0), name


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        ([1, 2], {}, "reference must be a pandas DataFrame, got list"),
        (pd.DataFrame({"a": [1.0]}), {"bins": 1}, "bins must be at least 2, got 1"),
        (pd.DataFrame({"a": [1.0]}), {"features": ["a", "b"]}, "reference is missing column(s): b"),
        (pd.DataFrame({"a": [None, None]}), {}, "reference column 'a' has no non-missing values"),
    ],
)
def test_reference_profile_bad_input(frame, kwargs, message) -> None:
    with pytest.raises(ValueError) as excinfo:
        reference_profile(frame, **kwargs)
    assert str(excinfo.value) == message


def test_profile_psi_counts_unseen_categories_as_other() -> None:
    profile = reference_profile(pd.DataFrame({"c": ["a"] * 5 + ["b"] * 5}))
    current = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["z"] * 2})
    expected = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.2 - 1e-4) * math.log(0.2 / 1e-4)
    assert drift.profile_psi(profile, current) == {"c": pytest.approx(expected, rel=1e-12)}


def test_numeric_psi_in_detect_drift_matches_hand_computation() -> None:
    reference = pd.DataFrame({"x": np.arange(100, dtype=np.float64)})
    current = pd.DataFrame({"x": np.repeat(np.arange(50, dtype=np.float64), 2)})
    report = detect_drift(reference, current)
    # 10 decile buckets of 0.1; current fills the lower five with 0.2 and leaves five empty
    expected = 5 * 0.1 * math.log(2) + 5 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    result = report.features["x"]
    assert result.psi == pytest.approx(expected, rel=1e-12)
    ks = next(test for test in result.tests if test.test == "ks" and test.slice == "window")
    assert ks.statistic == pytest.approx(0.5)
    assert ks.effect == pytest.approx(0.5)
    assert result.kind == "integer"
    assert result.drifted is True
    assert drift.profile_psi(reference_profile(reference), current)["x"] == pytest.approx(
        expected, rel=1e-12
    )


def test_no_false_alarm_on_clean_windows_across_the_year(history: pd.DataFrame) -> None:
    reference = _reference(history)
    for start in ("2024-01-05", "2024-04-10", "2024-06-20", "2024-11-20", "2024-12-10"):
        report = detect_drift(reference, _window(history, start))
        assert report.drifted is False, (start, report.drifted_features)
        assert report.seasonal_reference is True


def test_seasonality_would_alarm_without_the_same_season_reference(history: pd.DataFrame) -> None:
    reference = _reference(history)
    current = _window(history, "2024-11-20")
    naive = detect_drift(reference, current, season_days=None)
    assert naive.seasonal_reference is False
    assert naive.reference_rows == len(reference)
    assert "promo_emails_30d" in naive.drifted_features
    seasonal = detect_drift(reference, current)
    assert seasonal.drifted_features == []
    assert seasonal.reference_rows < len(reference) / 3


def test_sudden_drift_flags_exactly_the_drifted_features(
    history: pd.DataFrame, drifted_history: pd.DataFrame
) -> None:
    report = detect_drift(_reference(history), _window(drifted_history, "2024-03-01"))
    assert report.drifted is True
    assert sorted(report.drifted_features) == sorted(churn.DEFAULT_DRIFT_FEATURES)
    assert report.n_drifted == 6
    assert report.share_drifted == pytest.approx(6 / 47)
    assert report.features["payment_method"].test == "chi2"


def test_overall_verdict_thresholds_are_parameters(
    history: pd.DataFrame, drifted_history: pd.DataFrame
) -> None:
    reference, current = _reference(history), _window(drifted_history, "2024-03-01")
    assert detect_drift(reference, current, min_drifted_features=6).drifted is True
    assert detect_drift(reference, current, min_drifted_features=7).drifted is False
    assert detect_drift(reference, current, drift_share=0.2).drifted is False
    assert detect_drift(reference, current, psi_threshold=1000.0).n_drifted == 0


def test_large_windows_do_not_flag_trivial_shifts() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    current = pd.DataFrame({"x": rng.normal(0.05, 1, 200_000)})
    report = detect_drift(reference, current)
    result = report.features["x"]
    # significant (huge samples) but tiny: PSI ~ 0.0025, far under 0.2
    ks = next(test for test in result.tests if test.test == "ks")
    assert ks.pvalue < 1e-20
    assert ks.effect < ks.min_effect == 0.03
    assert result.psi < 0.01
    assert result.drifted is False
    assert report.drifted is False


def test_small_windows_need_a_significant_test() -> None:
    reference = pd.DataFrame({"c": ["a"] * 3 + ["b"] * 3})
    current = pd.DataFrame({"c": ["a"] * 2 + ["b"] * 1})
    report = detect_drift(reference, current, psi_threshold=0.01)
    assert report.features["c"].psi > 0.01
    assert report.features["c"].pvalue > 0.5
    assert report.drifted is False


def test_report_to_dict_is_json(history: pd.DataFrame) -> None:
    reference = _reference(history)
    report = detect_drift(reference, _window(history, "2024-05-01"), features=["age", "gender"])
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {
        "drifted",
        "verdict",
        "message",
        "recent_rows",
        "season",
        "n_tests",
        "n_drifted",
        "share_drifted",
        "drifted_features",
        "features",
        "reference_rows",
        "current_rows",
        "seasonal_reference",
        "config",
    }
    assert set(data["features"]) == {"age", "gender"}
    assert set(data["features"]["age"]) == {
        "kind",
        "test",
        "slice",
        "psi",
        "statistic",
        "pvalue",
        "effect",
        "missing_reference",
        "missing_current",
        "drifted",
        "drifted_tests",
        "tests",
    }
    assert data["features"]["gender"]["kind"] == "categorical"
    assert data["config"]["psi_threshold"] == 0.0
    assert data["config"]["correction"] == "holm"


def test_short_reference_is_used_whole(history: pd.DataFrame) -> None:
    reference = _window(history, "2023-03-01", days=90)
    report = detect_drift(reference, _window(history, "2024-03-01"), features=["age"])
    assert report.seasonal_reference is False
    assert report.season.status == "short_reference"
    assert "spans 89 days" in report.season.message
    assert report.reference_rows == len(reference)


def test_missing_columns_in_current_are_named(history: pd.DataFrame) -> None:
    reference = _reference(history)
    current = _window(history, "2024-05-01").drop(columns=["age", "country"])
    with pytest.raises(ValueError) as excinfo:
        detect_drift(reference, current)
    assert str(excinfo.value) == "current is missing column(s): age, country"


@pytest.mark.parametrize(
    ("reference", "current", "kwargs", "message"),
    [
        (
            pd.DataFrame({"a": [1.0]}),
            pd.DataFrame({"a": [1.0]}),
            {"features": ["b"]},
            "reference is missing column(s): b",
        ),
        (pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": []}), {}, "current has no rows"),
        (
            pd.DataFrame({"a": [1.0, 2.0]}),
            pd.DataFrame({"a": ["x", "y"]}),
            {},
            "feature 'a' is numeric in reference but categorical in current",
        ),
        (
            pd.DataFrame({"a": [1.0, 2.0]}),
            pd.DataFrame({"a": [np.nan, np.nan]}),
            {},
            "current column 'a' has no non-missing values",
        ),
        ([1, 2], pd.DataFrame({"a": [1.0]}), {}, "reference must be a pandas DataFrame, got list"),
    ],
)
def test_bad_input_is_a_clear_value_error(reference, current, kwargs, message) -> None:
    with pytest.raises(ValueError) as excinfo:
        detect_drift(reference, current, **kwargs)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"psi_threshold": -1}, "psi_threshold"),
        ({"pvalue_threshold": 1.5}, "pvalue_threshold"),
        ({"bins": 1}, "bins"),
        ({"drift_share": 2}, "drift_share"),
        ({"season_days": 400}, "season_days"),
        ({"correction": "bonferroni"}, "correction"),
        ({"min_ks": 2}, "min_ks"),
        ({"min_scale_ratio": 0.5}, "min_scale_ratio"),
        ({"recent_share": 1}, "recent_share"),
        ({"season_fallback": "year"}, "season_fallback"),
    ],
)
def test_bad_thresholds_name_the_parameter(kwargs: dict, field: str) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(ValidationError) as excinfo:
        detect_drift(frame, frame, **kwargs)
    assert excinfo.value.errors()[0]["loc"] == (field,)


def test_seasonal_reference_mask_keeps_the_same_calendar_days() -> None:
    stamps = pd.date_range("2023-01-01", "2023-12-31", freq="D")
    reference = pd.DataFrame({"snapshot_date": stamps, "x": np.arange(len(stamps))})
    current = pd.DataFrame({"snapshot_date": pd.to_datetime(["2024-04-09"]), "x": [0]})
    mask = drift.seasonal_reference_mask(reference, current, season_days=3, min_reference_rows=1)
    # the same day of year is enough for one row (0-based day 99: 10 April in 2023)
    assert reference.loc[mask, "snapshot_date"].dt.strftime("%m-%d").tolist() == ["04-10"]
    mask = drift.seasonal_reference_mask(reference, current, season_days=3, min_reference_rows=7)
    # 2024-04-09 is day 100 of a leap year (0-based 99): days 96..102 of 2023 are kept
    assert reference.loc[mask, "snapshot_date"].dt.strftime("%m-%d").tolist() == [
        "04-07",
        "04-08",
        "04-09",
        "04-10",
        "04-11",
        "04-12",
        "04-13",
    ]
    # the window wraps around the new year
    current = pd.DataFrame({"snapshot_date": pd.to_datetime(["2024-01-01"]), "x": [0]})
    mask = drift.seasonal_reference_mask(reference, current, season_days=1, min_reference_rows=3)
    assert reference.loc[mask, "snapshot_date"].dt.strftime("%m-%d").tolist() == [
        "01-01",
        "01-02",
        "12-31",
    ]
    assert drift.seasonal_reference_mask(reference, current, season_days=1) is None


def _mixed(rng: np.random.Generator, n: int) -> pd.DataFrame:
    x = rng.normal(10, 2, n)
    x[rng.random(n) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "skewed": rng.lognormal(0, 1, n),
            "visits": rng.poisson(2, n),
            "plan": rng.choice(["basic", "plus", "gold", "team"], n, p=[0.5, 0.3, 0.15, 0.05]),
        }
    )


def test_false_alarms_stay_under_the_level_at_small_and_large_windows() -> None:
    rng = np.random.default_rng(7)
    alarms = {
        n: sum(detect_drift(_mixed(rng, n), _mixed(rng, n)).drifted for _ in range(30))
        for n in (300, 20_000)
    }
    # alpha 0.01 family-wise: 30 null pairs per size should give no or one alarm
    assert alarms == {300: 0, 20_000: 0}


@pytest.mark.parametrize(
    ("change", "feature", "test"),
    [
        (lambda f, rng: f.assign(x=f["x"] + 0.4), "x", "ks"),
        # same median, 1.6x the spread
        (lambda f, rng: f.assign(x=10 + (f["x"] - 10) * 1.6), "x", "brown_forsythe"),
        (
            lambda f, rng: f.assign(x=f["x"].mask(rng.random(len(f)) < 0.08)),
            "x",
            "missing_rate",
        ),
        (
            lambda f, rng: f.assign(
                plan=f["plan"].where(~((f["plan"] == "basic") & (rng.random(len(f)) < 0.2)), "team")
            ),
            "plan",
            "chi2",
        ),
        (
            lambda f, rng: f.assign(visits=f["visits"] + (rng.random(len(f)) < 0.2)),
            "visits",
            "chi2",
        ),
    ],
    ids=["location", "spread", "missing_surge", "category_shares", "integer_counts"],
)
def test_each_kind_of_drift_is_caught_by_its_test(change, feature, test) -> None:
    rng = np.random.default_rng(3)
    reference, current = _mixed(rng, 5000), change(_mixed(rng, 5000), rng)
    report = detect_drift(reference, current)
    assert report.drifted_features == [feature]
    assert f"{test}@window" in report.features[feature].drifted_tests
    assert report.verdict == "drift"


def test_missing_values_are_compared_not_dropped() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 500})
    current = reference.copy()
    current.loc[current.index[:300], "x"] = np.nan
    result = detect_drift(reference, current).features["x"]
    assert result.missing_reference == 0.0
    assert result.missing_current == pytest.approx(0.15)
    assert result.drifted_tests == ["missing_rate@window"]


def test_column_kinds() -> None:
    frame = pd.DataFrame(
        {
            "f": [0.5, 1.5, 2.5, 3.5],
            "i": [1, 2, 3, 4],
            "i_nan": [1.0, np.nan, 3.0, 4.0],
            "flag": [True, False, True, True],
            "s": ["a", "b", "a", "c"],
        }
    )
    kinds = {name: feature.kind for name, feature in detect_drift(frame, frame).features.items()}
    assert kinds == {
        "f": "numeric",
        "i": "integer",
        "i_nan": "integer",
        "flag": "categorical",
        "s": "categorical",
    }


def test_holm_and_bh_adjustments_match_hand_computation() -> None:
    pvalues = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, made monotone
    assert drift._adjust(pvalues, "holm").tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: p * m / rank, made monotone from the top
    assert drift._adjust(pvalues, "bh").tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_rare_categories_are_pooled_until_chi2_is_valid() -> None:
    ref = pd.Series({"a": 500, "b": 400, "c": 3, "d": 2, "e": 1})
    cur = pd.Series({"a": 50, "b": 45, "c": 1, "f": 1})
    table = drift._pooled_table(ref, cur)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    assert table.sum() == ref.sum() + cur.sum()
    assert expected.min() >= drift.MIN_EXPECTED
    assert table.shape == (2, 2)
    assert drift._pooled_table(pd.Series({"a": 10}), pd.Series({"a": 3})) is None


def test_effect_floors_are_parameters() -> None:
    rng = np.random.default_rng(5)
    reference, current = _mixed(rng, 20_000), _mixed(rng, 20_000)
    current["x"] += 0.3  # 0.15 sd: KS D ~ 0.06
    assert detect_drift(reference, current).drifted_features == ["x"]
    assert detect_drift(reference, current, min_ks=0.1).drifted_features == []
    assert detect_drift(reference, current, psi_threshold=0.2).drifted_features == []


def test_same_season_reference_that_cannot_be_built_is_inconclusive(history) -> None:
    reference = _reference(history)
    current = _window(history, "2024-03-01")
    report = detect_drift(reference, current, min_reference_rows=100_000)
    assert report.verdict == "inconclusive"
    assert report.drifted is False
    assert report.season.status == "too_few_rows"
    assert "fewer than min_reference_rows=100000" in report.message
    assert report.reference_rows == len(reference)
    forced = detect_drift(reference, current, min_reference_rows=100_000, season_fallback="whole")
    assert forced.verdict in {"drift", "no_drift"}
    assert forced.season.status == "too_few_rows"


def test_gradual_drift_is_caught_in_the_recent_slice() -> None:
    rng = np.random.default_rng(11)
    n = 8000
    reference = pd.DataFrame(
        {
            "snapshot_date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(np.sort(rng.integers(0, 90, 40_000)), unit="D"),
            "x": rng.normal(0, 1, 40_000),
        }
    )
    days = np.sort(rng.integers(0, 28, n))
    ramp = np.clip((days - 14) / 14, 0, None) * 0.5  # starts mid-window, 0.5 sd at its end
    current = pd.DataFrame(
        {
            "snapshot_date": pd.Timestamp("2024-04-01") + pd.to_timedelta(days, unit="D"),
            "x": rng.normal(0, 1, n) + ramp,
        }
    )
    report = detect_drift(reference, current)
    assert report.recent_rows > 0
    assert report.drifted_features == ["x"]
    assert "ks@recent" in report.features["x"].drifted_tests
    without = detect_drift(reference, current, recent_share=0)
    assert without.recent_rows == 0
    assert all(test.slice == "window" for test in without.features["x"].tests)
