"""Data drift between a reference window (training data) and a current window.

Per feature, by column kind, two-sample tests from scipy whose power grows with the sample size
and whose false-alarm rate is held at `pvalue_threshold` at every window size:

- numeric and integer: distribution shape (location and scale) with Kolmogorov-Smirnov
  (`ks_2samp`, asymptotic; effect: KS distance D, floor `min_ks`) and spread with
  Brown-Forsythe (`levene(center="median")`; effect: ratio of the mean absolute deviations from
  the median, floor `min_scale_ratio`);
- integer with at most `max_categories` values, and categorical: frequencies with chi²
  (`chi2_contingency`; effect: total variation distance, floor `min_tvd`);
- every column: the missing-value rate with a two-proportion test (chi² on the 2x2 table,
  `fisher_exact` when an expected count is < 5; effect: absolute change of the rate, floor
  `min_missing_change`). Missing values are never dropped silently.

KS p-values are conservative on tied (integer) data, so ties cost power, never false alarms.
Chi² needs expected counts of 5 or more: categories below that are pooled (see `_pooled_table`;
scipy has no pooling of its own).

Multiple testing: all tests of all features (and of the recent slice, below) form one family and
are corrected with Holm's step-down method (`correction="holm"`, the default), which bounds the
probability of ANY false alarm in a window at `pvalue_threshold` (0.01): that is the rate a
paged engineer experiences. Benjamini-Hochberg (`correction="bh"`, scipy's
`false_discovery_control`) bounds the expected share of wrongly flagged features instead; it is
more sensitive when several features drift, and under "nothing drifted" it gives the same window
guarantee.

Effect-size floor: a test counts only when its effect also reaches its floor. On windows of
100k+ rows every p-value is tiny, and the floors keep practically irrelevant differences (a
0.03 standard-deviation shift, a 0.5 pp change of the missing rate) from paging anyone. The
trade-off: a drift smaller than the floor is never reported, however large the window. The
defaults (KS D 0.03 ~ a 0.075 sd location shift of a normal feature; spread +-10 %; 3 pp of
category mass moved; missing rate +-1 pp) sit below the smallest shifts worth a retraining in our
data and well below the PSI 0.2 rule this replaces (~0.45 sd); raise them to alarm only on larger
changes. `psi_threshold` (0 = off) adds the PSI as a further floor for those who want the
classic rule on top. PSI is still computed per feature for the reports and the metrics.

Seasonality: when both frames carry a timestamp and the reference spans at least a year, the
reference is narrowed to the rows whose day of year lies within a margin of a day in the current
window ("same season last year"; no per-feature seasonal model needed, works for categorical
features). The margin is the smallest of 0..`season_days` days that yields
`min_reference_rows` rows: every extra day mixes in other days of the season, which dilutes
sharp events (Black Friday) enough for a sample-size-aware test to see a difference. When
that same-season reference cannot be built (fewer than `min_reference_rows` rows) the detector
says so: `season.status == "too_few_rows"` with a message, and the verdict is `inconclusive`
(drifted False) unless `season_fallback="whole"` asks to compare with the whole reference
anyway. It never switches silently. Other cases are reported in `season` too (disabled, no
timestamp, reference shorter than a year, window covering a whole year): there the whole
reference is the right comparison.

Gradual drift: a ramp that started inside the window is diluted by the window's older rows. When
the current window has a timestamp, its most recent `recent_share` of time is tested as well
(against its own same-season reference), in the same Holm family; a feature drifts when either
the window or its recent slice does (`FeatureDrift.slice` says which). A drift slower than the
window is caught by the window test once its accumulated size passes the floors.

Statistics come from scipy rather than alibi-detect or NannyML: those wrap the same scipy KS and
chi² tests (alibi-detect with a Bonferroni correction, NannyML without a family-wise one) but add
no missing-rate or spread test, no effect floor and no seasonal reference, and they pull heavy
dependencies (TensorFlow/PyTorch extras, pandas < 3) into the pipeline image; bench/drift/
compares them on the same pairs.

PSI and the reference profile (`reference_profile`, `profile_psi`) stay hand-written: the model
server must reproduce the exact same buckets from a small JSON profile, and the computation is a
few vectorised numpy lines. The server's PSI gauge is for dashboards and the canary analysis;
no alert uses it. The serving-side drift alert comes from the drift monitor
(`mlops_platform/pipelines/loop/monitor.py`), which runs `detect_drift_with` with the platform's
`DriftSettings` over the prediction log, the same settings the drift pipelines get
(`DriftSettings.pipeline_arguments`, `check_drift(drift_config=...)`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

PROFILE_VERSION = 1
OTHER = "__other__"
# Floor for empty buckets: PSI is infinite when a bucket is empty on one side, and 1e-4 is the
# usual convention (it caps one empty bucket's contribution at about 0.001-0.1 for typical shares).
PSI_EPSILON = 1e-4
DEFAULT_TIMESTAMP = "snapshot_date"
# Columns that are never features of the churn data (identifier and label).
DEFAULT_EXCLUDE: tuple[str, ...] = ("customer_id", "churned")
# Chi² is trusted when every expected count is at least this (Cochran's rule).
MIN_EXPECTED = 5.0

Kind = Literal["numeric", "integer", "categorical"]
TestName = Literal["ks", "brown_forsythe", "chi2", "missing_rate"]
SeasonStatus = Literal[
    "same_season", "disabled", "no_timestamp", "short_reference", "whole_year", "too_few_rows"
]


class DriftConfig(BaseModel):
    """Thresholds and options of `detect_drift` (validated, so a bad value names its field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pvalue_threshold: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Significance level after the multiple-testing correction: with `holm`, the "
        "probability of any false alarm in a window.",
    )
    correction: Literal["holm", "bh"] = Field(
        default="holm",
        description="Multiple-testing correction over all tests of all features: `holm` "
        "bounds the chance of any false alarm, `bh` (Benjamini-Hochberg) the expected share of "
        "wrongly flagged features (more sensitive when several drift).",
    )
    min_ks: float = Field(
        default=0.03,
        ge=0,
        le=1,
        description="Effect floor of the Kolmogorov-Smirnov test (distance D, 0-1) on numeric "
        "features; 0.03 is about a 0.075 standard-deviation shift.",
    )
    min_scale_ratio: float = Field(
        default=1.1,
        ge=1,
        description="Effect floor of the Brown-Forsythe spread test: ratio of the mean "
        "absolute deviations from the median (1.1 = spread +-10 %).",
    )
    min_tvd: float = Field(
        default=0.03,
        ge=0,
        le=1,
        description="Effect floor of the chi-squared test on categorical (and few-valued "
        "integer) features: total variation distance, the share of mass moved (0.03 = 3 pp).",
    )
    min_missing_change: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Effect floor of the missing-rate test: absolute change of a column's "
        "missing share (0.01 = 1 percentage point).",
    )
    psi_threshold: float = Field(
        default=0.0,
        ge=0,
        description="Population Stability Index a feature must also reach to count as "
        "drifted (the classic rule is 0.2); 0 turns this extra floor off.",
    )
    bins: int = Field(
        default=10,
        ge=2,
        le=1000,
        description="Quantile buckets of the reference used for the PSI of numeric features.",
    )
    min_drifted_features: int = Field(
        default=1, ge=1, description="Drifted features needed for the window to drift."
    )
    drift_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of features (0-1) that must drift for the window to drift, on top "
        "of `min_drifted_features`; 0: no share required.",
    )
    season_days: int | None = Field(
        default=7,
        ge=0,
        le=183,
        description="Largest margin, in days of the year, of the same-season reference "
        "(the reference narrowed to the current window's days last year, used when it spans a "
        "year); null turns seasonality off.",
    )
    season_fallback: Literal["inconclusive", "whole"] = Field(
        default="inconclusive",
        description="When no same-season reference of `min_reference_rows` rows can be "
        "built: `inconclusive` withholds the verdict, `whole` compares with the whole reference.",
    )
    timestamp: str = Field(
        default=DEFAULT_TIMESTAMP,
        description="Column holding each row's time: the seasonal key and the recent slice; "
        "never tested as a feature.",
    )
    min_reference_rows: int = Field(
        default=1000,
        ge=1,
        description="Fewest reference rows a same-season reference needs (else "
        "`season_fallback` applies).",
    )
    recent_share: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="The most recent share of the window's time span, tested as well to "
        "catch a ramp that began inside the window; 0 turns it off.",
    )
    min_recent_rows: int = Field(
        default=200, ge=2, description="Fewest rows the recent slice needs to be tested."
    )
    max_categories: int = Field(
        default=50,
        ge=1,
        description="Integer columns with at most this many distinct values are also tested "
        "as categories; a categorical column's PSI and reference profile keep this many most "
        "frequent categories and pool the rest as `__other__`.",
    )


