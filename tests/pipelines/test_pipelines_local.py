"""The real pipelines under kfp's local runner: bad input stops the run and registers nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_platform.pipelines.data import churn
from mlops_platform.pipelines.demo import DemoError, free_port, run_pipeline
from mlops_platform.pipelines.pipelines.training import training_pipeline


def run_training(data: Path, tracking_uri: str, tmp_path: Path):
    return run_pipeline(
        training_pipeline,
        "training",
        {"data_uri": str(data), "tracking_uri": tracking_uri, "search_iterations": 1},
        tmp_path / "root",
        tmp_path / "training.log",
    )


def test_bad_dataset_fails_validation_and_registers_nothing(
    tmp_path: Path, churn_small: pd.DataFrame, sqlite_mlflow: str, capsys
) -> None:
    from mlflow import MlflowClient

    bad = churn_small.drop(columns=["age"]).assign(churned=0)
    path = churn.write_parquet(bad, tmp_path / "bad.parquet")
    with pytest.raises(DemoError) as error:
        run_training(path, sqlite_mlflow, tmp_path)
    assert str(error.value) == (
        f"training pipeline failed at validate-data: data validation failed for {path} "
        "(8000 rows): - schema: missing columns: age - label balance: no positive labels: "
        f"nothing to learn churn from (full log: {tmp_path / 'training.log'})"
    )
    progress = capsys.readouterr().out
    assert "      - schema: missing columns: age" in progress
    assert "      - label balance: no positive labels: nothing to learn churn from" in progress
    assert "train-model" not in progress
    assert MlflowClient(sqlite_mlflow).search_registered_models() == []
    report = next((tmp_path / "root").glob("*/validate-data/report")).read_text()
    assert report.startswith("# Data validation FAILED\n")


def test_unreachable_mlflow_stops_the_run_with_one_line(
    tmp_path: Path, churn_small: pd.DataFrame
) -> None:
    path = churn.write_parquet(churn_small, tmp_path / "good.parquet")
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DemoError) as error:
        run_training(path, uri, tmp_path)
    assert str(error.value).startswith(
        f"training pipeline failed at evaluate-model: MLflow tracking server at {uri} is "
        "unreachable: "
    )


def test_drift_pipeline_without_drift_retrains_nothing(tmp_path: Path, capsys) -> None:
    from mlops_platform.pipelines.pipelines.drift import drift_pipeline

    reference = churn.write_parquet(
        churn.generate(20000, seed=1, start="2023-01-01", days=1095), tmp_path / "ref.parquet"
    )
    recent = churn.write_parquet(
        churn.generate(5000, seed=2, start="2026-01-01", days=90), tmp_path / "recent.parquet"
    )
    # No drift means no training and no registry access: an unreachable MLflow must not matter.
    run = run_pipeline(
        drift_pipeline,
        "drift",
        {
            "data_uri": str(recent),
            "reference_uri": str(reference),
            "tracking_uri": f"http://127.0.0.1:{free_port()}",
        },
        tmp_path / "root",
        tmp_path / "drift.log",
    )
    assert run.output == ""
    assert sorted(run.steps) == [
        "champion-reference",
        "check-drift",
        "evaluate-model",
        "importer",
        "register-model",
        "split-data",
        "train-model",
        "validate-data",
    ]
    model = run.root / "train-model" / "model"
    assert model.read_text() == "skipped: not enabled (no drift found)\n"
    assert (run.root / "check-drift" / "report").read_text().startswith("# Drift not found\n")
