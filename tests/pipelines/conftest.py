"""Fixtures of the component and pipeline tests: small churn frames and a throwaway MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_platform.pipelines.data import churn


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


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, churn_small: pd.DataFrame) -> Path:
    """A small churn model saved by the train step (trained once per session)."""
    from mlops_platform.pipelines.components.train_model import logic as training

    target = tmp_path_factory.mktemp("model")
    result = training.train(churn_small, search_iterations=1, search_rows=3000, max_iter=20)
    training.save(result, churn_small, str(target), seed=0)
    return target


@pytest.fixture(scope="session")
def evaluation(model_dir: Path, churn_small: pd.DataFrame) -> dict:
    """The evaluate step's result for `model_dir`: promoted, no champion yet."""
    from mlops_platform.pipelines.components.evaluate_model.logic import evaluate
    from mlops_platform.pipelines.components.train_model import logic as training

    model, _ = training.load(str(model_dir))
    candidate = evaluate(model, churn_small.tail(2000), ["membership_tier"])
    return {
        "candidate": candidate,
        "champion": None,
        "promote": True,
        "reason": "no champion yet; candidate roc_auc=0.8",
    }