class DriftSettings(BaseModel):
    """The drift check as the platform runs it: one model shared by the KFP drift pipelines
    (`pipeline_arguments`) and the serving-side drift monitor (`mlops_platform/pipelines/loop/monitor.py`),
    so the alert and the pipeline the alert starts take the same decision on the same window.

    `window_hours`: the window, the last complete hours of the prediction log (the pipeline's
    `hours`); `interval_minutes`: how often the monitor re-checks it (its schedule);
    `reference_alias`: whose training data is the reference (`champion_reference`); `detector`:
    the tests' thresholds, floors and the seasonal key (`season_days`, `timestamp`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_hours: int = Field(
        default=168,
        gt=0,
        le=24 * 366,
        description="The window checked: the last complete hours of the prediction log (the "
        "drift pipeline's `hours`); 168 = one week.",
    )
    interval_minutes: float = Field(
        default=15,
        gt=0,
        le=24 * 60,
        description="How often the drift monitor re-checks the window, in minutes.",
    )
    reference_alias: str = Field(
        default="champion",
        min_length=1,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Registry alias of the model version whose training data is the reference.",
    )
    detector: DriftConfig = Field(
        default_factory=DriftConfig,
        description="The detector's significance level, effect floors and seasonal settings.",
    )

    def pipeline_arguments(self) -> dict[str, str | int]:
        """The windows_drift pipeline parameters that carry these settings."""
        return {
            "hours": self.window_hours,
            "reference_alias": self.reference_alias,
            "drift_config": self.detector.model_dump_json(),
        }


def parse_config(text: str, where: str = "drift_config") -> DriftConfig | None:
    """A `DriftConfig` from its JSON (`DriftSettings.pipeline_arguments`), None for empty text;
    a bad value is a ValueError naming `where` and the field."""
    if not text:
        return None
    from pydantic import ValidationError

    try:
        return DriftConfig.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(f"{where}: {exc}") from None


class TestResult(BaseModel):
    """One test of one feature; `pvalue_adjusted` is after the correction across all tests."""

    test: TestName
    slice: Literal["window", "recent"]
    statistic: float
    pvalue: float
    pvalue_adjusted: float
    effect: float
    min_effect: float
    drifted: bool


class FeatureDrift(BaseModel):
    """Drift figures of one feature: the deciding test (the drifted one with the smallest
    adjusted p-value, else the smallest adjusted p-value) and every test behind it."""

    kind: Kind
    test: TestName
    slice: Literal["window", "recent"]
    psi: float
    statistic: float
    pvalue: float
    effect: float
    missing_reference: float
    missing_current: float
    drifted: bool
    drifted_tests: list[str]
    tests: list[TestResult]


class SeasonInfo(BaseModel):
    """How the reference was chosen (module doc); `message` says why in words."""

    status: SeasonStatus
    message: str


class DriftReport(BaseModel):
    """Outcome of `detect_drift`; `to_dict()` is JSON-able."""

    drifted: bool
    verdict: Literal["drift", "no_drift", "inconclusive"]
    message: str
    n_drifted: int
    share_drifted: float
    drifted_features: list[str]
    features: dict[str, FeatureDrift]
    reference_rows: int
    current_rows: int
    recent_rows: int
    seasonal_reference: bool
    season: SeasonInfo
    n_tests: int
    config: DriftConfig

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _check_frame(frame: pd.DataFrame, role: str, columns: Iterable[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{role} must be a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise ValueError(f"{role} has no rows")
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise ValueError(f"{role} is missing column(s): {', '.join(missing)}")


def _default_features(reference: pd.DataFrame, timestamp: str) -> list[str]:
    return [
        str(name)
        for name in reference.columns
        if name != timestamp
        and name not in DEFAULT_EXCLUDE
        and not pd.api.types.is_datetime64_any_dtype(reference[name])
    ]


def _all_values(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _numeric_values(series: pd.Series, role: str) -> np.ndarray:
    values = _all_values(series)
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise ValueError(f"{role} column {series.name!r} has no non-missing values")
    return values


def _quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    levels = np.arange(1, bins) / bins
    return np.unique(np.quantile(values, levels))


def _bucket_fractions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    buckets = np.searchsorted(edges, values, side="right")
    counts = np.bincount(buckets, minlength=edges.size + 1)
    return counts / values.size


def _category_counts(series: pd.Series) -> pd.Series:
    counts = series.astype("string").value_counts(dropna=True)
    counts.index = counts.index.astype(str)
    return counts[counts > 0]


def _category_fractions(
    counts: pd.Series, known: Sequence[str] | None, max_categories: int
) -> dict[str, float]:
    """Shares per category; categories outside `known` (or beyond the top ones) go to __other__."""
    total = float(counts.sum())
    if known is None:
        known = list(counts.sort_values(ascending=False, kind="stable").index[:max_categories])
    fractions = {name: float(counts.get(name, 0)) / total for name in known}
    fractions[OTHER] = float(counts[~counts.index.isin(list(known))].sum()) / total
    return fractions


def psi(
    reference_fractions: Sequence[float] | np.ndarray,
    current_fractions: Sequence[float] | np.ndarray,
) -> float:
    """Population Stability Index: sum of (c - r) * ln(c / r) over buckets, shares floored."""
    ref = np.maximum(np.asarray(reference_fractions, dtype=np.float64), PSI_EPSILON)
    cur = np.maximum(np.asarray(current_fractions, dtype=np.float64), PSI_EPSILON)
    if ref.shape != cur.shape:
        raise ValueError(f"PSI needs the same buckets on both sides, got {ref.size} and {cur.size}")
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def reference_profile(
    df: pd.DataFrame,
    features: Sequence[str] | None = None,
    bins: int = 10,
    *,
    max_categories: int = 50,
    timestamp: str = DEFAULT_TIMESTAMP,
) -> dict[str, Any]:
    """JSON-able training reference, the contract with the model server (live PSI).

    Numeric: `edges` are the interior quantile cut points (ascending, deduplicated); the bucket of
    x is `numpy.searchsorted(edges, x, side="right")`, so `fractions` has `len(edges) + 1` shares.
    Categorical: share per category (the `max_categories` most frequent) plus `__other__`, where
    unseen categories fall at serving time. Missing values are left out of the shares.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"reference must be a pandas DataFrame, got {type(df).__name__}")
    names = list(features) if features is not None else _default_features(df, timestamp)
    _check_frame(df, "reference", names)
    profile: dict[str, Any] = {}
    for name in names:
        series = df[name]
        if _is_numeric(series):
            values = _numeric_values(series, "reference")
            edges = _quantile_edges(values, bins)
            profile[name] = {
                "kind": "numeric",
                "edges": [float(edge) for edge in edges],
                "fractions": [float(share) for share in _bucket_fractions(values, edges)],
            }
        else:
            counts = _category_counts(series)
            if counts.empty:
                raise ValueError(f"reference column {name!r} has no non-missing values")
            profile[name] = {
                "kind": "categorical",
                "fractions": _category_fractions(counts, None, max_categories),
            }
    return {"version": PROFILE_VERSION, "features": profile}


