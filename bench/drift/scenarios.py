"""Scenario generator of the drift benchmark: data sets, drift kinds and the power analysis.

Data sets (each row set is drawn fresh, so a no-drift pair is two samples of one distribution):

- `mixed`: generated mixed-type tabular data: normal, lognormal, Student t(3), uniform and
  bimodal floats, zero-inflated and ordinary Poisson counts, a 5-level and a Zipf-tailed
  categorical, a boolean; base missing rates of 0-5 %.
- `housing`: the shape of the (public-domain) California housing census table built from scipy
  distributions: lognormal income, house age 1-52 with a spike at the cap, gamma rooms,
  heavy-tailed population, two-cluster latitude / longitude, and a proximity category with one
  category at 0.03 % (the real table's ISLAND).
- `classification`: sklearn's `make_classification` (correlated informative and redundant
  features), some columns rounded to integers and one binned into a categorical.
- `churn`: the project's own generator (mlops_platform/pipelines/data/churn.py, 47 features, December
  peak / Black Friday / June trough), trend switched off: a stationary seasonal process for the
  seasonal no-drift controls (one-month slices and a later full year against a yearly reference).

Drift kinds are applied to one column per pair, picked at random among the columns the kind
applies to; magnitudes are in that column's standard deviations (location), spread factors,
moved category mass and added missing rate. `Drift.apply` is the one place they are defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

TIMESTAMP = "snapshot_date"


def _timestamps(rng: np.random.Generator, n: int, start: str, days: int) -> pd.Series:
    offsets = np.sort(rng.integers(0, days * 86400, n))
    return pd.Timestamp(start) + pd.to_timedelta(offsets, unit="s")


def _with_missing(rng: np.random.Generator, values: np.ndarray, rate: float) -> np.ndarray:
    values = values.astype(np.float64)
    values[rng.random(values.size) < rate] = np.nan
    return values


def mixed(rng: np.random.Generator, n: int) -> pd.DataFrame:
    zipf = np.minimum(rng.zipf(1.6, n), 40)
    bimodal = np.where(rng.random(n) < 0.4, rng.normal(-2, 0.7, n), rng.normal(2, 1.0, n))
    return pd.DataFrame(
        {
            "normal": _with_missing(rng, rng.normal(50, 10, n), 0.02),
            "lognormal": rng.lognormal(3, 0.8, n),
            "student_t": rng.standard_t(3, n),
            "uniform": rng.uniform(0, 1, n),
            "bimodal": _with_missing(rng, bimodal, 0.05),
            "zero_inflated": np.where(rng.random(n) < 0.6, 0, rng.poisson(4, n)),
            "visits": rng.poisson(12, n),
            "plan": rng.choice(
                ["free", "basic", "plus", "pro", "team"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]
            ),
            "referrer": pd.Series(zipf.astype(str)).where(rng.random(n) >= 0.01).to_numpy(),
            "opted_in": rng.random(n) < 0.3,
        }
    )


def housing(rng: np.random.Generator, n: int) -> pd.DataFrame:
    north = rng.random(n) < 0.45
    age = np.where(rng.random(n) < 0.06, 52, rng.integers(1, 52, n))
    rooms = stats.gamma.rvs(9, scale=0.6, size=n, random_state=rng)
    return pd.DataFrame(
        {
            "median_income": rng.lognormal(1.25, 0.45, n),
            "house_age": age,
            "ave_rooms": rooms,
            "ave_bedrooms": _with_missing(rng, rooms * 0.2 + rng.normal(0, 0.1, n), 0.01),
            "population": np.rint(rng.lognormal(7.0, 0.8, n)).astype(np.int64),
            "ave_occupancy": stats.lognorm.rvs(0.3, scale=2.9, size=n, random_state=rng),
            "latitude": np.where(north, rng.normal(37.8, 0.6, n), rng.normal(34.1, 0.5, n)),
            "longitude": np.where(north, rng.normal(-122.1, 0.6, n), rng.normal(-118.2, 0.6, n)),
            "ocean_proximity": rng.choice(
                ["<1H OCEAN", "INLAND", "NEAR OCEAN", "NEAR BAY", "ISLAND"],
                n,
                p=[0.4427, 0.3174, 0.1288, 0.1108, 0.0003],
            ),
        }
    )


def _classification_population(rng: np.random.Generator, n: int) -> pd.DataFrame:
    from sklearn.datasets import make_classification

    # make_classification draws its cluster layout from its seed: one big draw with a fixed
    # seed is the population, and each sample takes random rows of it.
    # A fixed population: one big draw with a fixed layout seed, rows then sampled from it.
    global _CLASSIFICATION_POOL
    if _CLASSIFICATION_POOL is None:
        x, _ = make_classification(
            n_samples=400_000,
            n_features=8,
            n_informative=4,
            n_redundant=2,
            n_clusters_per_class=2,
            random_state=7,
        )
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)])
        frame["f6"] = np.rint(frame["f6"] * 3).astype(np.int64)
        frame["f7"] = np.rint(np.abs(frame["f7"]) * 10).astype(np.int64)
        frame["segment"] = pd.cut(
            frame["f0"], [-np.inf, -1, 0, 1, np.inf], labels=list("abcd")
        ).astype(str)
        _CLASSIFICATION_POOL = frame
    rows = rng.integers(0, len(_CLASSIFICATION_POOL), n)
    return _CLASSIFICATION_POOL.iloc[rows].reset_index(drop=True)


_CLASSIFICATION_POOL: pd.DataFrame | None = None

DATASETS = {"mixed": mixed, "housing": housing, "classification": _classification_population}


def sample(dataset: str, rng: np.random.Generator, n: int, start: str, days: int) -> pd.DataFrame:
    frame = DATASETS[dataset](rng, n)
    frame.insert(0, TIMESTAMP, _timestamps(rng, n, start, days))
    return frame


def column_kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "categorical"
    values = series.dropna().to_numpy()
    return "integer" if np.all(values == np.round(values)) else "numeric"


def _stochastic_round(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Round keeping the mean: a 0.05 sd shift of a count column must not round away."""
    low = np.floor(values)
    return low + (rng.random(values.size) < values - low)


