"""`register_model`: an MLflow model version with lineage, alias `challenger` and a model card."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    evaluation: Input[Artifact],
    golden: Input[Dataset],
    reference: Input[Dataset],
    tracking_uri: str,
    dataset_sha256: str,
    model_card: Output[Markdown],
    pipeline: str = "training",
    enabled: bool = True,
) -> str:
    """Register the trained model as a new version of `churn` in the MLflow registry.

    The version carries the signature, an input example, the golden metrics, lineage tags
    (dataset hash, code version, parameters) and the drift reference profile of its training
    data (model metadata). It gets alias `challenger` only when evaluation allowed promotion.
    A label-stratified sample of the golden set is logged with the run (`golden/`), for the
    release gate on the cluster; a uniform sample of `reference` (the training split) as
    `reference/`, the drift check's reference while this version serves.
    The model card (metrics, segments, lineage) is logged with the run and written here.

    Returns:
        The new model version number.
    """
    import json

    from mlops_platform.pipelines.components.common import ComponentError, fail, mark_skipped
    from mlops_platform.pipelines.components.register_model.logic import register

    if not enabled:
        mark_skipped("not enabled (no drift found)", model_card)
        return ""
    with open(evaluation.path) as handle:
        result = json.load(handle)
    try:
        version, card = register(
            tracking_uri=tracking_uri,
            model_dir=model.path,
            evaluation=result,
            dataset_sha256=dataset_sha256,
            pipeline=pipeline,
            golden_path=golden.path,
            reference_path=reference.path,
        )
    except ComponentError as error:
        fail(error)
    with open(model_card.path, "w") as handle:
        handle.write(card)
    model_card.metadata.update({"version": version, "promoted": bool(result["promote"])})
    print(f"registered churn version {version}; promote={result['promote']}", flush=True)
    return version