def _day_of_year(series: pd.Series) -> np.ndarray:
    return pd.to_datetime(series).dt.day_of_year.to_numpy() - 1


def seasonal_reference(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    season_days: int | None = 7,
    timestamp: str = DEFAULT_TIMESTAMP,
    min_reference_rows: int = 1000,
) -> tuple[np.ndarray | None, SeasonInfo]:
    """Mask of the `reference` rows in the same season as `current`, and why (module doc).

    The mask is None unless the status is `same_season`; with `too_few_rows` the same-season
    reference could not be built, and the caller must not pretend it was.
    """
    if season_days is None:
        return None, SeasonInfo(status="disabled", message="seasonal reference disabled")
    if timestamp not in reference.columns or timestamp not in current.columns:
        side = "reference" if timestamp not in reference.columns else "current"
        return None, SeasonInfo(
            status="no_timestamp",
            message=f"{side} has no {timestamp!r} column: compared with the whole reference",
        )
    ref_time = pd.to_datetime(reference[timestamp])
    span = ref_time.max() - ref_time.min()
    if span < pd.Timedelta(days=364):
        return None, SeasonInfo(
            status="short_reference",
            message=f"reference spans {span.days} days (< 1 year), so it holds no same season "
            "of an earlier year: compared with the whole reference",
        )
    days = np.arange(366)
    current_days = np.unique(_day_of_year(current[timestamp]))
    # Distance of every day of year to the nearest day of the current window, around a 365-day
    # circle (31 December is one day from 1 January; leap-year days are at most one day off).
    gap = np.abs(days[:, None] - current_days[None, :])
    distance = np.minimum(gap, 365 - gap).min(axis=1)
    if (distance <= season_days).all():
        return None, SeasonInfo(
            status="whole_year",
            message="the current window covers the whole year: compared with the whole reference",
        )
    ref_distance = distance[_day_of_year(reference[timestamp])]
    # The narrowest margin that yields enough rows: the exact calendar days when there are
    # enough, since every extra day of margin mixes in other days of the season (a +-7 day
    # margin around a Black Friday week dilutes its peak and makes a real KS difference).
    rows_within = np.cumsum(np.bincount(ref_distance, minlength=season_days + 1))
    enough = np.flatnonzero(rows_within[: season_days + 1] >= min_reference_rows)
    if enough.size == 0:
        rows = int(rows_within[season_days])
        return None, SeasonInfo(
            status="too_few_rows",
            message=f"same-season reference (+-{season_days} days of year) has {rows} rows, "
            f"fewer than min_reference_rows={min_reference_rows}: no same-season comparison "
            "is possible",
        )
    margin = int(enough[0])
    mask = ref_distance <= margin
    return mask, SeasonInfo(
        status="same_season",
        message=f"reference narrowed to the same season (the window's days of year "
        f"+-{margin} days, at most +-{season_days}): {int(mask.sum())} of {len(reference)} rows",
    )


