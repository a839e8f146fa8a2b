"""batch_score: a Parquet dataset scored with a registered alias, as the model server scores it,
in bounded batches, with the lineage in the output (real MLflow registry, real files)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlops_platform.pipelines.components.batch_score.logic import default_output_uri, score_file
from mlops_platform.pipelines.components.common import ComponentError
from mlops_platform.pipelines.components.register_model.logic import register
from mlops_platform.pipelines.components.train_model import logic as training
from mlops_platform.pipelines.data import churn

URI = "models:/churn@champion"


@pytest.fixture
def champion(sqlite_mlflow: str, model_dir: Path, evaluation: dict) -> str:
    from mlflow import MlflowClient

    version, _ = register(
        tracking_uri=sqlite_mlflow,
        model_dir=str(model_dir),
        evaluation=evaluation,
        dataset_sha256="ab" * 32,
        pipeline="training",
    )
    MlflowClient(sqlite_mlflow).set_registered_model_alias("churn", "champion", version)
    return version


def test_every_row_scored_in_batches_with_lineage(
    champion: str, model_dir: Path, tmp_path: Path
) -> None:
    frame = churn.generate(5000, seed=11, start="2026-03-01", days=60)
    data = churn.write_parquet(frame, tmp_path / "customers.parquet")
    summary = score_file(URI, str(data), batch_rows=1200)  # five batches, the last one short

    assert summary.output_uri == str(tmp_path / "customers.predictions" / "churn-v1.parquet")
    assert summary.output_uri == default_output_uri(str(data), "churn", champion)
    assert summary.rows == 5000 and summary.version == champion
    out = pd.read_parquet(summary.output_uri)
    assert list(out.columns) == ["customer_id", "snapshot_date", "churned", "_row", "prediction",
                                 "score"]  # fmt: skip
    assert out["_row"].tolist() == list(range(5000))
    assert out["customer_id"].tolist() == frame["customer_id"].tolist()
    # The scores are the model's own, computed independently here.
    model, _ = training.load(str(model_dir))
    expected = model.predict_proba(frame[churn.FEATURE_NAMES])[:, 1]
    np.testing.assert_allclose(out["score"].to_numpy(), expected, rtol=1e-9, atol=1e-12)
    assert out["prediction"].tolist() == model.predict(frame[churn.FEATURE_NAMES]).tolist()

    metadata = pq.read_schema(summary.output_uri).metadata
    lineage = {k.decode(): v.decode() for k, v in metadata.items() if k.startswith(b"mlops.")}
    assert lineage.pop("mlops.scored_at")
    assert lineage == {
        "mlops.model_uri": URI,
        "mlops.model": "churn",
        "mlops.model_version": champion,
        "mlops.input_uri": str(data),
        "mlops.input_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
    }
    assert not list(tmp_path.rglob("*.partial"))


def test_bad_input_names_the_column_and_writes_nothing(champion: str, tmp_path: Path) -> None:
    frame = churn.generate(300, seed=12)
    cases = {
        "no-age": (frame.drop(columns=["age"]), "missing column(s) the model's signature "
                   "requires: age"),
        "clash": (frame.assign(score=0.5), "column(s) score would be overwritten by the "
                  "predictions; rename them"),
    }  # fmt: skip
    for name, (bad, message) in cases.items():
        data = churn.write_parquet(bad, tmp_path / f"{name}.parquet")
        with pytest.raises(ComponentError) as error:
            score_file(URI, str(data))
        assert str(error.value) == f"{data}: {message}"
    with pytest.raises(ComponentError) as error:
        score_file(URI, str(tmp_path / "absent.parquet"))
    assert str(error.value).startswith(f"{tmp_path / 'absent.parquet'}: cannot read it as Parquet")
    with pytest.raises(ComponentError) as error:
        score_file("models:/churn@nobody", str(tmp_path / "clash.parquet"))
    assert str(error.value).startswith("cannot load models:/churn@nobody: ")
    assert not list(tmp_path.rglob("*.predictions"))


def test_the_pipeline_scores_under_the_local_runner(
    champion: str, sqlite_mlflow: str, tmp_path: Path
) -> None:
    from mlops_platform.pipelines.demo import run_pipeline
    from mlops_platform.pipelines.pipelines.batch_scoring import batch_scoring_pipeline

    data = churn.write_parquet(churn.generate(2000, seed=13), tmp_path / "batch.parquet")
    run = run_pipeline(
        batch_scoring_pipeline,
        "batch-scoring",
        {"data_uri": str(data), "tracking_uri": sqlite_mlflow},
        tmp_path / "root",
        tmp_path / "batch.log",
    )
    assert run.output == str(tmp_path / "batch.predictions" / "churn-v1.parquet")
    assert len(pd.read_parquet(run.output)) == 2000
    report = (run.root / "batch-score" / "report").read_text()
    assert report.startswith("# Batch scoring\n") and "- rows: 2000 in " in report
