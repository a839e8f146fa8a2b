"""Shared component helpers: MLflow reachability, lineage and placeholders."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from kfp.dsl import Dataset

from mlops_platform.pipelines.components.common import (
    MlflowUnreachableError,
    code_version,
    connect_mlflow,
    dataset_hash,
    mark_skipped,
)
from mlops_platform.pipelines.demo import free_port


def test_unreachable_mlflow_fails_fast_with_one_line() -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.raises(MlflowUnreachableError) as error:
        connect_mlflow(uri, timeout=3)
    assert time.perf_counter() - started < 15
    message = str(error.value)
    assert message.startswith(f"MLflow tracking server at {uri} is unreachable: ")
    assert "\n" not in message


def test_empty_tracking_uri_is_named() -> None:
    with pytest.raises(MlflowUnreachableError, match="tracking_uri is empty"):
        connect_mlflow("")


def test_connect_returns_a_working_client(sqlite_mlflow: str) -> None:
    client = connect_mlflow(sqlite_mlflow)
    assert [e.name for e in client.search_experiments()] == ["churn", "Default"]


def test_code_version_prefers_the_image_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_CODE_VERSION", "image:0.1.0+abc")
    assert code_version() == "image:0.1.0+abc"
    monkeypatch.delenv("MLOPS_CODE_VERSION")
    assert code_version().startswith(("git:", "mlops-platform==", "unknown"))


def test_dataset_hash_is_the_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    path.write_bytes(b"x" * (3 << 20))
    assert dataset_hash(path) == hashlib.sha256(b"x" * (3 << 20)).hexdigest()


def test_mark_skipped_writes_every_artifact(tmp_path: Path) -> None:
    artifacts = [Dataset(name=n, uri=str(tmp_path / "sub" / n)) for n in ("a", "b")]
    mark_skipped("why", *artifacts)
    assert [(tmp_path / "sub" / n).read_text() for n in ("a", "b")] == ["skipped: why\n"] * 2
    assert artifacts[1].metadata == {"skipped": True, "reason": "why"}
