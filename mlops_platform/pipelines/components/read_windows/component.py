"""`read_windows`: the prediction log's windows of a time range as the drift check's input."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def read_windows(
    bucket_uri: str,
    model_name: str,
    current: Output[Dataset],
    labelled: Output[Dataset],
    start: str = "",
    end: str = "",
    hours: int = 168,
    labels_until: str = "",
):
    """Read the predictions of `model_name` in `[start, end)` (ISO 8601 with a timezone; empty
    `end` = the start of the current hour, empty `start` = `hours` before `end`) from the
    Parquet windows the prediction-log consumer writes under `bucket_uri`, joined with the
    labels observed until `labels_until` (empty = now).

    `current` holds every row (features, `snapshot_date` = prediction time, `churned` = the
    label or null): the input-drift check needs no labels. `labelled` holds the rows with a
    label: what validation and retraining need. No rows in the range fails the step.
    """
    from mlops_platform.pipelines.components.common import fail, write_dataset
    from mlops_platform.pipelines.components.read_windows.logic import WindowError, read_frames

    try:
        frames = read_frames(bucket_uri, model_name, start, end, hours, labels_until)
    except WindowError as error:
        fail(error)
    write_dataset(frames.current, current.path)
    write_dataset(frames.labelled, labelled.path)
    current.metadata.update(frames.summary)
    labelled.metadata.update({**frames.summary, "rows": frames.summary["labelled_rows"]})
    summary = frames.summary
    print(
        f"read {summary['rows']} rows ({summary['labelled_rows']} labelled) of "
        f"{summary['start']}..{summary['end']}, versions {summary['versions']}",
        flush=True,
    )
