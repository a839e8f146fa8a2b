"""register_model: the registered version, its lineage, alias, model card and metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mlops_platform.pipelines.components.register_model.logic import (
    flat_metrics,
    lineage_tags,
    model_card,
    register,
)
from mlops_platform.pipelines.data import churn


def test_lineage_tags_and_flat_metrics(evaluation: dict) -> None:
    tags = lineage_tags("ab" * 32, "git:123456789abc", {"learning_rate": 0.1}, "training")
    assert tags == {
        "dataset_sha256": "ab" * 32,
        "code_version": "git:123456789abc",
        "params": '{"learning_rate": 0.1}',
        "pipeline": "training",
    }
    metrics = flat_metrics(evaluation)
    assert metrics["golden_roc_auc"] == evaluation["candidate"]["overall"]["roc_auc"]
    assert "segment/membership_tier/gold/pr_auc" in metrics
    assert not any(name.startswith("champion_") for name in metrics)


def test_register_creates_a_challenger_with_lineage_and_card(
    sqlite_mlflow: str, model_dir: Path, evaluation: dict
) -> None:
    import mlflow
    from mlflow import MlflowClient

    version, card = register(
        tracking_uri=sqlite_mlflow,
        model_dir=str(model_dir),
        evaluation=evaluation,
        dataset_sha256="cd" * 32,
        pipeline="training",
    )
    client = MlflowClient(sqlite_mlflow)
    assert version == "1"
    assert client.get_registered_model("churn").aliases == {"challenger": 1}
    mv = client.get_model_version("churn", "1")
    assert mv.tags["dataset_sha256"] == "cd" * 32
    assert mv.tags["pipeline"] == "training"
    assert mv.tags["promotion"] == "challenger"
    assert mv.tags["code_version"].startswith(("git:", "mlops-platform==", "unknown"))
    assert json.loads(mv.tags["params"])["class_weight"] == "balanced"
    run = client.get_run(mv.run_id)
    assert run.data.metrics["golden_roc_auc"] == evaluation["candidate"]["overall"]["roc_auc"]
    stored_card = mlflow.artifacts.load_text(f"runs:/{mv.run_id}/model_card.md")
    assert stored_card == card
    assert card.startswith("# Model card: churn version 1\n")
    assert "| membership_tier=gold |" in card
    assert f"- dataset_sha256: `{'cd' * 32}`" in card

    info = mlflow.models.get_model_info("models:/churn/1")
    assert set(info.metadata["reference_profile"]["features"]) == set(churn.FEATURE_NAMES)
    assert [spec.name for spec in info.signature.inputs.inputs] == churn.FEATURE_NAMES
    loaded = mlflow.sklearn.load_model("models:/churn@challenger")
    assert loaded.predict_proba(pd.read_parquet(model_dir / "signature_sample.parquet")).shape == (
        1000,
        2,
    )


def test_a_rejected_candidate_is_recorded_without_alias(
    sqlite_mlflow: str, model_dir: Path, evaluation: dict
) -> None:
    from mlflow import MlflowClient

    rejected = {**evaluation, "promote": False, "reason": "candidate is worse"}
    version, card = register(
        tracking_uri=sqlite_mlflow,
        model_dir=str(model_dir),
        evaluation=rejected,
        dataset_sha256="ef" * 32,
        pipeline="drift",
    )
    client = MlflowClient(sqlite_mlflow)
    assert client.get_registered_model("churn").aliases == {}
    tags = client.get_model_version("churn", version).tags
    assert (tags["promotion"], tags["promotion_reason"]) == ("rejected", "candidate is worse")
    assert "- alias: none (not promoted)" in card


def test_model_card_compares_with_the_champion(evaluation: dict) -> None:
    champion = {"overall": {**evaluation["candidate"]["overall"], "roc_auc": 0.5}}
    training_info = {"train_rows": 10, "search_rows": 5, "params": {"a": 1}, "n_iter": 7}
    card = model_card(
        version="3",
        evaluation={**evaluation, "champion": champion},
        training=training_info,
        tags={"dataset_sha256": "x", "params": "{}"},
        alias="challenger",
    )
    roc = evaluation["candidate"]["overall"]["roc_auc"]
    assert f"| roc_auc | {roc:.4f} | 0.5000 |" in card
    assert "- rows: 10 (search on 5)" in card
    assert "- params:" not in card  # parameters appear once, in the Training section