@dataclass(frozen=True)
class Drift:
    """One drift kind at one magnitude, applied to one column of the current window."""

    kind: str  # none | location | gradual | spread | categories | missing
    size: float = 0.0

    @property
    def name(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}_{self.size:g}"

    def columns(self, frame: pd.DataFrame) -> list[str]:
        features = [c for c in frame.columns if c != TIMESTAMP]
        kinds = {c: column_kind(frame[c]) for c in features}
        if self.kind in ("location", "gradual", "spread"):
            return [c for c in features if kinds[c] != "categorical"]
        if self.kind == "categories":
            return [c for c in features if kinds[c] == "categorical"]
        return features

    def apply(
        self, frame: pd.DataFrame, column: str, scale: float, rng: np.random.Generator
    ) -> pd.DataFrame:
        """`scale` is the column's reference standard deviation (location kinds)."""
        out = frame.copy()
        series = out[column]
        integer = column_kind(series) == "integer"
        if self.kind in ("location", "gradual"):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            if self.kind == "location":
                shift = np.full(values.size, self.size * scale)
            else:
                # linear ramp over the window's time, from 0 to `size` sd at its end
                stamps = out[TIMESTAMP].astype("int64").to_numpy()
                position = (stamps - stamps.min()) / max(stamps.max() - stamps.min(), 1)
                shift = self.size * scale * position
            shifted = values + shift
            present = ~np.isnan(values)
            if integer:
                shifted[present] = _stochastic_round(rng, shifted[present])
            out[column] = shifted
        elif self.kind == "spread":
            values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
            centre = np.nanmedian(values)
            spread = centre + (values - centre) * self.size
            present = ~np.isnan(values)
            if integer:
                spread[present] = _stochastic_round(rng, spread[present])
            out[column] = spread
        elif self.kind == "categories":
            # move `size` of the population from the most frequent category to the others,
            # in proportion to their shares
            text = series.astype("string")
            counts = text.value_counts()
            top = counts.index[0]
            others = counts.index[1:]
            weights = counts.iloc[1:].to_numpy(dtype=np.float64)
            is_top = (text == top).fillna(False).to_numpy()
            move = is_top & (rng.random(len(out)) < self.size / (counts.iloc[0] / counts.sum()))
            replacement = rng.choice(
                np.asarray(others, dtype=object), int(move.sum()), p=weights / weights.sum()
            )
            values = text.to_numpy(dtype=object, na_value=None, copy=True)
            values[move] = replacement
            out[column] = (
                values
                if not pd.api.types.is_bool_dtype(series)
                else pd.Series(values).map({"True": True, "False": False}).to_numpy()
            )
        elif self.kind == "missing":
            mask = rng.random(len(out)) < self.size
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                values = series.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
                values[mask] = np.nan
                out[column] = values
            else:
                values = series.astype(object).to_numpy(copy=True)
                values[mask] = None
                out[column] = values
        return out


DRIFTS_TARGET = [
    Drift("location", 0.05),
    Drift("location", 0.1),
    Drift("location", 0.25),
    Drift("location", 0.5),
    Drift("gradual", 0.25),
    Drift("gradual", 0.5),
    Drift("gradual", 1.0),
    Drift("spread", 1.1),
    Drift("spread", 1.25),
    Drift("spread", 1.5),
    Drift("categories", 0.02),
    Drift("categories", 0.05),
    Drift("categories", 0.1),
    Drift("missing", 0.01),
    Drift("missing", 0.05),
    Drift("missing", 0.2),
]


# ---- power analysis -------------------------------------------------------------------------
# A drifted pair is "detectable" when the test made for its kind has >= 95 % power at the
# detector's level (Holm's first step: alpha / number of tests) AND the effect clears its floor
# with 95 % probability. The true effect is measured on a 60,000-row population drawn with the
# same drift (`population_effect`); the power uses the normal / noncentral-chi² approximations
# below, so it is a statement about the sample size, not about our detector's results.

