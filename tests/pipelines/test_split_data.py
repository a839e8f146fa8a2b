"""split_data: the golden set is the most recent slice, and the component's skip mode."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from kfp.dsl import Dataset

from mlops_platform.pipelines.components.split_data.component import split_data
from mlops_platform.pipelines.components.split_data.logic import split
from mlops_platform.pipelines.data import churn


def test_golden_is_the_latest_fraction_by_snapshot_date(churn_small: pd.DataFrame) -> None:
    shuffled = churn_small.sample(frac=1.0, random_state=1)
    train, golden = split(shuffled, 0.25, seed=0)
    assert (len(train), len(golden)) == (6000, 2000)
    assert train[churn.TIMESTAMP].max() <= golden[churn.TIMESTAMP].min()
    assert set(train[churn.ID]) | set(golden[churn.ID]) == set(churn_small[churn.ID])


def test_without_timestamp_the_split_is_stratified(churn_small: pd.DataFrame) -> None:
    frame = churn_small.drop(columns=[churn.TIMESTAMP])
    train, golden = split(frame, 0.2, seed=0)
    assert (len(train), len(golden)) == (6400, 1600)
    assert abs(train[churn.LABEL].mean() - golden[churn.LABEL].mean()) < 0.002


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_fraction_must_be_strictly_between_0_and_1(churn_small, fraction) -> None:
    with pytest.raises(
        ValueError, match=f"golden_fraction must be between 0 and 1, got {fraction}"
    ):
        split(churn_small, fraction, seed=0)


def test_disabled_component_writes_placeholders_only(churn_parquet: Path, tmp_path: Path) -> None:
    train = Dataset(name="train", uri=str(tmp_path / "train"))
    golden = Dataset(name="golden", uri=str(tmp_path / "golden"))
    split_data.python_func(
        dataset=Dataset(name="d", uri=str(churn_parquet)), train=train, golden=golden, enabled=False
    )
    assert (tmp_path / "train").read_text() == "skipped: not enabled (no drift found)\n"
    assert train.metadata == {"skipped": True, "reason": "not enabled (no drift found)"}
    assert golden.metadata["skipped"] is True
