"""Out-of-time split: the most recent snapshots form the golden set the model is judged on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def split(df: pd.DataFrame, golden_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, golden): golden holds the latest `golden_fraction` of rows by snapshot date.

    Judging on later data than the model saw is how it will be used; a random split would
    flatter it. Without a timestamp column the split is random (seeded) and stratified.
    """
    from sklearn.model_selection import train_test_split

    from mlops_platform.pipelines.data import churn

    if not 0 < golden_fraction < 1:
        raise ValueError(f"golden_fraction must be between 0 and 1, got {golden_fraction}")
    if churn.TIMESTAMP in df.columns:
        ordered = df.sort_values(churn.TIMESTAMP, kind="stable").reset_index(drop=True)
        cut = len(ordered) - max(1, round(len(ordered) * golden_fraction))
        return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)
    train, golden = train_test_split(
        df, test_size=golden_fraction, random_state=seed, stratify=df[churn.LABEL]
    )
    return train.reset_index(drop=True), golden.reset_index(drop=True)
