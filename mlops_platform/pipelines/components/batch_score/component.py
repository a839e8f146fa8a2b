"""`batch_score`: score a Parquet dataset with a registered model alias; predictions beside it."""

from kfp import dsl
from kfp.dsl import Markdown, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def batch_score(
    data_uri: str,
    tracking_uri: str,
    report: Output[Markdown],
    model_name: str = "churn",
    alias: str = "champion",
    output_uri: str = "",
    batch_rows: int = 100000,
) -> str:
    """Score every row of `data_uri` (Parquet: a path, `s3://`, `gs://`) with
    `models:/<model_name>@<alias>`, loaded as the model server loads it (pinned version,
    signature enforced), and write `prediction`, `score`, `_row` and the input's non-feature
    columns to `output_uri` (default: `<data>.predictions/<model>-v<version>.parquet` beside the
    input). The output's Parquet metadata carries the lineage: model URI, name, version, the
    input's URI and SHA-256, the time. Returns the output URI.
    """
    from mlops_platform.pipelines.components.batch_score.logic import score_file
    from mlops_platform.pipelines.components.common import ComponentError, connect_mlflow, fail

    try:
        connect_mlflow(tracking_uri)
        summary = score_file(
            f"models:/{model_name}@{alias}", data_uri, output_uri, batch_rows=batch_rows
        )
    except ComponentError as error:
        fail(error)
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    with open(report.path, "w") as handle:
        handle.write(
            f"# Batch scoring\n\n"
            f"- model: `{summary.model_uri}` = {summary.model} version {summary.version}\n"
            f"- input: `{summary.input_uri}` (sha256 `{summary.input_sha256}`)\n"
            f"- output: `{summary.output_uri}`\n"
            f"- rows: {summary.rows} in {summary.seconds:.1f} s ({rate:,.0f} rows/s)\n"
            f"- kept columns: {', '.join(summary.kept_columns) or 'none'}\n"
        )
    report.metadata.update(
        {
            "model_version": summary.version,
            "rows": summary.rows,
            "input_sha256": summary.input_sha256,
            "output_uri": summary.output_uri,
        }
    )
    print(
        f"scored {summary.rows} rows with {summary.model} v{summary.version} "
        f"into {summary.output_uri} ({rate:,.0f} rows/s)",
        flush=True,
    )
    return summary.output_uri
