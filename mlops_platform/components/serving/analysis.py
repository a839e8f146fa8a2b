"""Flagger's verdict on one analysis interval, for running the platform's checks without a
cluster (`mlops demo`, the tests): the same `MetricTemplate` queries the serving component
renders, sent to a Prometheus, judged the way Flagger judges them.

Flagger fails a check whose query returns no value or NaN, and otherwise compares the value
with the Canary's `thresholdRange` (inclusive `min`/`max`). Rollback after `threshold` failed
intervals and promotion are the caller's loop, as in Flagger.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mlops_platform.components.serving import delivery

Query = Callable[[str], float | None]


@dataclass(frozen=True)
class CheckResult:
    check: str
    value: float | None
    limits: Mapping[str, float]
    passed: bool

    def describe(self) -> str:
        shown = "no value" if self.value is None else f"{self.value:.4g}"
        bounds = ", ".join(f"{key} {value:g}" for key, value in self.limits.items())
        return f"{self.check}: {shown} ({bounds}) {'ok' if self.passed else 'FAILED'}"


def passes(value: float | None, limits: Mapping[str, float]) -> bool:
    if value is None or math.isnan(value):
        return False
    return limits.get("min", -math.inf) <= value <= limits.get("max", math.inf)


def run_checks(
    query: Query,
    config: delivery.ProgressiveConfig,
    namespace: str,
    target: str,
    interval: str | None = None,
) -> dict[str, CheckResult]:
    """Every check of one interval for Canary `target` in `namespace`."""
    ranges = delivery.threshold_ranges(config.thresholds)
    results: dict[str, CheckResult] = {}
    for check, template in delivery.queries(config.thresholds).items():
        value = query(
            delivery.render_query(template, namespace, target, interval or config.interval)
        )
        results[check] = CheckResult(check, value, ranges[check], passes(value, ranges[check]))
    return results
