"""`champion_reference`: the training data of the model an alias points at (the drift
check's reference), or an explicit file."""

from kfp import dsl
from kfp.dsl import Dataset, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def champion_reference(
    tracking_uri: str,
    reference: Output[Dataset],
    model_name: str = "churn",
    alias: str = "champion",
    reference_uri: str = "",
):
    """Write the reference data for the drift check to `reference`.

    With `reference_uri` empty (the default), it is the training sample the register step
    logged with the run of `model_name@alias`, so the check always compares with the data the
    serving model learnt from. A non-empty `reference_uri` (Parquet: a path, `s3://`, `gs://`)
    is used as it is. No such alias, or a version without a logged sample, fails the step with
    a message saying so.
    """
    from mlops_platform.pipelines.components.champion_reference.logic import output_path, resolve
    from mlops_platform.pipelines.components.common import ComponentError, fail

    try:
        found = resolve(tracking_uri, model_name, alias, reference_uri, output_path(reference.path))
    except ComponentError as error:
        fail(error)
    reference.metadata.update(
        {"source": found.source, "model": found.model, "version": found.version}
    )
    print(found.describe(), flush=True)
