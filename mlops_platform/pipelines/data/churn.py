"""Deterministic synthetic e-commerce churn data (seed document, section 4.1).

One row is one customer snapshot taken on `snapshot_date`; `churned` says whether that customer
churns within the following 90 days. The 47 features fall into four groups (demographics,
behaviour, temporal, marketing) and are noisy views of a few hidden customer traits
(engagement, satisfaction, price sensitivity, disengagement momentum, tenure). The label is drawn
from a logistic model of those hidden traits, so a model that only sees the features reaches a
realistic, imperfect ROC AUC (about 0.85 with gradient boosting) at about 15% positives.

Time shapes the data twice: a yearly seasonality (December peak, a Black Friday bump, a June
trough) on shopping activity, and a slow trend (mobile and app adoption, order values, ads) over
the three years. Both are part of normal life and must not be read as drift.

Drift is injected after the rows are drawn, from its own random stream, and touches only the
features a `DriftScenario` names: every other column, the label included, is bit-identical to the
same seed without drift. Keeping the label fixed while features move is what makes a model
trained before the drift degrade after it (the relation between features and label changes).

Everything is vectorised numpy; a million rows take a few seconds (see `bench/results/drift.md`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LABEL = "churned"
TIMESTAMP = "snapshot_date"
ID = "customer_id"

# Days in a mean calendar year, used for the seasonal phase so that three years stay in phase.
_YEAR = 365.25


@dataclass(frozen=True)
class FeatureSpec:
    """One generated feature. `categories` is set for categorical features only."""

    name: str
    kind: Literal["numeric", "categorical"]
    group: Literal["demographics", "behaviour", "temporal", "marketing"]
    categories: tuple[str, ...] = ()
    integer: bool = False
    lower: float | None = None
    upper: float | None = None


def _num(name: str, group: str, *, integer: bool = False, lower=None, upper=None) -> FeatureSpec:
    return FeatureSpec(name, "numeric", group, integer=integer, lower=lower, upper=upper)  # type: ignore[arg-type]


def _cat(name: str, group: str, categories: tuple[str, ...]) -> FeatureSpec:
    return FeatureSpec(name, "categorical", group, categories=categories)  # type: ignore[arg-type]


_YES_NO = ("no", "yes")

FEATURES: list[FeatureSpec] = [
    # demographics (10)
    _num("age", "demographics", integer=True, lower=18, upper=85),
    _cat("gender", "demographics", ("female", "male", "other")),
    _cat(
        "country",
        "demographics",
        ("US", "UK", "DE", "FR", "ES", "IT", "NL", "CA", "AU", "BR"),
    ),
    _cat("city_tier", "demographics", ("tier1", "tier2", "tier3")),
    _cat("income_band", "demographics", ("low", "lower_mid", "upper_mid", "high")),
    _num("household_size", "demographics", integer=True, lower=1),
    _num("tenure_days", "demographics", integer=True, lower=1, upper=3650),
    _cat("membership_tier", "demographics", ("basic", "silver", "gold", "platinum")),
    _cat("preferred_device", "demographics", ("mobile", "desktop", "tablet")),
    _cat(
        "acquisition_channel",
        "demographics",
        ("organic", "paid_search", "social", "referral", "affiliate"),
    ),
    # behaviour (17)
    _num("orders_90d", "behaviour", integer=True, lower=0),
    _num("avg_order_value", "behaviour", lower=1),
    _num("total_spend_90d", "behaviour", lower=0),
    _num("sessions_30d", "behaviour", integer=True, lower=0),
    _num("avg_session_minutes", "behaviour", lower=0),
    _num("pages_per_session", "behaviour", lower=1),
    _num("cart_abandon_rate", "behaviour", lower=0, upper=1),
    _num("return_rate", "behaviour", lower=0, upper=1),
    _num("support_tickets_90d", "behaviour", integer=True, lower=0),
    _num("complaints_90d", "behaviour", integer=True, lower=0),
    _num("review_score_avg", "behaviour", lower=1, upper=5),
    _num("wishlist_items", "behaviour", integer=True, lower=0),
    _num("product_categories_bought", "behaviour", integer=True, lower=1, upper=12),
    _num("discount_share", "behaviour", lower=0, upper=1),
    _cat("app_installed", "behaviour", _YES_NO),
    _cat("payment_method", "behaviour", ("card", "paypal", "wallet", "bank_transfer", "cod")),
    _num("failed_payments_90d", "behaviour", integer=True, lower=0),
    # temporal (10)
    _num("days_since_last_order", "temporal", integer=True, lower=0, upper=365),
    _num("days_since_last_login", "temporal", integer=True, lower=0, upper=365),
    _num("avg_days_between_orders", "temporal", lower=0),
    _num("order_trend_ratio", "temporal", lower=0),
    _num("spend_trend_ratio", "temporal", lower=0),
    _num("weekend_order_share", "temporal", lower=0, upper=1),
    _num("night_session_share", "temporal", lower=0, upper=1),
    _num("preferred_shop_hour", "temporal", integer=True, lower=0, upper=23),
    _num("active_months_12m", "temporal", integer=True, lower=0, upper=12),
    _cat("last_order_weekday", "temporal", ("mon", "tue", "wed", "thu", "fri", "sat", "sun")),
    # marketing (10)
    _num("email_open_rate", "marketing", lower=0, upper=1),
    _num("email_click_rate", "marketing", lower=0, upper=1),
    _cat("push_opt_in", "marketing", _YES_NO),
    _num("promo_emails_30d", "marketing", integer=True, lower=0),
    _num("coupons_used_90d", "marketing", integer=True, lower=0),
    _num("loyalty_points", "marketing", integer=True, lower=0),
    _num("referral_count", "marketing", integer=True, lower=0),
    _cat(
        "last_campaign_type",
        "marketing",
        ("none", "discount", "free_shipping", "loyalty", "winback"),
    ),
    _num("ad_impressions_30d", "marketing", integer=True, lower=0),
    _cat("newsletter_subscribed", "marketing", _YES_NO),
]

FEATURE_NAMES: list[str] = [f.name for f in FEATURES]
NUMERIC_FEATURES: list[str] = [f.name for f in FEATURES if f.kind == "numeric"]
CATEGORICAL_FEATURES: list[str] = [f.name for f in FEATURES if f.kind == "categorical"]
FEATURE_SPECS: dict[str, FeatureSpec] = {f.name: f for f in FEATURES}

# Features a drift scenario moves when it names none: one per group plus a categorical, chosen
# among features the churn label depends on, so the drift also hurts a trained model.
DEFAULT_DRIFT_FEATURES: tuple[str, ...] = (
    "tenure_days",
    "sessions_30d",
    "avg_order_value",
    "days_since_last_login",
    "email_open_rate",
    "payment_method",
)

# Intercept of the churn logit, tuned once so that about 15% of snapshots churn.
_CHURN_INTERCEPT = -2.86
# Phase (day of year) of the seasonal pattern a `seasonal` drift adds: late June, opposite to the
# natural December peak, so the new pattern cannot hide inside the normal one.
_SEASONAL_DRIFT_PEAK_DOY = 172


class DriftScenario(BaseModel):
    """Drift injected into generated data.

    - `none`: no drift.
    - `sudden`: from `start_day` on, the features move by the full `magnitude` at once.
    - `gradual`: the move grows linearly from 0 at `start_day` to `magnitude` at
      `start_day + ramp_days`, then stays.
    - `seasonal`: from `start_day` on, the features follow a new yearly cycle peaking in late
      June (`magnitude` at the peak, `-magnitude` in December): the seasonal pattern changed.

    `magnitude` is in units of the feature's standard deviation for numeric features (the mean
    moves by `magnitude * std`, then values are rounded/clipped to the feature's domain). For a
    categorical feature a share `min(1, magnitude / 2)` of rows is reassigned to its last
    category (e.g. `cod` for `payment_method`), which gives a PSI comparable to the numeric move.
    `start_day` counts days from the generator's `start`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["none", "sudden", "gradual", "seasonal"] = "none"
    magnitude: float = Field(default=0.5, ge=0, le=10)
    features: tuple[str, ...] = DEFAULT_DRIFT_FEATURES
    start_day: int = Field(default=730, ge=0)
    ramp_days: int = Field(default=180, ge=1)

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in FEATURE_SPECS]
        if unknown:
            raise ValueError(f"unknown feature(s) in drift.features: {', '.join(unknown)}")
        if len(set(value)) != len(value):
            raise ValueError("drift.features lists a feature twice")
        return value

    @model_validator(mode="after")
    def _features_when_drifting(self) -> DriftScenario:
        if self.kind != "none" and not self.features:
            raise ValueError(
                f"drift.features must name at least one feature for kind {self.kind!r}"
            )
        return self

    def intensity(self, day: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
        """Signed drift magnitude per row (0 where the drift has not started)."""
        started = day >= self.start_day
        if self.kind == "sudden":
            return np.where(started, self.magnitude, 0.0)
        if self.kind == "gradual":
            ramp = np.clip((day - self.start_day) / self.ramp_days, 0.0, 1.0)
            return np.where(started, self.magnitude * ramp, 0.0)
        if self.kind == "seasonal":
            cycle = np.cos(2 * np.pi * (day_of_year - _SEASONAL_DRIFT_PEAK_DOY) / _YEAR)
            return np.where(started, self.magnitude * cycle, 0.0)
        return np.zeros(day.shape)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _circular_distance(day_of_year: np.ndarray, centre: float) -> np.ndarray:
    diff = np.abs(day_of_year - centre) % _YEAR
    return np.minimum(diff, _YEAR - diff)


def _choice(rng: np.random.Generator, probs: tuple[float, ...], n: int) -> np.ndarray:
    cumulative = np.cumsum(probs)
    cumulative /= cumulative[-1]
    return np.searchsorted(cumulative, rng.random(n), side="right").astype(np.int8)


def _ordinal(score: np.ndarray, cuts: tuple[float, ...]) -> np.ndarray:
    return np.searchsorted(np.asarray(cuts), score, side="right").astype(np.int8)


def generate(
    rows: int,
    *,
    seed: int = 0,
    start: str = "2023-01-01",
    days: int = 1095,
    drift: DriftScenario | None = None,
    seasonality: float = 1.0,
    trend: float = 1.0,
) -> pd.DataFrame:
    """Generate `rows` churn snapshots spread uniformly over `days` days from `start`.

    Rows come sorted by `snapshot_date`. The same arguments always give the same frame.
    `seasonality` and `trend` scale the normal yearly cycle and the multi-year trend (0 turns
    them off, e.g. for a stationary baseline); `drift` injects a `DriftScenario`.
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    try:
        origin = np.datetime64(start, "D")
    except ValueError as exc:
        raise ValueError(f"start must be an ISO date (YYYY-MM-DD), got {start!r}") from exc
    drift = drift or DriftScenario()

    rng = np.random.default_rng(seed)
    n = rows
    day = np.sort(rng.integers(0, days, n))
    dates = origin + day.astype("timedelta64[D]")
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64).astype(np.float64)
    years = day / _YEAR

    # Normal seasonality: December peak / June trough plus a Black Friday week bump.
    season = seasonality * (
        0.8 * np.cos(2 * np.pi * (day_of_year - 349) / _YEAR)
        + 0.6 * np.exp(-((_circular_distance(day_of_year, 330) / 6) ** 2))
    )
    drift_trend = trend * years

    # Hidden customer traits: engagement, satisfaction, price sensitivity, disengagement
    # momentum (recent decline) and tenure.
    engagement, satisfaction, price, momentum, tenure = rng.standard_normal((5, n))

    def normal() -> np.ndarray:
        return rng.standard_normal(n)

    col: dict[str, np.ndarray] = {}
    # demographics
    age = np.clip(np.rint(41 + 13 * normal()), 18, 85)
    col["age"] = age
    col["gender"] = _choice(rng, (0.49, 0.48, 0.03), n)
    col["country"] = _choice(rng, (0.30, 0.12, 0.12, 0.10, 0.07, 0.07, 0.05, 0.07, 0.05, 0.05), n)
    col["city_tier"] = _choice(rng, (0.45, 0.35, 0.20), n)
    income = _ordinal(0.35 * (age - 41) / 13 + 0.3 * engagement + normal(), (-0.8, 0.1, 0.9))
    col["income_band"] = income
    col["household_size"] = 1 + rng.poisson(1.4, n)
    col["tenure_days"] = np.clip(np.rint(np.exp(5.8 + 0.9 * tenure)), 1, 3650)
    col["membership_tier"] = _ordinal(
        0.8 * engagement + 0.4 * tenure + 0.6 * normal(), (0.3, 1.2, 2.0)
    )
    mobile = 0.55 + 0.03 * drift_trend
    desktop = 0.35 - 0.02 * drift_trend
    u = rng.random(n)
    col["preferred_device"] = np.where(u < mobile, 0, np.where(u < mobile + desktop, 1, 2))
    col["acquisition_channel"] = _choice(rng, (0.35, 0.25, 0.18, 0.12, 0.10), n)

    # behaviour
    orders = rng.poisson(np.exp(0.9 + 0.55 * engagement - 0.3 * momentum + 0.25 * season))
    col["orders_90d"] = orders
    aov = np.exp(
        np.log(55)
        + 0.18 * income
        - 0.15 * price
        + 0.02 * drift_trend
        + 0.08 * season
        + 0.35 * normal()
    )
    col["avg_order_value"] = np.round(np.maximum(aov, 1.0), 2)
    col["total_spend_90d"] = np.round(orders * aov * np.exp(0.1 * normal()), 2)
    col["sessions_30d"] = rng.poisson(
        np.exp(2.0 + 0.5 * engagement - 0.35 * momentum + 0.2 * season)
    )
    col["avg_session_minutes"] = np.round(rng.gamma(2.5, np.exp(1.3 + 0.15 * engagement)), 2)
    col["pages_per_session"] = np.round(1 + rng.gamma(2.0, np.exp(0.9 + 0.2 * engagement)), 2)
    col["cart_abandon_rate"] = np.round(
        _sigmoid(-0.3 + 0.4 * price - 0.3 * engagement + 0.6 * normal()), 4
    )
    col["return_rate"] = np.round(_sigmoid(-2.3 - 0.4 * satisfaction + 0.5 * normal()), 4)
    col["support_tickets_90d"] = rng.poisson(np.exp(-1.0 - 0.5 * satisfaction + 0.3 * momentum))
    col["complaints_90d"] = rng.poisson(np.exp(-2.3 - 0.9 * satisfaction))
    col["review_score_avg"] = np.round(np.clip(3.9 + 0.45 * satisfaction + 0.5 * normal(), 1, 5), 1)
    col["wishlist_items"] = rng.poisson(np.exp(1.0 + 0.35 * engagement))
    col["product_categories_bought"] = 1 + rng.binomial(11, _sigmoid(-1.5 + 0.5 * engagement))
    col["discount_share"] = np.round(
        _sigmoid(-1.2 + 0.8 * price + 0.2 * season + 0.5 * normal()), 4
    )
    col["app_installed"] = (
        rng.random(n) < _sigmoid(0.2 + 0.6 * engagement + 0.15 * drift_trend)
    ).astype(np.int8)
    col["payment_method"] = _choice(rng, (0.45, 0.25, 0.15, 0.10, 0.05), n)
    col["failed_payments_90d"] = rng.poisson(np.exp(-2.5 + 0.3 * price))

    # temporal
    col["days_since_last_order"] = np.minimum(
        365, np.rint(rng.exponential(np.exp(3.0 - 0.5 * engagement + 0.6 * momentum)))
    )
    col["days_since_last_login"] = np.minimum(
        365, np.rint(rng.exponential(np.exp(1.6 - 0.6 * engagement + 0.7 * momentum)))
    )
    col["avg_days_between_orders"] = np.round(np.exp(3.4 - 0.5 * engagement + 0.3 * normal()), 1)
    col["order_trend_ratio"] = np.round(np.exp(-0.35 * momentum + 0.1 * season + 0.3 * normal()), 3)
    col["spend_trend_ratio"] = np.round(np.exp(-0.3 * momentum + 0.35 * normal()), 3)
    col["weekend_order_share"] = np.round(_sigmoid(-0.8 + 0.5 * normal()), 4)
    col["night_session_share"] = np.round(_sigmoid(-1.5 + 0.6 * normal()), 4)
    col["preferred_shop_hour"] = np.rint(20 + 3 * normal()) % 24
    col["active_months_12m"] = rng.binomial(12, _sigmoid(0.5 + 0.8 * engagement - 0.4 * momentum))
    col["last_order_weekday"] = _choice(rng, (0.13, 0.13, 0.13, 0.13, 0.14, 0.17, 0.17), n)

    # marketing
    open_rate = _sigmoid(-1.0 + 0.5 * engagement - 0.3 * momentum + 0.5 * normal())
    col["email_open_rate"] = np.round(open_rate, 4)
    col["email_click_rate"] = np.round(
        open_rate * _sigmoid(-1.5 + 0.4 * engagement + 0.4 * normal()), 4
    )
    col["push_opt_in"] = (rng.random(n) < _sigmoid(-0.3 + 0.4 * engagement)).astype(np.int8)
    col["promo_emails_30d"] = rng.poisson(np.exp(2.1 + 0.3 * season))
    col["coupons_used_90d"] = rng.poisson(np.exp(-0.3 + 0.6 * price + 0.2 * season))
    col["loyalty_points"] = np.rint(np.exp(5.5 + 0.6 * engagement + 0.4 * tenure + 0.5 * normal()))
    col["referral_count"] = rng.poisson(np.exp(-1.6 + 0.4 * engagement + 0.3 * satisfaction))
    col["last_campaign_type"] = _choice(rng, (0.30, 0.30, 0.20, 0.10, 0.10), n)
    col["ad_impressions_30d"] = rng.poisson(np.exp(3.0 + 0.25 * season + 0.02 * drift_trend))
    col["newsletter_subscribed"] = (rng.random(n) < _sigmoid(-0.2 + 0.3 * engagement)).astype(
        np.int8
    )

    logit = (
        _CHURN_INTERCEPT
        - 1.0 * engagement
        - 0.9 * satisfaction
        + 0.4 * price
        + 1.5 * momentum
        - 0.5 * tenure
    )
    churned = (rng.random(n) < _sigmoid(logit)).astype(np.int64)

    if drift.kind != "none":
        _inject(col, drift, seed, day, day_of_year)

    frame: dict[str, object] = {ID: np.arange(1, n + 1, dtype=np.int64), TIMESTAMP: dates}
    for spec in FEATURES:
        values = col[spec.name]
        if spec.kind == "categorical":
            # pandas takes any index-like `categories`; pandas-stubs only an Index
            frame[spec.name] = pd.Categorical.from_codes(  # type: ignore[call-overload]
                values.astype(np.int8), categories=list(spec.categories)
            )
        elif spec.integer:
            frame[spec.name] = values.astype(np.int64)
        else:
            frame[spec.name] = values.astype(np.float64)
    frame[LABEL] = churned
    return pd.DataFrame(frame)


def _inject(
    col: dict[str, np.ndarray],
    drift: DriftScenario,
    seed: int,
    day: np.ndarray,
    day_of_year: np.ndarray,
) -> None:
    """Move the scenario's features in place; uses its own random stream (see module doc)."""
    rng = np.random.default_rng([seed, 0xD1F7])
    intensity = drift.intensity(day, day_of_year)
    for name in drift.features:
        spec = FEATURE_SPECS[name]
        values = col[name]
        if spec.kind == "categorical":
            share = np.minimum(1.0, np.abs(intensity) / 2)
            # Seasonal drift moves rows only in its positive half-cycle: a category cannot receive
            # a negative share.
            share = np.where(intensity > 0, share, 0.0)
            moved = rng.random(values.shape[0]) < share
            col[name] = np.where(moved, len(spec.categories) - 1, values)
            continue
        shifted = values + intensity * float(np.std(values))
        if spec.integer:
            shifted = np.rint(shifted)
        if spec.lower is not None or spec.upper is not None:
            shifted = np.clip(shifted, spec.lower, spec.upper)
        col[name] = shifted


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write `df` as one Parquet file (zstd), creating parent folders; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(target, engine="pyarrow", compression="zstd", index=False)
    return target


def read_parquet(path: str | Path) -> pd.DataFrame:
    """Read a frame written by `write_parquet` (categoricals come back as categories)."""
    return pd.read_parquet(Path(path), engine="pyarrow")