def seasonal_reference_mask(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    season_days: int | None = 7,
    timestamp: str = DEFAULT_TIMESTAMP,
    min_reference_rows: int = 1000,
) -> np.ndarray | None:
    """Boolean mask of the same-season `reference` rows, None when there is none to use
    (`seasonal_reference` says why)."""
    mask, _ = seasonal_reference(
        reference,
        current,
        season_days=season_days,
        timestamp=timestamp,
        min_reference_rows=min_reference_rows,
    )
    return mask


def _kind(series: pd.Series) -> Kind:
    if not _is_numeric(series):
        return "categorical"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    values = _all_values(series)
    values = values[~np.isnan(values)]
    # Integers stored as floats (a missing value turns an int column into float64).
    if values.size and np.all(values == np.round(values)):
        return "integer"
    return "numeric"


class _Column:
    """One side of one feature, prepared once and shared by the window and recent tests."""

    def __init__(self, series: pd.Series, kind: Kind) -> None:
        self.rows = len(series)
        if kind == "categorical":
            self.missing = int(series.isna().sum())
            self.counts: pd.Series | None = _category_counts(series)
            self.values: np.ndarray | None = None
        else:
            values = _all_values(series)
            present = ~np.isnan(values)
            self.missing = int(values.size - present.sum())
            self.values = values[present]
            self.counts = None

    @property
    def present(self) -> int:
        return self.rows - self.missing


