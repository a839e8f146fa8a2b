"""`validate_data`: stop the run with a readable report when a dataset is not fit for training."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def validate_data(
    dataset: Input[Dataset],
    report: Output[Markdown],
    min_rows: int = 1000,
    max_missing_fraction: float = 0.2,
    min_positive_rate: float = 0.01,
    max_positive_rate: float = 0.99,
) -> str:
    """Check schema, types, missing values, ranges and label balance of a churn dataset.

    Writes the report (Markdown) in every case; when a check fails the task fails with the
    report as its message, so nothing downstream (training, registration) runs.

    Returns:
        The SHA-256 of the dataset file, the lineage tag of every model trained on it.
    """
    from mlops_platform.pipelines.components.common import dataset_hash, fail, read_dataset
    from mlops_platform.pipelines.components.validate_data.logic import (
        DataValidationError,
        Thresholds,
        validate,
    )

    thresholds = Thresholds(
        min_rows=min_rows,
        max_missing_fraction=max_missing_fraction,
        min_positive_rate=min_positive_rate,
        max_positive_rate=max_positive_rate,
    )
    try:
        frame = read_dataset(dataset.path)
    except Exception as exc:  # a corrupt or non-Parquet file is bad input, not a crash
        fail(DataValidationError(f"{dataset.uri}: cannot read as a Parquet table: {exc}"))
    result = validate(frame, source=dataset.uri, thresholds=thresholds)
    with open(report.path, "w") as handle:
        handle.write(result.to_markdown())
    report.metadata.update({"passed": result.passed, "rows": result.rows})
    if not result.passed:
        fail(DataValidationError(result.summary()))
    print(result.summary(), flush=True)
    return dataset_hash(dataset.path)
