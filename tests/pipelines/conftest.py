"""Fixtures of the component and pipeline tests: small churn frames and a throwaway MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kfp_pipelines.data import churn


@pytest.fixture(scope="session")
def churn_small() -> pd.DataFrame:
    """8000 snapshots over three years (about 15% churners)."""
    return churn.generate(8000, seed=3)


@pytest.fixture
def churn_parquet(tmp_path: Path, churn_small: pd.DataFrame) -> Path:
    return churn.write_parquet(churn_small, tmp_path / "churn.parquet")


@pytest.fixture
def sqlite_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A tracking URI backed by sqlite in tmp_path (no server), artifacts in tmp_path too."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    MlflowClient(uri).create_experiment("churn", artifact_location=str(tmp_path / "artifacts"))
    yield uri
    mlflow.set_tracking_uri(None)