def _pooled_table(ref_counts: pd.Series, cur_counts: pd.Series) -> np.ndarray | None:
    """2 x k contingency table whose expected counts are all >= MIN_EXPECTED.

    Categories too rare for that are pooled into one cell (and that cell into the rarest kept
    category when it is still too small). Written here because scipy's chi2_contingency has no
    pooling; None when fewer than two cells remain (no test possible).
    """
    categories = ref_counts.index.union(cur_counts.index)
    ref = ref_counts.reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
    cur = cur_counts.reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
    total = ref + cur
    n_ref, n_cur = ref.sum(), cur.sum()
    smallest_side = min(n_ref, n_cur)
    # expected count of a cell = column total * side total / grand total
    enough = total * smallest_side / (n_ref + n_cur) >= MIN_EXPECTED
    table = [ref[enough], cur[enough]]
    rare_ref, rare_cur = ref[~enough].sum(), cur[~enough].sum()
    kept = np.vstack(table)
    if rare_ref + rare_cur > 0:
        rare_expected = (rare_ref + rare_cur) * smallest_side / (n_ref + n_cur)
        if rare_expected >= MIN_EXPECTED or kept.shape[1] == 0:
            kept = np.hstack([kept, [[rare_ref], [rare_cur]]])
        else:
            smallest = int(np.argmin(kept.sum(axis=0)))
            kept[:, smallest] += [rare_ref, rare_cur]
    if kept.shape[1] < 2:
        return None
    return kept


