"""Find the data a registered model was trained on: the drift check's reference.

The register step logs a sample of every model's training split with its run
(`REFERENCE_ARTIFACT`); the version an alias points at leads to that run. So the reference is
derived from the registry, never a path someone must keep up to date: when the alias moves to
a retrained model, the next drift check compares against the new model's training data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from mlops_platform.pipelines.components.common import ComponentError

# Where the register step logs the training sample, relative to the run's artifact root.
REFERENCE_ARTIFACT = "reference/reference.parquet"
# Rows kept: enough for the KS / chi² tests and PSI bins to be stable, small enough to log
# with every version (a few MB). A uniform sample keeps the seasons in proportion.
REFERENCE_ROWS = 50_000


def reference_sample(train: Any, rows: int = REFERENCE_ROWS, seed: int = 0) -> Any:
    """At most `rows` rows of the training split, sampled uniformly, every column kept (the
    snapshot date too: the drift check narrows a year-long reference to the season)."""
    if len(train) <= rows:
        return train.reset_index(drop=True)
    return train.sample(n=rows, random_state=seed).sort_index().reset_index(drop=True)


@dataclass(frozen=True)
class Reference:
    """Where the reference came from, for the step's metadata and log."""

    source: str
    model: str = ""
    version: str = ""

    def describe(self) -> str:
        if not self.version:
            return f"reference {self.source}"
        return f"reference of {self.model} version {self.version}: {self.source}"


def copy_uri(uri: str, target: str) -> None:
    """Copy the Parquet file at `uri` (a local path, `s3://` or `gs://`) to `target`."""
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(uri) if "://" in uri else (pafs.LocalFileSystem(), uri)
        with fs.open_input_stream(path) as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    except (OSError, ValueError) as exc:
        raise ComponentError(f"reference_uri {uri!r}: cannot read it: {exc}") from None


def resolve(
    tracking_uri: str, model_name: str, alias: str, reference_uri: str, target: str
) -> Reference:
    """Write the reference data to `target`: the file at `reference_uri` when one is given,
    else the training sample logged with the run of `model_name@alias`."""
    if reference_uri:
        copy_uri(reference_uri, target)
        return Reference(source=reference_uri)
    from mlflow.exceptions import MlflowException

    from mlops_platform.pipelines.components.common import connect_mlflow

    client = connect_mlflow(tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        raise ComponentError(
            f"no version of {model_name!r} has alias {alias!r} ({exc.error_code}): the drift "
            f"check compares with the {alias}'s training data; register and promote a model "
            "first, or pass reference_uri"
        ) from None
    run_id = version.run_id or (version.tags or {}).get("training_run_id", "")
    if not run_id:
        raise ComponentError(
            f"{model_name} version {version.version} ({alias}) has no run: its training data "
            "is unknown; pass reference_uri"
        )
    source = f"runs:/{run_id}/{REFERENCE_ARTIFACT}"
    import mlflow

    folder = tempfile.mkdtemp(prefix="reference-")
    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=folder
        )
        shutil.copyfile(local, target)
    except (MlflowException, OSError) as exc:
        raise ComponentError(
            f"{model_name} version {version.version} ({alias}): no training sample at "
            f"{source} ({type(exc).__name__}); versions registered before the platform logged "
            "one need reference_uri"
        ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Reference(source=source, model=model_name, version=str(version.version))


def output_path(path: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return path
