"""`windows_drift_pipeline`: `drift_pipeline` on live traffic, reading a time range of the
prediction log's Parquet windows (`mlops_platform/pipelines/loop`) instead of a prepared Parquet file.

Input drift is checked on every prediction row of the range (labels are not needed for it);
validation and retraining use the rows whose ground-truth label has arrived. The retraining
steps are gated by `enabled` for the reason given in drift.py.
"""

from kfp import dsl

from mlops_platform.pipelines.components.read_windows.component import read_windows
from mlops_platform.pipelines.pipelines.steps import check_drift_then_retrain


@dsl.pipeline(
    name="churn-windows-drift",
    description="Check the prediction log's recent windows for drift against the champion's "
    "training data and, when drift is found, retrain on the labelled rows, evaluate and "
    "register a new challenger.",
)
def windows_drift_pipeline(
    bucket_uri: str,
    tracking_uri: str,
    model_name: str = "churn",
    reference_uri: str = "",
    reference_alias: str = "champion",
    start: str = "",
    end: str = "",
    hours: int = 168,
    labels_until: str = "",
    psi_threshold: float = 0.0,
    pvalue_threshold: float = 0.01,
    min_drifted_features: int = 1,
    season_days: int = 7,
    drift_config: str = "",
    golden_fraction: float = 0.2,
    search_iterations: int = 4,
    search_rows: int = 50000,
    max_iter: int = 200,
    primary_metric: str = "roc_auc",
    tolerance: float = 0.01,
    seed: int = 0,
) -> str:
    """Returns the new model version, or "" when no drift was found (nothing retrained).

    `bucket_uri` is the datasets bucket the prediction-log consumer writes to; the range is
    `[start, end)` or, for a recurring run, the last `hours` before the current hour. The
    reference is the training data of `model_name@reference_alias` (its run's logged sample),
    or the file at `reference_uri` when one is given.
    """
    read = read_windows(
        bucket_uri=bucket_uri,
        model_name=model_name,
        start=start,
        end=end,
        hours=hours,
        labels_until=labels_until,
    )
    # A recurring run reads a different range each time with the same arguments.
    read.set_caching_options(False)
    drift_args = {
        "psi_threshold": psi_threshold,
        "pvalue_threshold": pvalue_threshold,
        "min_drifted_features": min_drifted_features,
        "season_days": season_days,
        "drift_config": drift_config,
    }
    retrain_args = {
        "golden_fraction": golden_fraction,
        "search_iterations": search_iterations,
        "search_rows": search_rows,
        "max_iter": max_iter,
        "primary_metric": primary_metric,
        "tolerance": tolerance,
        "seed": seed,
    }
    registered = check_drift_then_retrain(
        current=read.outputs["current"],
        labelled=read.outputs["labelled"],
        tracking_uri=tracking_uri,
        model_name=model_name,
        reference_alias=reference_alias,
        reference_uri=reference_uri,
        pipeline="windows-drift",
        drift=drift_args,
        retrain=retrain_args,
    )
    return registered.outputs["Output"]
