"""Data drift between a reference window (training data) and a current window.

Per feature we compute the Population Stability Index (PSI) on reference-quantile buckets and a
two-sample test: Kolmogorov-Smirnov for numeric features, chi-squared on the category counts for
categorical ones (both from scipy). A feature drifts only when BOTH hold:

- the test rejects "same distribution" (`pvalue < pvalue_threshold`), so small windows do not
  alarm on sampling noise, and
- the PSI reaches `psi_threshold`, an effect size: on windows of 100k+ rows every p-value is tiny,
  and the PSI guard keeps trivial, statistically significant shifts from raising alarms.

The window drifts when at least `min_drifted_features` features (and at least `drift_share` of
them) drift.

Seasonality: e-commerce behaviour swings every year (December peak, June trough), so a December
window compared with a whole-year reference always looks drifted. When both frames carry a
timestamp and the reference spans at least a year, the reference is narrowed to the rows whose
day of year lies within `season_days` of a day in the current window ("same season last year").
We chose this over deseasonalising because it needs no per-feature seasonal model, works the same
for categorical features, and keeps PSI/KS interpretable as "compared with the same time last
year". The default of 7 days keeps a few thousand reference rows per year of history yet does not
dilute sharp events: with 45 days a Black Friday window reads PSI 0.25 on ad impressions against
a reference that mostly holds ordinary autumn weeks; with 7 days it reads 0.05. When the narrowed
reference is too small (< `min_reference_rows`) the full reference is used and the report says so
(`seasonal_reference=False`).

PSI and the reference profile are computed here rather than with a drift library because the
model server must reproduce the exact same buckets from a small JSON profile
(`reference_profile`), and the whole computation is a few vectorised numpy lines.
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


class DriftConfig(BaseModel):
    """Thresholds and options of `detect_drift` (validated, so a bad value names its field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi_threshold: float = Field(default=0.2, gt=0)
    pvalue_threshold: float = Field(default=0.01, gt=0, lt=1)
    bins: int = Field(default=10, ge=2, le=1000)
    min_drifted_features: int = Field(default=1, ge=1)
    drift_share: float = Field(default=0.0, ge=0, le=1)
    season_days: int | None = Field(default=7, ge=0, le=183)
    timestamp: str = DEFAULT_TIMESTAMP
    min_reference_rows: int = Field(default=1000, ge=1)
    max_categories: int = Field(default=50, ge=1)


class FeatureDrift(BaseModel):
    """Drift figures of one feature."""

    kind: Literal["numeric", "categorical"]
    test: Literal["ks", "chi2"]
    psi: float
    statistic: float
    pvalue: float
    drifted: bool


class DriftReport(BaseModel):
    """Outcome of `detect_drift`; `to_dict()` is JSON-able."""

    drifted: bool
    n_drifted: int
    share_drifted: float
    drifted_features: list[str]
    features: dict[str, FeatureDrift]
    reference_rows: int
    current_rows: int
    seasonal_reference: bool
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


def _numeric_values(series: pd.Series, role: str) -> np.ndarray:
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
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


def psi(reference_fractions: Sequence[float], current_fractions: Sequence[float]) -> float:
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


def seasonal_reference_mask(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    season_days: int | None = 7,
    timestamp: str = DEFAULT_TIMESTAMP,
    min_reference_rows: int = 1000,
) -> np.ndarray | None:
    """Boolean mask of the `reference` rows in the same season as `current` (module doc).

    None when the narrowing does not apply: no timestamp on either side, `season_days` None, a
    reference spanning less than a year, a current window covering the whole year, or fewer than
    `min_reference_rows` matching rows.
    """
    if season_days is None or timestamp not in reference.columns:
        return None
    if timestamp not in current.columns:
        return None
    ref_time = pd.to_datetime(reference[timestamp])
    if (ref_time.max() - ref_time.min()) < pd.Timedelta(days=364):
        return None
    allowed = np.zeros(366, dtype=bool)
    days = np.arange(366)
    for doy in np.unique(_day_of_year(current[timestamp])):
        distance = np.abs(days - doy)
        # Distance around a 365-day circle, so 31 December is one day from 1 January (leap-year
        # days are at most one day off, well inside any useful `season_days`).
        allowed |= np.minimum(distance, 365 - distance) <= season_days
    if allowed.all():
        return None
    mask = allowed[_day_of_year(reference[timestamp])]
    if int(mask.sum()) < min_reference_rows:
        return None
    return mask


def _numeric_drift(ref: pd.Series, cur: pd.Series, config: DriftConfig) -> FeatureDrift:
    from scipy import stats

    ref_values = _numeric_values(ref, "reference")
    cur_values = _numeric_values(cur, "current")
    edges = _quantile_edges(ref_values, config.bins)
    value = psi(_bucket_fractions(ref_values, edges), _bucket_fractions(cur_values, edges))
    # The asymptotic distribution is accurate at the window sizes we see and avoids the exact
    # method's cost on large windows.
    test = stats.ks_2samp(ref_values, cur_values, method="asymp")
    return _feature("numeric", "ks", value, float(test.statistic), float(test.pvalue), config)


def _categorical_drift(ref: pd.Series, cur: pd.Series, config: DriftConfig) -> FeatureDrift:
    from scipy import stats

    ref_counts = _category_counts(ref)
    cur_counts = _category_counts(cur)
    if ref_counts.empty or cur_counts.empty:
        role = "reference" if ref_counts.empty else "current"
        raise ValueError(f"{role} column {ref.name!r} has no non-missing values")
    known = list(
        ref_counts.sort_values(ascending=False, kind="stable").index[: config.max_categories]
    )
    ref_shares = _category_fractions(ref_counts, known, config.max_categories)
    cur_shares = _category_fractions(cur_counts, known, config.max_categories)
    value = psi(list(ref_shares.values()), list(cur_shares.values()))
    categories = sorted(set(ref_counts.index) | set(cur_counts.index))
    table = np.array(
        [
            [ref_counts.get(name, 0) for name in categories],
            [cur_counts.get(name, 0) for name in categories],
        ],
        dtype=np.float64,
    )
    if len(categories) < 2:
        statistic, pvalue = 0.0, 1.0
    else:
        result = stats.chi2_contingency(table, correction=False)
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    return _feature("categorical", "chi2", value, statistic, pvalue, config)


def _feature(
    kind: Literal["numeric", "categorical"],
    test: Literal["ks", "chi2"],
    psi_value: float,
    statistic: float,
    pvalue: float,
    config: DriftConfig,
) -> FeatureDrift:
    drifted = pvalue < config.pvalue_threshold and psi_value >= config.psi_threshold
    return FeatureDrift(
        kind=kind,
        test=test,
        psi=psi_value,
        statistic=statistic,
        pvalue=pvalue,
        drifted=bool(drifted),
    )


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    psi_threshold: float = 0.2,
    pvalue_threshold: float = 0.01,
    bins: int = 10,
    min_drifted_features: int = 1,
    drift_share: float = 0.0,
    season_days: int | None = 7,
    timestamp: str = DEFAULT_TIMESTAMP,
    min_reference_rows: int = 1000,
    max_categories: int = 50,
) -> DriftReport:
    """Compare `current` with `reference` feature by feature (see the module doc).

    `features` defaults to every column of `reference` except the timestamp, datetime columns
    and `customer_id` / `churned`. A column missing from either frame, an empty frame or a
    feature numeric on one side only is a ValueError naming it; bad thresholds raise a
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
    )
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

    mask = seasonal_reference_mask(
        reference,
        current,
        season_days=config.season_days,
        timestamp=config.timestamp,
        min_reference_rows=config.min_reference_rows,
    )
    seasonal = mask is not None
    base = reference.loc[mask] if seasonal else reference

    results: dict[str, FeatureDrift] = {}
    for name in names:
        if _is_numeric(base[name]):
            results[name] = _numeric_drift(base[name], current[name], config)
        else:
            results[name] = _categorical_drift(base[name], current[name], config)

    drifted_names = [name for name, result in results.items() if result.drifted]
    share = len(drifted_names) / len(names)
    verdict = len(drifted_names) >= config.min_drifted_features and share >= config.drift_share
    return DriftReport(
        drifted=verdict,
        n_drifted=len(drifted_names),
        share_drifted=share,
        drifted_features=drifted_names,
        features=results,
        reference_rows=len(base),
        current_rows=len(current),
        seasonal_reference=seasonal,
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
            shares = _category_fractions(counts, known, len(known) or 1)
            result[name] = psi(list(spec["fractions"].values()), list(shares.values()))
    return result


__all__ = [
    "OTHER",
    "PROFILE_VERSION",
    "DriftConfig",
    "DriftReport",
    "FeatureDrift",
    "detect_drift",
    "profile_psi",
    "psi",
    "reference_profile",
    "seasonal_reference_mask",
]
