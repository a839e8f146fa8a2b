"""The retraining steps both pipelines share: split, train, evaluate against the champion,
register. A plain function called inside each `@dsl.pipeline` (not a nested pipeline), so the
compiled YAML keeps one flat DAG per pipeline."""

from typing import Any

from kfp import kubernetes

from mlops_platform.pipelines.components.champion_reference.component import champion_reference
from mlops_platform.pipelines.components.check_drift.component import check_drift
from mlops_platform.pipelines.components.evaluate_model.component import evaluate_model
from mlops_platform.pipelines.components.register_model.component import register_model
from mlops_platform.pipelines.components.split_data.component import split_data
from mlops_platform.pipelines.components.train_model.component import train_model
from mlops_platform.pipelines.components.validate_data.component import validate_data

# On a cluster the platform's MLflow requires basic auth: its component creates the pipeline
# runner's user and puts the credentials in this Secret in the runner's namespace
# (`mlflow.clients.pipelines` in the stacks; the name is the MLflow component's default).
# Optional, so clusters whose MLflow has no auth run the same pipelines.
MLFLOW_CREDENTIALS_SECRET = "mlflow-client-credentials"
# Mounted as files where MLflow's client reads its credentials file: `$HOME/.mlflow/credentials`
# (the platform image sets HOME=/tmp); no secret reaches the step's environment.
MLFLOW_CREDENTIALS_DIR = "/tmp/.mlflow"
# A step that opens bucket objects itself (Feast reading its registry and offline Parquet), not
# through KFP's artifacts: on a local stack the runner's MinIO keys and endpoint are the AWS
# SDKs' own files in its identity's Secret (mlops_platform/components/identity: the Secret
# `<service account>-s3-credentials`, mounted at the platform's secrets folder; a test keeps
# these equal). On AWS and GCP that Secret does not exist (optional mount) and the pod's workload
# identity gives the credentials; the SDKs skip a config file that is not there.
OBJECT_STORE_CREDENTIALS_SECRET = "pipeline-runner-s3-credentials"
OBJECT_STORE_CREDENTIALS_DIR = "/var/run/secrets/mlops/object-store-credentials"


def split_train_evaluate_register(
    *,
    dataset: Any,
    validated: Any,
    tracking_uri: Any,
    pipeline: str,
    golden_fraction: Any,
    search_iterations: Any,
    search_rows: Any,
    max_iter: Any,
    primary_metric: Any,
    tolerance: Any,
    seed: Any,
    enabled: Any = None,
) -> tuple[Any, Any, Any]:
    """Wire the steps on the `dataset` channel (validated by `validated`); returns (split,
    evaluated, registered). `enabled`, when given, gates every step (see drift.py for why
    not dsl.If)."""
    gate = {} if enabled is None else {"enabled": enabled}
    split = split_data(dataset=dataset, golden_fraction=golden_fraction, seed=seed, **gate)
    if enabled is None:
        split.after(validated)
    trained = train_model(
        train=split.outputs["train"],
        search_iterations=search_iterations,
        search_rows=search_rows,
        max_iter=max_iter,
        seed=seed,
        **gate,
    )
    evaluated = evaluate_model(
        model=trained.outputs["model"],
        golden=split.outputs["golden"],
        tracking_uri=tracking_uri,
        primary_metric=primary_metric,
        tolerance=tolerance,
        **gate,
    )
    registered = register_model(
        model=trained.outputs["model"],
        evaluation=evaluated.outputs["evaluation"],
        golden=split.outputs["golden"],
        reference=split.outputs["train"],
        tracking_uri=tracking_uri,
        dataset_sha256=validated.outputs["Output"],
        pipeline=pipeline,
        **gate,
    )
    for task in (evaluated, registered):
        reads_registry(task)
    return split, evaluated, registered


def reads_registry(task: Any) -> Any:
    """A step that reads or writes the MLflow registry: the platform's client credentials,
    and no caching (a cached result would not reflect the registry's current state)."""
    task.set_caching_options(False)
    kubernetes.use_secret_as_volume(
        task,
        secret_name=MLFLOW_CREDENTIALS_SECRET,
        mount_path=MLFLOW_CREDENTIALS_DIR,
        optional=True,
    )
    return task


def reads_object_store(task: Any) -> Any:
    """A step that opens `s3://` objects with the AWS SDKs itself: locally, the runner's MinIO
    keys and endpoint as files (no secret in its environment)."""
    kubernetes.use_secret_as_volume(
        task,
        secret_name=OBJECT_STORE_CREDENTIALS_SECRET,
        mount_path=OBJECT_STORE_CREDENTIALS_DIR,
        optional=True,
    )
    task.set_env_variable(
        "AWS_SHARED_CREDENTIALS_FILE", f"{OBJECT_STORE_CREDENTIALS_DIR}/credentials"
    )
    task.set_env_variable("AWS_CONFIG_FILE", f"{OBJECT_STORE_CREDENTIALS_DIR}/config")
    return task


def champion_reference_step(
    *, tracking_uri: Any, model_name: Any, alias: Any, reference_uri: Any
) -> Any:
    """The drift check's reference: the training data of `model_name@alias` from its lineage,
    or the file at `reference_uri` when one is given."""
    return reads_registry(
        champion_reference(
            tracking_uri=tracking_uri,
            model_name=model_name,
            alias=alias,
            reference_uri=reference_uri,
        )
    )


def check_drift_then_retrain(
    *,
    current: Any,
    labelled: Any,
    tracking_uri: Any,
    model_name: Any,
    reference_alias: Any,
    reference_uri: Any,
    pipeline: str,
    drift: dict[str, Any],
    retrain: dict[str, Any],
) -> Any:
    """What both drift pipelines do with their window: `current` checked for drift against the
    champion's reference (`drift`: check_drift's thresholds), then, gated by the verdict, the
    retraining steps on `labelled` (`retrain`: their parameters). Returns the register task."""
    reference = champion_reference_step(
        tracking_uri=tracking_uri,
        model_name=model_name,
        alias=reference_alias,
        reference_uri=reference_uri,
    )
    validated = validate_data(dataset=labelled)
    checked = check_drift(reference=reference.outputs["reference"], current=current, **drift)
    checked.after(validated)
    _, _, registered = split_train_evaluate_register(
        dataset=labelled,
        validated=validated,
        tracking_uri=tracking_uri,
        pipeline=pipeline,
        enabled=checked.outputs["Output"],
        **retrain,
    )
    checked.set_caching_options(False)
    return registered
