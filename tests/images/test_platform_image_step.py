"""A compiled pipeline step, run in the platform image as the KFP launcher runs it in a pod.

The command and arguments are the validate-data executor of the compiled training pipeline
(mlops_platform/pipelines/pipelines/training_pipeline.yaml), with its `{{$}}` placeholder replaced by an
executor input naming `minio://` artifacts, which the KFP executor maps to `/minio/...` paths:
the dataset folder is mounted there read-only and the outputs folder writable, as the launcher
does. The container runs read-only, as UID 10001, without network use.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from images.containers import run_to_completion
from mlops_platform.pipelines.data import churn

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "mlops_platform" / "pipelines" / "pipelines" / "training_pipeline.yaml"


def _validate_data_container() -> dict[str, Any]:
    # The pipeline spec, then its platform config (a second YAML document).
    spec = next(yaml.safe_load_all(PIPELINE.read_text()))
    return spec["deploymentSpec"]["executors"]["exec-validate-data"]["container"]


def _executor_input(min_rows: int) -> dict[str, Any]:
    return {
        "inputs": {
            "artifacts": {
                "dataset": {
                    "artifacts": [
                        {
                            "name": "dataset",
                            "type": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"},
                            "uri": "minio://data/churn.parquet",
                            "metadata": {},
                        }
                    ]
                }
            },
            "parameterValues": {"min_rows": min_rows},
        },
        "outputs": {
            "artifacts": {
                "report": {
                    "artifacts": [
                        {
                            "name": "report",
                            "type": {"schemaTitle": "system.Markdown", "schemaVersion": "0.0.1"},
                            "uri": "minio://out/report.md",
                            "metadata": {},
                        }
                    ]
                }
            },
            "parameters": {"Output": {"outputFile": "/minio/out/Output"}},
            "outputFile": "/minio/out/executor_output.json",
        },
    }


def _run_step(image: str, tmp_path: Path, rows: int, min_rows: int) -> tuple[Any, Path, str]:
    data = tmp_path / "data"
    out = tmp_path / "out"
    data.mkdir()
    out.mkdir()
    out.chmod(0o777)  # written by UID 10001, as the launcher's emptyDir would be
    dataset = churn.write_parquet(churn.generate(rows, seed=3), data / "churn.parquet")
    container = _validate_data_container()
    args = [
        json.dumps(_executor_input(min_rows)) if arg == "{{$}}" else arg
        for arg in container["args"]
    ]
    result = run_to_completion(
        image,
        [*container["command"], *args],
        mounts=[(data, "/minio/data", True), (out, "/minio/out", False)],
    )
    return result, out, hashlib.sha256(Path(dataset).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def image(built_images: dict[str, Any]) -> str:
    return str(built_images["platform"]["tag"])


def test_validate_data_step_passes_a_good_dataset(image: str, tmp_path: Path) -> None:
    result, out, sha256 = _run_step(image, tmp_path, rows=1500, min_rows=1000)
    assert result.returncode == 0, result.stdout + result.stderr
    report = (out / "report.md").read_text()
    assert report.startswith("# Data validation PASSED")
    assert "- rows: 1500" in report
    executor_output = json.loads((out / "executor_output.json").read_text())
    # The step's return value (the dataset's SHA-256, the lineage tag) and the report metadata.
    assert executor_output["parameterValues"]["Output"] == sha256
    metadata = executor_output["artifacts"]["report"]["artifacts"][0]["metadata"]
    assert metadata == {"passed": True, "rows": 1500}


def test_validate_data_step_fails_a_short_dataset_with_its_report(
    image: str, tmp_path: Path
) -> None:
    result, out, _ = _run_step(image, tmp_path, rows=300, min_rows=1000)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ERROR: data validation failed" in result.stderr
    assert "row count: 300 rows (minimum 1000)" in result.stderr
    report = (out / "report.md").read_text()
    assert report.startswith("# Data validation FAILED")
    assert not (out / "executor_output.json").exists()
