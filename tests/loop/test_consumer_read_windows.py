"""The drift pipeline's input from the prediction log: `read_windows` (range arguments, the
two frames, errors) and `windows_drift_pipeline` run end to end by kfp's local runner on
windows written the consumer's way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest
import yaml
from kfp.dsl import Dataset

from mlops_platform.pipelines.components.read_windows.component import read_windows
from mlops_platform.pipelines.components.read_windows.logic import (
    WindowError,
    read_frames,
    time_range,
)
from mlops_platform.pipelines.data import churn
from mlops_platform.pipelines.loop import windows
from mlops_platform.pipelines.pipelines import compile as compile_module

NOW = datetime(2026, 12, 4, 18, 47, tzinfo=UTC)
START = datetime(2026, 1, 1, tzinfo=UTC)


def write_churn_windows(bucket: Path, frame: pd.DataFrame, labelled_share: float) -> None:
    """One model-server record per snapshot (at its snapshot time) and, for the first
    `labelled_share` of them, a label a day later: parsed and written as the consumer does."""
    fs, base = windows.filesystem(str(bucket))
    predictions, labels = [], []
    labelled = int(len(frame) * labelled_share)
    for i, row in enumerate(frame.to_dict("records")):
        when = row[churn.TIMESTAMP].replace(tzinfo=UTC)
        request_id = f"req-{row[churn.ID]}"
        record = {
            "model": "churn",
            "version": "3",
            "request_id": request_id,
            "timestamp": when.timestamp(),
            "features": {name: [row[name]] for name in churn.FEATURE_NAMES},
            "predictions": [0],
            "scores": [0.1],
        }
        predictions += windows.parse_prediction(orjson.dumps(record), windows.Origin(0, i))[1]
        if i < labelled:
            label = {
                "request_id": request_id,
                "label": int(row[churn.LABEL]),
                "timestamp": (when + timedelta(days=1)).timestamp(),
            }
            labels.append(windows.parse_label(orjson.dumps(label), windows.Origin(0, i)))
    for kind, rows, model in (("predictions", predictions, "churn"), ("labels", labels, None)):
        for folder, group in windows.group_rows(kind, rows, model).items():
            table, _ = windows.to_table(group)
            windows.write_file(fs, f"{base}/{folder}/{windows.unique_name(NOW)}", table)


@pytest.fixture(scope="module")
def recent() -> pd.DataFrame:
    return churn.generate(3000, seed=2, start="2026-01-01", days=30)


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory, recent: pd.DataFrame) -> Path:
    folder = tmp_path_factory.mktemp("bucket")
    write_churn_windows(folder, recent, labelled_share=0.5)
    return folder


def test_time_range_defaults_to_the_last_hours_before_the_current_hour() -> None:
    assert time_range("", "", 24, NOW) == (
        datetime(2026, 12, 3, 18, tzinfo=UTC),
        datetime(2026, 12, 4, 18, tzinfo=UTC),
    )
    assert time_range("2026-12-01T00:00:00+01:00", "2026-12-02T00:00:00Z", 1, NOW) == (
        datetime(2026, 11, 30, 23, tzinfo=UTC),
        datetime(2026, 12, 2, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("start", "end", "hours", "message"),
    [
        (
            "yesterday",
            "",
            1,
            "start='yesterday' is not an ISO 8601 time (like 2026-12-04T00:00:00Z)",
        ),
        (
            "",
            "2026-12-04T00:00:00",
            1,
            "end='2026-12-04T00:00:00' has no timezone: add Z (UTC) or an offset",
        ),
        ("", "", 0, "hours must be > 0, got 0"),
        (
            "2026-12-04T00:00:00Z",
            "2026-12-03T00:00:00Z",
            1,
            "end (2026-12-03T00:00:00+00:00) must be after start (2026-12-04T00:00:00+00:00)",
        ),
    ],
)
def test_bad_range_arguments_name_the_argument(
    start: str, end: str, hours: int, message: str
) -> None:
    with pytest.raises(WindowError) as err:
        time_range(start, end, hours, NOW)
    assert str(err.value) == message


def test_current_has_every_row_and_labelled_the_labelled_ones(
    bucket: Path, recent: pd.DataFrame
) -> None:
    frames = read_frames(
        str(bucket), "churn", START.isoformat(), "2026-02-01T00:00:00Z", 1, "", NOW
    )
    assert len(frames.current) == len(recent) and len(frames.labelled) == len(recent) // 2
    assert list(frames.current.columns) == [*churn.FEATURE_NAMES, "snapshot_date", "churned"]

    def pairs(frame: pd.DataFrame) -> list[tuple]:
        return sorted(zip(frame["snapshot_date"], frame["age"], frame["country"], strict=True))

    assert pairs(frames.current) == pairs(recent)
    labelled_ids = set(recent[churn.ID].iloc[: len(recent) // 2])
    expected = recent[recent[churn.ID].isin(labelled_ids)][churn.LABEL].sum()
    assert frames.labelled["churned"].sum() == expected
    assert frames.summary == {
        "start": "2026-01-01T00:00:00+00:00",
        "end": "2026-02-01T00:00:00+00:00",
        "labels_until": NOW.isoformat(),
        "rows": len(recent),
        "labelled_rows": len(recent) // 2,
        "versions": ["3"],
    }
    # Labels observed after `labels_until` are not used yet.
    until = "2026-01-03T00:00:00Z"  # the labels of 1 January only
    early = read_frames(str(bucket), "churn", START.isoformat(), "2026-02-01T00:00:00Z", 1, until)
    assert 0 < len(early.labelled) < len(frames.labelled)


def test_an_empty_range_or_missing_argument_fails_with_one_line(bucket: Path) -> None:
    with pytest.raises(WindowError) as err:
        read_frames(str(bucket), "churn", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z", 1, "")
    assert str(err.value) == (
        "no prediction rows for model 'churn' in [2025-01-01T00:00:00+00:00, "
        f"2025-01-02T00:00:00+00:00) under {bucket}"
    )
    with pytest.raises(WindowError, match="bucket_uri is empty"):
        read_frames("", "churn", "", "", 1, "")


def test_component_writes_both_datasets(bucket: Path, tmp_path: Path) -> None:
    current = Dataset(name="current", uri=str(tmp_path / "current"))
    labelled = Dataset(name="labelled", uri=str(tmp_path / "labelled"))
    read_windows.python_func(
        bucket_uri=str(bucket),
        model_name="churn",
        current=current,
        labelled=labelled,
        start="2026-01-01T00:00:00Z",
        end="2026-02-01T00:00:00Z",
    )
    assert len(pd.read_parquet(current.path)) == 3000
    assert len(pd.read_parquet(labelled.path)) == 1500
    assert (current.metadata["rows"], labelled.metadata["rows"]) == (3000, 1500)


def test_compiled_windows_drift_pipeline_shape() -> None:
    compiled = next(
        yaml.safe_load_all(compile_module.TARGETS["windows_drift_pipeline"].read_text())
    )
    tasks = compiled["root"]["dag"]["tasks"]
    assert sorted(tasks) == [
        "champion-reference",
        "check-drift",
        "evaluate-model",
        "read-windows",
        "register-model",
        "split-data",
        "train-model",
        "validate-data",
    ]
    assert tasks["read-windows"]["cachingOptions"] == {}
    assert tasks["champion-reference"]["cachingOptions"] == {}  # the alias moves
    reference = tasks["check-drift"]["inputs"]["artifacts"]["reference"]["taskOutputArtifact"]
    assert reference == {"outputArtifactKey": "reference", "producerTask": "champion-reference"}
    current = tasks["check-drift"]["inputs"]["artifacts"]["current"]["taskOutputArtifact"]
    assert current == {"outputArtifactKey": "current", "producerTask": "read-windows"}
    for step in ("validate-data", "split-data"):
        source = tasks[step]["inputs"]["artifacts"]["dataset"]["taskOutputArtifact"]
        assert source == {"outputArtifactKey": "labelled", "producerTask": "read-windows"}, step
    for step in ("split-data", "train-model", "evaluate-model", "register-model"):
        assert tasks[step]["inputs"]["parameters"]["enabled"] == {
            "taskOutputParameter": {"outputParameterKey": "Output", "producerTask": "check-drift"}
        }, step


def test_windows_drift_pipeline_runs_locally_without_drift(bucket: Path, tmp_path: Path) -> None:
    from mlops_platform.pipelines.demo import free_port, run_pipeline
    from mlops_platform.pipelines.pipelines.windows_drift import windows_drift_pipeline

    reference = churn.write_parquet(
        churn.generate(20000, seed=1, start="2023-01-01", days=1095), tmp_path / "ref.parquet"
    )
    run = run_pipeline(
        windows_drift_pipeline,
        "windows-drift",
        {
            "bucket_uri": str(bucket),
            "reference_uri": str(reference),
            # No drift means no training and no registry access.
            "tracking_uri": f"http://127.0.0.1:{free_port()}",
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-02-01T00:00:00Z",
        },
        tmp_path / "root",
        tmp_path / "drift.log",
    )
    assert run.output == ""
    assert (run.root / "check-drift" / "report").read_text().startswith("# Drift not found\n")
    assert "- current: " in (run.root / "check-drift" / "report").read_text()
    assert len(pd.read_parquet(run.root / "read-windows" / "current")) == 3000
    model = run.root / "train-model" / "model"
    assert model.read_text() == "skipped: not enabled (no drift found)\n"
