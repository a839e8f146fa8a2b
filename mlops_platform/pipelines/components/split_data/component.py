"""`split_data`: a training set and a later, held-out golden set."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def split_data(
    dataset: Input[Dataset],
    train: Output[Dataset],
    golden: Output[Dataset],
    golden_fraction: float = 0.2,
    seed: int = 0,
    enabled: bool = True,
):
    """Split a validated dataset by time: the latest `golden_fraction` becomes the golden set.

    `enabled=False` writes placeholders and does nothing else (the drift pipeline passes its
    drift decision here instead of a `dsl.If`, which kfp's local runner cannot evaluate).
    """
    from mlops_platform.pipelines.components.common import mark_skipped, read_dataset, write_dataset
    from mlops_platform.pipelines.components.split_data.logic import split

    if not enabled:
        mark_skipped("not enabled (no drift found)", train, golden)
        return
    train_df, golden_df = split(read_dataset(dataset.path), golden_fraction, seed)
    write_dataset(train_df, train.path)
    write_dataset(golden_df, golden.path)
    train.metadata["rows"] = len(train_df)
    golden.metadata["rows"] = len(golden_df)
    print(f"train: {len(train_df)} rows, golden: {len(golden_df)} rows", flush=True)
