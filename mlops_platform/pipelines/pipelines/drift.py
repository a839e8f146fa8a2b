"""`drift_pipeline`: check a recent window for drift and, when found, retrain on it.

kfp 2.16.1's local runner cannot evaluate `dsl.If` conditions (it always takes the branch as
false, see mlops_platform/pipelines/README.md), and the demo runs the same pipeline as the cluster. So the
retraining steps are always scheduled and receive the drift decision as `enabled`: without
drift they write placeholders and finish in a second.
"""

from kfp import dsl
from kfp.dsl import Dataset

from mlops_platform.pipelines.pipelines.steps import check_drift_then_retrain


@dsl.pipeline(
    name="churn-drift",
    description="Check a recent window of churn data for drift against the champion's training "
    "data and, when drift is found, retrain, evaluate and register a new challenger.",
)
def drift_pipeline(
    data_uri: str,
    tracking_uri: str,
    model_name: str = "churn",
    reference_uri: str = "",
    reference_alias: str = "champion",
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

    `data_uri` is the recent, labelled window (Parquet). The reference is the training data of
    `model_name@reference_alias` (logged with its run by the register step), or the file at
    `reference_uri` when one is given. On drift the model is retrained on the recent window.
    """
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
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
        current=data.output,
        labelled=data.output,
        tracking_uri=tracking_uri,
        model_name=model_name,
        reference_alias=reference_alias,
        reference_uri=reference_uri,
        pipeline="drift",
        drift=drift_args,
        retrain=retrain_args,
    )
    return registered.outputs["Output"]