def _chi2(table: np.ndarray | None) -> tuple[float, float]:
    from scipy import stats

    if table is None:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def _missing_test(ref: _Column, cur: _Column) -> tuple[float, float, float]:
    """Two-proportion test of the missing rates: statistic, p-value, rate change."""
    from scipy import stats

    change = cur.missing / cur.rows - ref.missing / ref.rows
    if ref.missing + cur.missing == 0 or ref.present + cur.present == 0:
        return 0.0, 1.0, change
    table = np.array([[ref.missing, ref.present], [cur.missing, cur.present]], dtype=np.float64)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    if expected.min() < MIN_EXPECTED:
        result = stats.fisher_exact(table.astype(np.int64))
        return float(result.statistic), float(result.pvalue), change
    statistic, pvalue = _chi2(table)
    return statistic, pvalue, change


def _mean_abs_dev(values: np.ndarray) -> float:
    return float(np.mean(np.abs(values - np.median(values))))


def _feature_tests(
    kind: Kind, ref: _Column, cur: _Column, config: DriftConfig, slice_name: str
) -> list[dict[str, Any]]:
    """Raw tests of one feature on one slice: dicts completed by the correction."""
    from scipy import stats

    tests: list[dict[str, Any]] = []

    def add(test: str, statistic: float, pvalue: float, effect: float, floor: float) -> None:
        pvalue = 1.0 if not np.isfinite(pvalue) else float(pvalue)
        tests.append(
            {
                "test": test,
                "slice": slice_name,
                "statistic": float(statistic) if np.isfinite(statistic) else 0.0,
                "pvalue": pvalue,
                "effect": float(effect),
                "min_effect": float(floor),
            }
        )

    statistic, pvalue, change = _missing_test(ref, cur)
    add("missing_rate", statistic, pvalue, abs(change), config.min_missing_change)
    if cur.present == 0 or ref.present == 0:
        return tests
    if kind == "categorical":
        ref_counts, cur_counts = ref.counts, cur.counts
    else:
        assert ref.values is not None and cur.values is not None  # set for numeric kinds
        result = stats.ks_2samp(ref.values, cur.values, method="asymp")
        add("ks", result.statistic, result.pvalue, result.statistic, config.min_ks)
        ref_spread, cur_spread = _mean_abs_dev(ref.values), _mean_abs_dev(cur.values)
        if ref_spread > 0 and cur_spread > 0 and min(ref.present, cur.present) >= 2:
            levene = stats.levene(ref.values, cur.values, center="median")
            ratio = cur_spread / ref_spread
            add(
                "brown_forsythe",
                # scipy-stubs type an array for N-D samples; these are 1-D: scalars
                levene.statistic,  # type: ignore[arg-type]
                levene.pvalue,  # type: ignore[arg-type]
                max(ratio, 1 / ratio),
                config.min_scale_ratio,
            )
        ref_counts = cur_counts = None
        if kind == "integer":
            distinct = np.unique(ref.values)
            if distinct.size <= config.max_categories:
                ref_counts = pd.Series(ref.values).value_counts()
                cur_counts = pd.Series(cur.values).value_counts()
    if ref_counts is not None and cur_counts is not None:
        statistic, pvalue = _chi2(_pooled_table(ref_counts, cur_counts))
        index = ref_counts.index.union(cur_counts.index)
        ref_share = ref_counts.reindex(index, fill_value=0) / max(ref_counts.sum(), 1)
        cur_share = cur_counts.reindex(index, fill_value=0) / max(cur_counts.sum(), 1)
        tvd = 0.5 * float(np.abs(ref_share - cur_share).sum())
        add("chi2", statistic, pvalue, tvd, config.min_tvd)
    return tests


