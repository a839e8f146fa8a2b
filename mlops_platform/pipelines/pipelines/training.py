"""`training_pipeline`: validate, split, train, evaluate against the champion, register."""

from kfp import dsl
from kfp.dsl import Dataset

from mlops_platform.pipelines.components.validate_data.component import validate_data
from mlops_platform.pipelines.pipelines.steps import split_train_evaluate_register


@dsl.pipeline(
    name="churn-training",
    description="Validate a churn dataset, train a HistGradientBoosting model with a small "
    "search, evaluate it on a golden set against the champion and register it as challenger.",
)
def training_pipeline(
    data_uri: str,
    tracking_uri: str,
    golden_fraction: float = 0.2,
    search_iterations: int = 4,
    search_rows: int = 50000,
    max_iter: int = 200,
    primary_metric: str = "roc_auc",
    tolerance: float = 0.01,
    seed: int = 0,
) -> str:
    """Returns the registered model version (alias `challenger` unless it lost to the champion).

    `data_uri` is a Parquet file (local path, s3://, gs://, minio://); `tracking_uri` the MLflow
    tracking server.
    """
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
    validated = validate_data(dataset=data.output)
    _, _, registered = split_train_evaluate_register(
        dataset=data.output,
        validated=validated,
        tracking_uri=tracking_uri,
        pipeline="training",
        golden_fraction=golden_fraction,
        search_iterations=search_iterations,
        search_rows=search_rows,
        max_iter=max_iter,
        primary_metric=primary_metric,
        tolerance=tolerance,
        seed=seed,
    )
    return registered.outputs["Output"]