Z95 = stats.norm.ppf(0.95)


def _ks_critical(alpha: float) -> float:
    return math.sqrt(-math.log(alpha / 2) / 2)


def detectable(
    kind: str, effect: dict, n_ref: int, n_cur: int, alpha: float, floors: dict
) -> tuple[bool, str]:
    s = math.sqrt(1 / n_ref + 1 / n_cur)
    if kind in ("location", "gradual"):
        d = effect["ks"]
        need = max(floors["min_ks"] + Z95 * 0.5 * s, (_ks_critical(alpha) + Z95 * 0.5) * s)
        return d >= need, f"KS D {d:.4f} vs needed {need:.4f}"
    if kind == "spread":
        ratio, cv_ref, cv_cur, gap = (
            effect["ratio"],
            effect["cv_ref"],
            effect["cv_cur"],
            effect["z_per_row"],
        )
        sd_ratio = ratio * math.sqrt(cv_ref**2 / n_ref + cv_cur**2 / n_cur)
        z = gap / math.sqrt(1 / n_ref + 1 / n_cur)
        ok = (
            ratio - Z95 * sd_ratio >= floors["min_scale_ratio"]
            and z >= stats.norm.ppf(1 - alpha / 2) + Z95
        )
        return ok, f"spread ratio {ratio:.3f} (sd {sd_ratio:.3f}), z {z:.1f}"
    if kind == "categories":
        tvd, df, per_row = effect["tvd"], effect["df"], effect["lambda_per_row"]
        lam = per_row * n_ref * n_cur / (n_ref + n_cur)
        power = stats.ncx2.sf(stats.chi2.isf(alpha, df), df, lam) if df > 0 else 0.0
        ok = power >= 0.95 and tvd >= floors["min_tvd"] * 1.25
        return ok, f"TVD {tvd:.4f}, chi2 power {power:.2f}"
    if kind == "missing":
        p0, p1 = effect["p_ref"], effect["p_cur"]
        sd = math.sqrt(p0 * (1 - p0) / n_ref + p1 * (1 - p1) / n_cur)
        z = (p1 - p0) / sd if sd > 0 else float("inf")
        ok = (
            z >= stats.norm.ppf(1 - alpha / 2) + Z95
            and (p1 - p0) - Z95 * sd >= floors["min_missing_change"]
        )
        return ok, f"missing {p0:.3f} -> {p1:.3f}, z {z:.1f}"
    return False, "no drift"


def population_effect(
    dataset: str, drift: Drift, column: str, seed: int = 99, rows: int = 60_000
) -> dict:
    rng = np.random.default_rng(seed)
    ref = sample(dataset, rng, rows, "2025-01-01", 90)
    cur = sample(dataset, rng, rows, "2025-04-01", 28)
    scale = (
        float(np.nanstd(ref[column].to_numpy(dtype=np.float64)))
        if drift.kind in ("location", "gradual")
        else 1.0
    )
    cur = drift.apply(cur, column, scale, rng)
    a, b = ref[column], cur[column]
    if drift.kind in ("location", "gradual"):
        x, y = a.to_numpy(dtype=np.float64), b.to_numpy(dtype=np.float64)
        return {
            "ks": float(stats.ks_2samp(x[~np.isnan(x)], y[~np.isnan(y)], method="asymp").statistic)
        }
    if drift.kind == "spread":
        x, y = a.to_numpy(dtype=np.float64), b.to_numpy(dtype=np.float64)
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        dx, dy = np.abs(x - np.median(x)), np.abs(y - np.median(y))
        pooled_sd = math.sqrt((dx.var() + dy.var()) / 2)
        return {
            "ratio": float(dy.mean() / dx.mean()),
            "cv_ref": float(dx.std() / dx.mean()),
            "cv_cur": float(dy.std() / dy.mean()),
            "z_per_row": float((dy.mean() - dx.mean()) / pooled_sd),
        }
    if drift.kind == "categories":
        p = a.astype("string").value_counts(normalize=True)
        q = b.astype("string").value_counts(normalize=True)
        index = p.index.union(q.index)
        p, q = p.reindex(index, fill_value=0), q.reindex(index, fill_value=0)
        mean = (p + q) / 2
        keep = mean > 0
        lam = float((((p - q) ** 2)[keep] / mean[keep]).sum())  # noncentrality per effective row
        return {
            "tvd": float(0.5 * np.abs(p - q).sum()),
            "df": int(keep.sum() - 1),
            "lambda_per_row": lam,
        }
    if drift.kind == "missing":
        # exact, not sampled: a +1 pp surge against a 1 pp floor sits ON the floor, and a
        # sampled rate of 1.1 % would wrongly call it detectable
        p_ref = float(a.isna().mean())
        return {"p_ref": p_ref, "p_cur": p_ref + (1 - p_ref) * drift.size}
    return {}
