"""`training_pipeline`: validate, split, train, evaluate against the champion, register."""

from kfp import dsl
from kfp.dsl import Dataset

from kfp_pipelines.components.evaluate_model.component import evaluate_model
from kfp_pipelines.components.register_model.component import register_model
from kfp_pipelines.components.split_data.component import split_data
from kfp_pipelines.components.train_model.component import train_model
from kfp_pipelines.components.validate_data.component import validate_data


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
    split = split_data(dataset=data.output, golden_fraction=golden_fraction, seed=seed)
    split.after(validated)
    trained = train_model(
        train=split.outputs["train"],
        search_iterations=search_iterations,
        search_rows=search_rows,
        max_iter=max_iter,
        seed=seed,
    )
    evaluated = evaluate_model(
        model=trained.outputs["model"],
        golden=split.outputs["golden"],
        tracking_uri=tracking_uri,
        primary_metric=primary_metric,
        tolerance=tolerance,
    )
    registered = register_model(
        model=trained.outputs["model"],
        evaluation=evaluated.outputs["evaluation"],
        tracking_uri=tracking_uri,
        dataset_sha256=validated.outputs["Output"],
        pipeline="training",
    )
    # Both read or write the registry, whose state a cached result would not reflect.
    evaluated.set_caching_options(False)
    registered.set_caching_options(False)
    return registered.outputs["Output"]
