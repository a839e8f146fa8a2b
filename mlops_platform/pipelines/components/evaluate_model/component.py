"""`evaluate_model`: golden-set metrics, per segment, compared with the registry's champion."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate_model(
    model: Input[Model],
    golden: Input[Dataset],
    tracking_uri: str,
    metrics: Output[Metrics],
    evaluation: Output[Artifact],
    segment_features: list = ["membership_tier", "preferred_device"],  # noqa: B006
    primary_metric: str = "roc_auc",
    tolerance: float = 0.01,
    explain_rows: int = 2000,
    enabled: bool = True,
) -> bool:
    """ROC AUC, PR AUC and F1 of the candidate on the golden set, overall and per segment, and
    of the current `champion` (from the MLflow registry) on the same rows.

    Returns whether the candidate may be promoted: it is not when it is worse than the champion
    on `primary_metric` by more than `tolerance`. The full comparison is written to
    `evaluation` (JSON) for the registration step and the model card, with the candidate's
    global feature attributions on at most `explain_rows` golden rows (TreeSHAP for tree models,
    permutation importance otherwise; mlops_platform/pipelines/lib/explain.py).
    """
    import json

    from mlops_platform.pipelines.components.common import (
        REGISTERED_MODEL_NAME,
        ComponentError,
        champion_version,
        connect_mlflow,
        fail,
        mark_skipped,
        read_dataset,
    )
    from mlops_platform.pipelines.components.evaluate_model.logic import decide, evaluate
    from mlops_platform.pipelines.components.train_model.logic import load
    from mlops_platform.pipelines.data import churn
    from mlops_platform.pipelines.lib.explain import global_attributions

    if not enabled:
        mark_skipped("not enabled (no drift found)", metrics, evaluation)
        return False
    try:
        client = connect_mlflow(tracking_uri)
    except ComponentError as error:
        fail(error)
    candidate_model, _ = load(model.path)
    golden_df = read_dataset(golden.path)
    candidate = evaluate(candidate_model, golden_df, list(segment_features))

    champion = None
    champion_info = None
    current = champion_version(client)
    if current is not None:
        import mlflow.sklearn

        champion_model = mlflow.sklearn.load_model(
            f"models:/{REGISTERED_MODEL_NAME}/{current.version}"
        )
        champion = evaluate(champion_model, golden_df, list(segment_features))
        champion_info = {"version": current.version, "run_id": current.run_id}
    promote, reason = decide(candidate, champion, primary_metric, tolerance)
    explanation = global_attributions(
        candidate_model,
        golden_df[churn.FEATURE_NAMES],
        golden_df[churn.LABEL],
        rows=explain_rows,
    )
    top = ", ".join(row["feature"] for row in explanation["features"][:5])
    print(f"attributions ({explanation['method']}): top features {top}", flush=True)

    for name in ("roc_auc", "pr_auc", "f1"):
        if candidate["overall"][name] is not None:
            metrics.log_metric(f"golden_{name}", candidate["overall"][name])
        if champion is not None and champion["overall"][name] is not None:
            metrics.log_metric(f"champion_golden_{name}", champion["overall"][name])
    result = {
        "candidate": candidate,
        "champion": champion,
        "champion_version": champion_info,
        "primary_metric": primary_metric,
        "tolerance": tolerance,
        "promote": promote,
        "reason": reason,
        "explanation": explanation,
    }
    with open(evaluation.path, "w") as handle:
        json.dump(result, handle, indent=1)
    evaluation.metadata.update({"promote": promote, "reason": reason})
    print(("PROMOTE: " if promote else "REJECT: ") + reason, flush=True)
    return promote
