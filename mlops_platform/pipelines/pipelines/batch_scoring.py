"""`batch_scoring_pipeline`: score a Parquet dataset with a registered model alias."""

from kfp import dsl

from mlops_platform.pipelines.components.batch_score.component import batch_score
from mlops_platform.pipelines.pipelines.steps import reads_registry


@dsl.pipeline(
    name="churn-batch-scoring",
    description="Score a Parquet dataset from the datasets bucket with a registered model "
    "alias and write the predictions beside it, with the model version and input hash.",
)
def batch_scoring_pipeline(
    data_uri: str,
    tracking_uri: str,
    model_name: str = "churn",
    alias: str = "champion",
    output_uri: str = "",
    batch_rows: int = 100000,
) -> str:
    """Returns the URI of the predictions file."""
    scored = reads_registry(
        batch_score(
            data_uri=data_uri,
            tracking_uri=tracking_uri,
            model_name=model_name,
            alias=alias,
            output_uri=output_uri,
            batch_rows=batch_rows,
        )
    )
    return scored.outputs["Output"]
