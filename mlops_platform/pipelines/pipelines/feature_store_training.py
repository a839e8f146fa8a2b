"""`feature_store_training_pipeline`: the training frame from Feast's offline store (point in
time), then the same validate, split, train, evaluate and register steps as `training_pipeline`.

Only the first step differs: `feature_store_frame` runs in the Feast image (Feast,
pandas 2) and joins the churn feature service onto the labels; every later step runs in the
platform image on the frame it wrote. It is not part of `mlops demo` (kfp's local subprocess
runner runs Python components only, and this step is a container component).
"""

from kfp import dsl
from kfp.dsl import Dataset

from mlops_platform.pipelines.components.feature_store_frame.component import feature_store_frame
from mlops_platform.pipelines.components.validate_data.component import validate_data
from mlops_platform.pipelines.pipelines.steps import (
    reads_object_store,
    split_train_evaluate_register,
)


@dsl.pipeline(
    name="churn-training-feature-store",
    description="Build the churn training frame from the Feast offline store with point-in-time "
    "joins onto labelled entities, then validate, train, evaluate against the champion and "
    "register it as challenger.",
)
def feature_store_training_pipeline(
    entities_uri: str,
    tracking_uri: str,
    feast_registry_path: str,
    feast_project: str = "mlops",
    feature_service: str = "churn_model",
    offline_store: str = "file",
    golden_fraction: float = 0.2,
    search_iterations: int = 4,
    search_rows: int = 50000,
    max_iter: int = 200,
    primary_metric: str = "roc_auc",
    tolerance: float = 0.01,
    seed: int = 0,
) -> str:
    """Returns the registered model version.

    `entities_uri`: Parquet with `customer_id`, the label time `snapshot_date` and the label
    `churned` (s3://, gs://, minio://). `feast_registry_path` and `feast_project` are filled in
    by the platform for its schedules (the feature store's registry and project).
    """
    entities = dsl.importer(artifact_uri=entities_uri, artifact_class=Dataset, reimport=False)
    frame = feature_store_frame(
        entities=entities.output,
        registry_path=feast_registry_path,
        project=feast_project,
        feature_service=feature_service,
        offline_store=offline_store,
    )
    # The offline data changes under the same arguments: a cached frame would be stale.
    frame.set_caching_options(False)
    # Feast reads the registry and the offline Parquet from the bucket itself.
    reads_object_store(frame)
    validated = validate_data(dataset=frame.outputs["frame"])
    _, _, registered = split_train_evaluate_register(
        dataset=frame.outputs["frame"],
        validated=validated,
        tracking_uri=tracking_uri,
        pipeline="feature_store_training",
        golden_fraction=golden_fraction,
        search_iterations=search_iterations,
        search_rows=search_rows,
        max_iter=max_iter,
        primary_metric=primary_metric,
        tolerance=tolerance,
        seed=seed,
    )
    return registered.outputs["Output"]