def _adjust(pvalues: np.ndarray, correction: str) -> np.ndarray:
    """Holm step-down (a few lines; scipy only ships BH/BY) or Benjamini-Hochberg (scipy)."""
    from scipy import stats

    if pvalues.size == 0:
        return pvalues
    if correction == "bh":
        return stats.false_discovery_control(pvalues, method="bh")
    order = np.argsort(pvalues, kind="stable")
    m = pvalues.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * pvalues[order])
    out = np.empty_like(pvalues)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _feature_psi(kind: Kind, ref: _Column, cur: _Column, config: DriftConfig) -> float:
    if ref.present == 0 or cur.present == 0:
        return 0.0
    if kind == "categorical":
        assert ref.counts is not None and cur.counts is not None  # set for categorical kinds
        known = list(
            ref.counts.sort_values(ascending=False, kind="stable").index[: config.max_categories]
        )
        ref_shares = _category_fractions(ref.counts, known, config.max_categories)
        cur_shares = _category_fractions(cur.counts, known, config.max_categories)
        return psi(list(ref_shares.values()), list(cur_shares.values()))
    assert ref.values is not None and cur.values is not None  # set for numeric kinds
    edges = _quantile_edges(ref.values, config.bins)
    return psi(_bucket_fractions(ref.values, edges), _bucket_fractions(cur.values, edges))


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    psi_threshold: float = 0.0,
    pvalue_threshold: float = 0.01,
    bins: int = 10,
    min_drifted_features: int = 1,
    drift_share: float = 0.0,
    season_days: int | None = 7,
    timestamp: str = DEFAULT_TIMESTAMP,
    min_reference_rows: int = 1000,
    max_categories: int = 50,
    **options: Any,
) -> DriftReport:
    """Compare `current` with `reference` feature by feature (see the module doc).

    `features` defaults to every column of `reference` except the timestamp, datetime columns
    and `customer_id` / `churned`. Further `DriftConfig` fields (`correction`, `min_ks`,
    `min_scale_ratio`, `min_tvd`, `min_missing_change`, `season_fallback`, `recent_share`,
    `min_recent_rows`) are keyword options. A column missing from either frame, an empty frame or
    a feature numeric on one side only is a ValueError naming it; bad thresholds raise a
    pydantic ValidationError (a ValueError) naming the parameter.
    """
    config = DriftConfig(
        psi_threshold=psi_threshold,
        pvalue_threshold=pvalue_threshold,
        bins=bins,
        min_drifted_features=min_drifted_features,
        drift_share=drift_share,
        season_days=season_days,
        timestamp=timestamp,
        min_reference_rows=min_reference_rows,
        max_categories=max_categories,
        **options,
    )
    return detect_drift_with(reference, current, config, features=features)


