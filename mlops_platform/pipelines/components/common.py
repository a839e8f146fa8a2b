"""Helpers shared by the component logic modules: errors, dataset IO, MLflow connection, lineage.

Component bodies call these from inside the function (heavy imports stay lazy), so the
same code runs under kfp's local runner and in the platform image on a cluster.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

REGISTERED_MODEL_NAME = "churn"
EXPERIMENT_NAME = "churn"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
# Seconds to wait for MLflow before declaring it unreachable; a pipeline step should fail fast
# with one readable line rather than retry for minutes (MLflow's default is 7 retries).
MLFLOW_TIMEOUT_SECONDS = 10


class ComponentError(Exception):
    """An expected failure with a message meant for people: printed without a stack trace."""


class MlflowUnreachableError(ComponentError):
    pass


def fail(error: ComponentError) -> NoReturn:
    """End the component process with the readable message only (exit status 1).

    kfp's executor would print a full traceback for an exception; SystemExit with a string
    prints just the message, so the task log ends with the report that explains the failure.
    """
    print(f"ERROR: {error}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def read_dataset(path: str | os.PathLike[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path)


def write_dataset(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


def dataset_hash(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the dataset file: the lineage tag that ties a model to its exact data."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_version() -> str:
    """Which code trained a model: `MLOPS_CODE_VERSION` (set in the platform image at build time),
    else the git commit of a source checkout, else the installed package version."""
    from_env = os.environ.get("MLOPS_CODE_VERSION")
    if from_env:
        return from_env
    repo = Path(__file__).resolve().parents[3]
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        if sha:
            return f"git:{sha}"
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mlops-platform=={version('mlops-platform')}"
    except PackageNotFoundError:
        return "unknown"


def connect_mlflow(tracking_uri: str, timeout: int = MLFLOW_TIMEOUT_SECONDS) -> MlflowClient:
    """An MLflow client for `tracking_uri`, after checking the server answers within `timeout`.

    Raises MlflowUnreachableError with one line naming the URI, instead of MLflow's retry loop
    and stack trace.
    """
    if not tracking_uri:
        raise MlflowUnreachableError("tracking_uri is empty: pass the MLflow tracking server URL")
    # MLflow reads these for every HTTP request; set them before the first one.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(timeout)
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # any transport or server error means "cannot use it"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MlflowUnreachableError(
            f"MLflow tracking server at {tracking_uri} is unreachable: {reason[:300]}"
        ) from None
    return client


def champion_version(client: MlflowClient, name: str = REGISTERED_MODEL_NAME):
    """The model version under alias `champion`, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def mark_skipped(reason: str, *artifacts) -> None:
    """Write a placeholder for each output artifact of a step that has nothing to do.

    kfp's local runner cannot evaluate `dsl.If` (see mlops_platform/pipelines/README.md), so steps that
    only make sense after drift is found take `enabled` and skip themselves. The placeholder
    keeps the artifact contract (a file exists at every output path, on a cluster too) and the
    metadata says why it is empty.
    """
    print(f"skipped: {reason}", flush=True)
    for artifact in artifacts:
        Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
        Path(artifact.path).write_text(f"skipped: {reason}\n")
        artifact.metadata["skipped"] = True
        artifact.metadata["reason"] = reason
