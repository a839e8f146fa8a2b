"""champion_reference: the drift check's reference is the training data of the version an alias
points at, found through the run the register step logged it with (a real MLflow registry)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_platform.pipelines.components.champion_reference.logic import (
    REFERENCE_ARTIFACT,
    reference_sample,
    resolve,
)
from mlops_platform.pipelines.components.common import ComponentError
from mlops_platform.pipelines.components.register_model.logic import register
from mlops_platform.pipelines.data import churn


def same_rows(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Equal frames; Parquet stores timestamps in ms or µs, whatever unit they were written in."""
    unit = {churn.TIMESTAMP: "datetime64[ns]"}
    pd.testing.assert_frame_equal(left.astype(unit), right.astype(unit))


def _register(tracking_uri: str, model_dir: Path, train: Path | None, evaluation: dict) -> str:
    version, _ = register(
        tracking_uri=tracking_uri,
        model_dir=str(model_dir),
        evaluation=evaluation,
        dataset_sha256="ab" * 32,
        pipeline="training",
        reference_path=None if train is None else str(train),
    )
    return version


def test_the_reference_is_the_training_sample_of_the_aliased_version(
    sqlite_mlflow: str,
    model_dir: Path,
    evaluation: dict,
    churn_small: pd.DataFrame,
    tmp_path: Path,
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(sqlite_mlflow)
    first = churn.write_parquet(churn_small.head(3000), tmp_path / "first.parquet")
    second = churn.write_parquet(churn_small.tail(4000), tmp_path / "second.parquet")
    v1 = _register(sqlite_mlflow, model_dir, first, evaluation)
    v2 = _register(sqlite_mlflow, model_dir, second, evaluation)
    client.set_registered_model_alias("churn", "champion", v1)

    target = tmp_path / "reference.parquet"
    found = resolve(sqlite_mlflow, "churn", "champion", "", str(target))
    run_id = client.get_model_version("churn", v1).run_id
    assert (found.model, found.version) == ("churn", v1)
    assert found.source == f"runs:/{run_id}/{REFERENCE_ARTIFACT}"
    same_rows(pd.read_parquet(target), pd.read_parquet(first))

    # The alias moves to the retrained model: the next check compares with its data.
    client.set_registered_model_alias("churn", "champion", v2)
    found = resolve(sqlite_mlflow, "churn", "champion", "", str(target))
    assert found.version == v2
    same_rows(pd.read_parquet(target), pd.read_parquet(second))


def test_an_explicit_reference_uri_is_used_as_it_is(tmp_path: Path) -> None:
    frame = churn.generate(500, seed=3)
    source = churn.write_parquet(frame, tmp_path / "mine.parquet")
    target = tmp_path / "out.parquet"
    # No registry is asked (the tracking URI is not even valid).
    found = resolve("", "churn", "champion", str(source), str(target))
    assert found.source == str(source) and found.version == ""
    assert target.read_bytes() == source.read_bytes()
    with pytest.raises(ComponentError) as error:
        resolve("", "churn", "champion", str(tmp_path / "missing.parquet"), str(target))
    assert str(error.value).startswith(
        f"reference_uri {str(tmp_path / 'missing.parquet')!r}: cannot read it: "
    )


def test_no_champion_or_no_sample_fails_with_what_to_do(
    sqlite_mlflow: str, model_dir: Path, evaluation: dict, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    target = str(tmp_path / "reference.parquet")
    with pytest.raises(ComponentError) as error:
        resolve(sqlite_mlflow, "churn", "champion", "", target)
    assert str(error.value) == (
        "no version of 'churn' has alias 'champion' (RESOURCE_DOES_NOT_EXIST): the drift "
        "check compares with the champion's training data; register and promote a model "
        "first, or pass reference_uri"
    )
    # A version registered without a training sample (before the platform logged one).
    version = _register(sqlite_mlflow, model_dir, None, evaluation)
    MlflowClient(sqlite_mlflow).set_registered_model_alias("churn", "champion", version)
    with pytest.raises(ComponentError) as error:
        resolve(sqlite_mlflow, "churn", "champion", "", target)
    assert f"churn version {version} (champion): no training sample at runs:/" in str(error.value)
    assert str(error.value).endswith(
        "versions registered before the platform logged one need reference_uri"
    )


def test_the_sample_is_uniform_bounded_and_keeps_every_column() -> None:
    frame = churn.generate(3000, seed=4)
    assert reference_sample(frame, rows=5000).equals(frame.reset_index(drop=True))
    sample = reference_sample(frame, rows=1000)
    assert len(sample) == 1000 and list(sample.columns) == list(frame.columns)
    assert sample.equals(reference_sample(frame, rows=1000))  # seeded
    # Uniform over time: the sample spans the same dates as the frame.
    assert sample[churn.TIMESTAMP].min() - frame[churn.TIMESTAMP].min() < pd.Timedelta(days=30)
    assert frame[churn.TIMESTAMP].max() - sample[churn.TIMESTAMP].max() < pd.Timedelta(days=30)