def detect_drift_with(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    *,
    features: Sequence[str] | None = None,
) -> DriftReport:
    """`detect_drift` with a ready `DriftConfig` (the platform's `DriftSettings.detector`)."""
    timestamp = config.timestamp
    if not isinstance(reference, pd.DataFrame):
        raise ValueError(f"reference must be a pandas DataFrame, got {type(reference).__name__}")
    names = list(features) if features is not None else _default_features(reference, timestamp)
    if not names:
        raise ValueError("no features to compare: pass features= or give reference some columns")
    _check_frame(reference, "reference", names)
    _check_frame(current, "current", names)
    for name in names:
        if _is_numeric(reference[name]) != _is_numeric(current[name]):
            ref_kind = "numeric" if _is_numeric(reference[name]) else "categorical"
            cur_kind = "numeric" if _is_numeric(current[name]) else "categorical"
            raise ValueError(
                f"feature {name!r} is {ref_kind} in reference but {cur_kind} in current"
            )
    for role, frame in (("reference", reference), ("current", current)):
        for name in names:
            if frame[name].isna().all():
                raise ValueError(f"{role} column {name!r} has no non-missing values")

    season_args: dict[str, Any] = {
        "season_days": config.season_days,
        "timestamp": config.timestamp,
        "min_reference_rows": config.min_reference_rows,
    }
    mask, season = seasonal_reference(reference, current, **season_args)
    base = reference.loc[mask] if mask is not None else reference

    # The recent slice of the window (gradual drift), with its own same-season reference.
    slices: list[tuple[str, pd.DataFrame, pd.DataFrame]] = [("window", base, current)]
    recent_rows = 0
    if config.recent_share > 0 and config.timestamp in current.columns:
        stamps = pd.to_datetime(current[config.timestamp])
        cutoff = stamps.max() - (stamps.max() - stamps.min()) * config.recent_share
        recent = current.loc[(stamps > cutoff).to_numpy()]
        if config.min_recent_rows <= len(recent) < len(current):
            recent_mask, recent_season = seasonal_reference(reference, recent, **season_args)
            if recent_season.status != "too_few_rows":
                recent_base = reference.loc[recent_mask] if recent_mask is not None else reference
                slices.append(("recent", recent_base, recent))
                recent_rows = len(recent)

    kinds = {name: _kind(reference[name]) for name in names}
    raw: list[tuple[str, dict[str, Any]]] = []
    psis: dict[str, float] = {}
    missing: dict[str, tuple[float, float]] = {}
    for slice_name, ref_frame, cur_frame in slices:
        for name in names:
            kind = kinds[name]
            ref_col, cur_col = _Column(ref_frame[name], kind), _Column(cur_frame[name], kind)
            if slice_name == "window":
                psis[name] = _feature_psi(kind, ref_col, cur_col, config)
                missing[name] = (ref_col.missing / ref_col.rows, cur_col.missing / cur_col.rows)
            raw += [
                (name, test) for test in _feature_tests(kind, ref_col, cur_col, config, slice_name)
            ]

    adjusted = _adjust(np.array([test["pvalue"] for _, test in raw]), config.correction)
    per_feature: dict[str, list[TestResult]] = {name: [] for name in names}
    for (name, test), p_adj in zip(raw, adjusted, strict=True):
        drifted = (
            p_adj < config.pvalue_threshold
            and test["effect"] >= test["min_effect"]
            and psis[name] >= config.psi_threshold
        )
        per_feature[name].append(
            TestResult(**test, pvalue_adjusted=float(p_adj), drifted=bool(drifted))
        )

    results: dict[str, FeatureDrift] = {}
    for name in names:
        tests = per_feature[name]
        hits = [test for test in tests if test.drifted]
        decider = min(hits or tests, key=lambda test: test.pvalue_adjusted)
        results[name] = FeatureDrift(
            kind=kinds[name],
            test=decider.test,
            slice=decider.slice,
            psi=psis[name],
            statistic=decider.statistic,
            pvalue=decider.pvalue_adjusted,
            effect=decider.effect,
            missing_reference=missing[name][0],
            missing_current=missing[name][1],
            drifted=bool(hits),
            drifted_tests=sorted({f"{test.test}@{test.slice}" for test in hits}),
            tests=tests,
        )

    drifted_names = [name for name, result in results.items() if result.drifted]
    share = len(drifted_names) / len(names)
    found = len(drifted_names) >= config.min_drifted_features and share >= config.drift_share
    if season.status == "too_few_rows" and config.season_fallback == "inconclusive":
        verdict: Literal["drift", "no_drift", "inconclusive"]
        verdict, message = (
            "inconclusive",
            f"{season.message}; verdict withheld (season_fallback='inconclusive'); the "
            "per-feature figures compare with the whole reference for information only",
        )
    else:
        verdict = "drift" if found else "no_drift"
        message = (
            f"{len(drifted_names)} of {len(names)} features drifted "
            f"({'>=' if found else '<'} the {config.min_drifted_features} needed); "
            f"{season.message}"
        )
    return DriftReport(
        drifted=verdict == "drift",
        verdict=verdict,
        message=message,
        n_drifted=len(drifted_names),
        share_drifted=share,
        drifted_features=drifted_names,
        features=results,
        reference_rows=len(base),
        current_rows=len(current),
        recent_rows=recent_rows,
        seasonal_reference=mask is not None,
        season=season,
        n_tests=len(raw),
        config=config,
    )


def profile_psi(profile: dict[str, Any], current: pd.DataFrame) -> dict[str, float]:
    """PSI per feature of `current` against a `reference_profile` (what the server computes)."""
    if profile.get("version") != PROFILE_VERSION:
        raise ValueError(f"profile version must be {PROFILE_VERSION}, got {profile.get('version')}")
    specs: dict[str, Any] = profile["features"]
    _check_frame(current, "current", specs)
    result: dict[str, float] = {}
    for name, spec in specs.items():
        if spec["kind"] == "numeric":
            values = _numeric_values(current[name], "current")
            shares = _bucket_fractions(values, np.asarray(spec["edges"], dtype=np.float64))
            result[name] = psi(spec["fractions"], shares)
        else:
            known = [category for category in spec["fractions"] if category != OTHER]
            counts = _category_counts(current[name])
            category_shares = _category_fractions(counts, known, len(known) or 1)
            result[name] = psi(list(spec["fractions"].values()), list(category_shares.values()))
    return result


__all__ = [
    "OTHER",
    "PROFILE_VERSION",
    "DriftConfig",
    "DriftReport",
    "DriftSettings",
    "FeatureDrift",
    "SeasonInfo",
    "TestResult",
    "detect_drift",
    "detect_drift_with",
    "parse_config",
    "profile_psi",
    "psi",
    "reference_profile",
    "seasonal_reference",
    "seasonal_reference_mask",
]
