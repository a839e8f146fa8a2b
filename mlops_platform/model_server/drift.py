"""Per-feature drift of recent requests against the model's training reference profile.

The profile is the `reference_profile` entry of the MLflow model metadata, written by the
training pipeline (see README). For each feature, recent rows are bucketed exactly as the
profile was built (`numpy.searchsorted(edges, x, side="right")` for numbers, the category or
`__other__` for strings), and the Population Stability Index of the window against the
reference fractions is served as a gauge.

The window is a ring buffer of bucket indices (rows x features), so an update is a few
vectorised numpy calls per batch and the PSI is computed only when Prometheus scrapes.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

OTHER = "__other__"
MISSING = -1
# Fractions are floored at this value before the log-ratio, so an empty bucket on either side
# gives a large but finite PSI instead of infinity.
PSI_EPSILON = 1e-4


class ProfileError(ValueError):
    """The reference profile does not follow the contract; the message names the feature."""


@dataclass(frozen=True)
class FeatureReference:
    name: str
    kind: str  # "numeric" | "categorical"
    expected: np.ndarray  # reference fraction per bucket
    edges: np.ndarray | None = None  # numeric: interior cut points, ascending
    categories: Mapping[str, int] | None = None  # categorical: category -> bucket

    @property
    def n_buckets(self) -> int:
        return len(self.expected)

    def buckets(self, values: np.ndarray) -> np.ndarray:
        """Bucket index per value; MISSING for null/NaN, which the profile leaves out too."""
        if self.kind == "numeric":
            assert self.edges is not None
            numbers = np.asarray(values, dtype=np.float64)
            index = np.searchsorted(self.edges, numbers, side="right").astype(np.int32)
            index[np.isnan(numbers)] = MISSING
            return index
        assert self.categories is not None
        other = self.categories[OTHER]
        lookup = self.categories.get
        return np.fromiter(
            (
                MISSING if v is None or (type(v) is float and v != v) else lookup(v, other)
                for v in values
            ),
            dtype=np.int32,
            count=len(values),
        )


def parse_profile(profile: Any) -> dict[str, FeatureReference]:
    """Validate a reference profile (dict or JSON text) and build per-feature references."""
    if isinstance(profile, str | bytes):
        import json

        try:
            profile = json.loads(profile)
        except ValueError as exc:
            raise ProfileError(f"reference_profile is not valid JSON: {exc}") from None
    if not isinstance(profile, dict):
        raise ProfileError("reference_profile must be an object")
    if profile.get("version") != 1:
        raise ProfileError(f"reference_profile.version must be 1, got {profile.get('version')!r}")
    features = profile.get("features")
    if not isinstance(features, dict) or not features:
        raise ProfileError("reference_profile.features must be a non-empty object")
    out: dict[str, FeatureReference] = {}
    for name, spec in features.items():
        where = f"reference_profile.features.{name}"
        if not isinstance(spec, dict):
            raise ProfileError(f"{where} must be an object")
        kind = spec.get("kind")
        fractions = spec.get("fractions")
        if kind == "numeric":
            edges = spec.get("edges")
            if not isinstance(edges, list) or not all(_is_number(e) for e in edges):
                raise ProfileError(f"{where}.edges must be a list of numbers")
            if any(b <= a for a, b in itertools.pairwise(edges)):
                raise ProfileError(f"{where}.edges must be strictly ascending")
            if not isinstance(fractions, list) or len(fractions) != len(edges) + 1:
                raise ProfileError(
                    f"{where}.fractions must have len(edges)+1 = {len(edges) + 1} values"
                )
            expected = _fractions(fractions, where)
            out[name] = FeatureReference(name, kind, expected, edges=np.asarray(edges, float))
        elif kind == "categorical":
            if not isinstance(fractions, dict) or not fractions:
                raise ProfileError(f"{where}.fractions must be an object of category -> fraction")
            categories = dict(fractions)
            categories.setdefault(OTHER, 0.0)
            names = list(categories)
            expected = _fractions([categories[c] for c in names], where)
            index = {c: i for i, c in enumerate(names)}
            out[name] = FeatureReference(name, kind, expected, categories=index)
        else:
            raise ProfileError(f"{where}.kind must be 'numeric' or 'categorical', got {kind!r}")
    return out


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _fractions(values: list[Any], where: str) -> np.ndarray:
    if not all(_is_number(v) and v >= 0 for v in values):
        raise ProfileError(f"{where}.fractions must be non-negative numbers")
    total = float(sum(values))
    if not math.isclose(total, 1.0, abs_tol=1e-3):
        raise ProfileError(f"{where}.fractions sum to {total:.6g}, expected 1")
    return np.asarray(values, dtype=np.float64) / total


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population Stability Index: sum((a - e) * ln(a / e)) over buckets."""
    e = np.maximum(expected, PSI_EPSILON)
    a = np.maximum(actual, PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftWindow:
    """Sliding window of the last `window_rows` rows, bucketed per feature. Thread-safe."""

    def __init__(self, references: Mapping[str, FeatureReference], window_rows: int) -> None:
        self.references = list(references.values())
        self.window_rows = window_rows
        self._buckets = np.zeros((window_rows, len(self.references)), dtype=np.int32)
        self._next = 0
        self._filled = 0
        self._lock = threading.Lock()

    @property
    def feature_names(self) -> list[str]:
        return [r.name for r in self.references]

    def update(self, columns: Mapping[str, np.ndarray]) -> None:
        """Add a batch of rows (one array per feature; absent features count as missing)."""
        present = [(i, r) for i, r in enumerate(self.references) if r.name in columns]
        if not present:
            return
        n = len(columns[present[0][1].name])
        if n == 0:
            return
        keep = min(n, self.window_rows)
        rows = np.full((keep, len(self.references)), MISSING, dtype=np.int32)
        for i, ref in present:
            rows[:, i] = ref.buckets(columns[ref.name][n - keep :])
        with self._lock:
            end = self._next + keep
            if end <= self.window_rows:
                self._buckets[self._next : end] = rows
            else:
                first = self.window_rows - self._next
                self._buckets[self._next :] = rows[:first]
                self._buckets[: keep - first] = rows[first:]
            self._next = end % self.window_rows
            self._filled = min(self.window_rows, self._filled + keep)

    def rows(self) -> int:
        return self._filled

    def psi(self) -> dict[str, float]:
        """PSI per feature over the current window; empty until a row has been seen."""
        with self._lock:
            filled = self._filled
            window = self._buckets[:filled].copy()
        if filled == 0:
            return {}
        out = {}
        for i, ref in enumerate(self.references):
            column = window[:, i]
            present = column[column != MISSING]
            if present.size == 0:
                continue
            counts = np.bincount(present, minlength=ref.n_buckets)
            out[ref.name] = psi(ref.expected, counts / present.size)
        return out
