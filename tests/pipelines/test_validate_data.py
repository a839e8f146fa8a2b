"""validate_data: every check, exact report lines, and the component stopping the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kfp.dsl import Dataset, Markdown

from mlops_platform.pipelines.components.validate_data.component import validate_data
from mlops_platform.pipelines.components.validate_data.logic import Thresholds, validate
from mlops_platform.pipelines.data import churn


def checks(report) -> dict[str, tuple[bool, str]]:
    return {check.name: (check.passed, check.detail) for check in report.checks}


def test_good_data_passes_every_check(churn_small: pd.DataFrame) -> None:
    report = validate(churn_small, "good.parquet")
    assert report.passed
    assert checks(report) == {
        "row count": (True, "8000 rows (minimum 1000)"),
        "schema": (True, "all 48 columns present"),
        "types": (True, "all types as expected"),
        "missing values": (True, "at most 20% missing per feature"),
        "ranges": (True, "numeric values within bounds, categories known"),
        "label balance": (
            True,
            f"positive rate {churn_small[churn.LABEL].mean():.4f} (allowed 0.01..0.99)",
        ),
    }


def test_missing_columns_wrong_types_and_no_positives_are_all_reported(
    churn_small: pd.DataFrame,
) -> None:
    bad = churn_small.drop(columns=["age", "gender"]).copy()
    bad["orders_90d"] = bad["orders_90d"].astype(str)
    bad["country"] = np.arange(len(bad))
    bad[churn.LABEL] = 0
    report = validate(bad, "bad.parquet")
    assert not report.passed
    assert report.summary() == (
        "data validation failed for bad.parquet (8000 rows):\n"
        "  - schema: missing columns: age, gender\n"
        "  - types: wrong types: orders_90d (str, expected numeric), "
        "country (int64, expected string)\n"
        "  - label balance: no positive labels: nothing to learn churn from"
    )


def test_missing_values_ranges_and_label_values(churn_small: pd.DataFrame) -> None:
    bad = churn_small.copy()
    bad.loc[: len(bad) // 2, "avg_order_value"] = np.nan
    bad.loc[0, "return_rate"] = 1.5
    bad.loc[1, "loyalty_points"] = -3
    bad["payment_method"] = bad["payment_method"].cat.add_categories(["crypto"])
    bad.loc[2, "payment_method"] = "crypto"
    bad.loc[3, churn.LABEL] = 2
    result = checks(validate(bad, "bad.parquet"))
    assert result["missing values"] == (
        False,
        "too many missing values: avg_order_value (50.0%)",
    )
    assert result["ranges"] == (
        False,
        "out of range: return_rate (max 1.5 > 1), loyalty_points (min -3 < 0), "
        "payment_method (unknown categories ['crypto'])",
    )
    assert result["types"] == (False, "wrong types: churned (values ['0', '1', '2'], expected 0/1)")


def test_thresholds_are_parameters(churn_small: pd.DataFrame) -> None:
    report = validate(
        churn_small.head(500), "tiny", Thresholds(min_rows=1000, min_positive_rate=0.5)
    )
    result = checks(report)
    assert result["row count"] == (False, "500 rows (minimum 1000)")
    assert result["label balance"][0] is False
    assert result["label balance"][1].endswith("(allowed 0.5..0.99)")


def run_component(path: Path, tmp_path: Path) -> tuple[str, Path]:
    report = tmp_path / "report.md"
    output = validate_data.python_func(
        dataset=Dataset(name="dataset", uri=str(path)),
        report=Markdown(name="report", uri=str(report)),
    )
    return output, report


def test_component_returns_the_dataset_hash_and_writes_the_report(
    churn_parquet: Path, tmp_path: Path
) -> None:
    import hashlib

    digest, report = run_component(churn_parquet, tmp_path)
    assert digest == hashlib.sha256(churn_parquet.read_bytes()).hexdigest()
    assert report.read_text().startswith("# Data validation PASSED\n")


def test_component_stops_the_run_with_the_report(
    churn_small: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = churn.write_parquet(churn_small.drop(columns=["tenure_days"]), tmp_path / "bad.parquet")
    with pytest.raises(SystemExit) as exit_info:
        run_component(path, tmp_path)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == (
        f"ERROR: data validation failed for {path} (8000 rows):\n"
        "  - schema: missing columns: tenure_days\n"
    )
    assert (
        "| schema | FAIL | missing columns: tenure_days |" in (tmp_path / "report.md").read_text()
    )


def test_component_reports_an_unreadable_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "not-parquet.parquet"
    path.write_text("customer_id,churned\n1,0\n")
    with pytest.raises(SystemExit):
        run_component(path, tmp_path)
    assert capsys.readouterr().err.startswith(f"ERROR: {path}: cannot read as a Parquet table: ")
