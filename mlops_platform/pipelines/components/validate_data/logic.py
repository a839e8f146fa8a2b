"""Data validation: schema, types, missing values, ranges and label balance of a churn dataset.

Every check runs (a missing column does not hide a type error elsewhere), and the result is
one report listing each check with the columns that failed it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_platform.pipelines.components.common import ComponentError

if TYPE_CHECKING:
    import pandas as pd


class DataValidationError(ComponentError):
    """The dataset failed at least one check; the message is the readable report."""


@dataclass(frozen=True)
class Thresholds:
    min_rows: int = 1000
    max_missing_fraction: float = 0.2
    min_positive_rate: float = 0.01
    max_positive_rate: float = 0.99


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class ValidationReport:
    source: str
    rows: int
    checks: list[Check] = field(default_factory=list)
    positive_rate: float | None = None

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "passed": self.passed,
            "positive_rate": self.positive_rate,
            "checks": [asdict(check) for check in self.checks],
        }

    def to_markdown(self) -> str:
        status = "PASSED" if self.passed else "FAILED"
        lines = [
            f"# Data validation {status}",
            "",
            f"- dataset: `{self.source}`",
            f"- rows: {self.rows}",
        ]
        if self.positive_rate is not None:
            lines.append(f"- positive rate: {self.positive_rate:.4f}")
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        for check in self.checks:
            lines.append(f"| {check.name} | {'ok' if check.passed else 'FAIL'} | {check.detail} |")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        """A few lines for a log or an exception: which checks failed and on what."""
        if self.passed:
            return f"{self.source}: all {len(self.checks)} checks passed ({self.rows} rows)"
        lines = [f"data validation failed for {self.source} ({self.rows} rows):"]
        lines += [f"  - {check.name}: {check.detail}" for check in self.failures]
        return "\n".join(lines)


def _names(columns: list[str], limit: int = 8) -> str:
    shown = ", ".join(columns[:limit])
    return shown + (f" (+{len(columns) - limit} more)" if len(columns) > limit else "")


def validate(
    df: pd.DataFrame, source: str, thresholds: Thresholds | None = None
) -> ValidationReport:
    """Run every check on `df`; `source` names the dataset in the report."""
    import numpy as np
    import pandas as pd

    from mlops_platform.pipelines.data import churn

    limits = thresholds or Thresholds()
    report = ValidationReport(source=source, rows=len(df))
    checks = report.checks

    checks.append(
        Check(
            "row count",
            len(df) >= limits.min_rows,
            f"{len(df)} rows (minimum {limits.min_rows})",
        )
    )

    expected = [*churn.FEATURE_NAMES, churn.LABEL]
    missing_columns = [name for name in expected if name not in df.columns]
    checks.append(
        Check(
            "schema",
            not missing_columns,
            f"missing columns: {_names(missing_columns)}"
            if missing_columns
            else f"all {len(expected)} columns present",
        )
    )

    numeric = [name for name in churn.NUMERIC_FEATURES if name in df.columns]
    categorical = [name for name in churn.CATEGORICAL_FEATURES if name in df.columns]
    wrong_types = [
        f"{name} ({df[name].dtype}, expected numeric)"
        for name in numeric
        if not pd.api.types.is_numeric_dtype(df[name]) or pd.api.types.is_bool_dtype(df[name])
    ]
    wrong_types += [
        f"{name} ({df[name].dtype}, expected string)"
        for name in categorical
        if not (
            pd.api.types.is_string_dtype(df[name])
            or isinstance(df[name].dtype, pd.CategoricalDtype)
        )
    ]
    label_values: set[Any] = set()
    if churn.LABEL in df.columns:
        label = df[churn.LABEL]
        label_values = {v.item() if hasattr(v, "item") else v for v in label.dropna().unique()}
        if not label_values <= {0, 1}:
            shown = sorted(map(str, label_values))[:5]
            wrong_types.append(f"{churn.LABEL} (values {shown}, expected 0/1)")
    checks.append(
        Check(
            "types",
            not wrong_types,
            f"wrong types: {_names(wrong_types, 5)}" if wrong_types else "all types as expected",
        )
    )

    present = [name for name in expected if name in df.columns]
    fractions = df[present].isna().mean() if len(df) else pd.Series(0.0, index=present)
    too_sparse = [
        f"{name} ({fractions[name]:.1%})"
        for name in present
        if name != churn.LABEL and fractions[name] > limits.max_missing_fraction
    ]
    if churn.LABEL in df.columns and fractions[churn.LABEL] > 0:
        too_sparse.insert(0, f"{churn.LABEL} ({fractions[churn.LABEL]:.1%}, must be complete)")
    checks.append(
        Check(
            "missing values",
            not too_sparse,
            f"too many missing values: {_names(too_sparse, 5)}"
            if too_sparse
            else f"at most {limits.max_missing_fraction:.0%} missing per feature",
        )
    )

    out_of_range: list[str] = []
    badly_typed = {entry.split(" ")[0] for entry in wrong_types}
    for name in numeric:
        if name in badly_typed:
            continue
        spec = churn.FEATURE_SPECS[name]
        values = df[name].to_numpy(dtype="float64", na_value=np.nan)
        finite = values[np.isfinite(values)]
        if np.isinf(values).any():
            out_of_range.append(f"{name} (infinite values)")
        elif finite.size and spec.lower is not None and finite.min() < spec.lower:
            out_of_range.append(f"{name} (min {finite.min():g} < {spec.lower:g})")
        elif finite.size and spec.upper is not None and finite.max() > spec.upper:
            out_of_range.append(f"{name} (max {finite.max():g} > {spec.upper:g})")
    for name in categorical:
        if name in badly_typed:
            continue
        # unique() first: cheap on a categorical column, while str() of a million rows is not
        seen = {str(value) for value in df[name].dropna().unique()}
        unknown = seen - set(churn.FEATURE_SPECS[name].categories)
        if unknown:
            out_of_range.append(f"{name} (unknown categories {sorted(unknown)[:3]})")
    checks.append(
        Check(
            "ranges",
            not out_of_range,
            f"out of range: {_names(out_of_range, 5)}"
            if out_of_range
            else "numeric values within bounds, categories known",
        )
    )

    if churn.LABEL in df.columns and label_values <= {0, 1} and len(df):
        positives = int((df[churn.LABEL] == 1).sum())
        rate = positives / len(df)
        report.positive_rate = rate
        if positives == 0:
            balanced, detail = False, "no positive labels: nothing to learn churn from"
        else:
            balanced = limits.min_positive_rate <= rate <= limits.max_positive_rate
            detail = (
                f"positive rate {rate:.4f} "
                f"(allowed {limits.min_positive_rate:g}..{limits.max_positive_rate:g})"
            )
        checks.append(Check("label balance", balanced, detail))
    else:
        checks.append(Check("label balance", False, f"label {churn.LABEL!r} missing or not 0/1"))
    return report
