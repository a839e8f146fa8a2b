"""Prediction and label windows without Kafka: parsing the model server's records, malformed
records, the partition layout, writing and reading a time range back, duplicates, the label
join (late labels, corrections) and the frame the drift check reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from mlops_platform.model_server.prediction_log import LoggedBatch, PredictionLog
from mlops_platform.pipelines.lib.drift import detect_drift
from mlops_platform.pipelines.loop import windows
from mlops_platform.pipelines.loop.windows import MalformedRecord, Origin

T0 = datetime(2026, 12, 4, 9, 59, 30, tzinfo=UTC)
ORIGIN = Origin(0, 7)


def encoded(
    request_ids: list[str], rows: list[int], when: datetime = T0, model: str = "churn"
) -> list[bytes]:
    """Records exactly as the model server writes them (its own encoder)."""
    n = sum(rows)
    batch = LoggedBatch(
        timestamp=when.timestamp(),
        request_ids=request_ids,
        row_counts=rows,
        columns={
            "tenure_days": np.arange(n, dtype=np.int64) + 100,
            "spend": np.linspace(1.5, 9.5, n),
            "plan": np.array(["basic", "gold"] * n, dtype=object)[:n],
        },
        predictions=[i % 2 for i in range(n)],
        scores=np.linspace(0.1, 0.9, n),
    )
    log = PredictionLog.__new__(PredictionLog)
    log.model_name, log.model_version = model, "3"
    records, _keys = log.encode(batch)
    return records


def label(request_id: str, value: Any, when: datetime, row: int = 0) -> bytes:
    return orjson.dumps(
        {"request_id": request_id, "row": row, "label": value, "timestamp": when.timestamp()}
    )


# -- parsing ------------------------------------------------------------------------------------


def test_a_model_server_record_becomes_one_row_per_request_row() -> None:
    record = encoded(["r1", "r2"], [2, 1])[0]
    model, rows = windows.parse_prediction(record, ORIGIN)
    assert model == "churn"
    assert rows == [
        {
            "tenure_days": 100,
            "spend": 1.5,
            "plan": "basic",
            "_request_id": "r1",
            "_row": 0,
            "_timestamp": T0,
            "_version": "3",
            "_prediction": 0,
            "_score": 0.1,
            "_kafka_partition": 0,
            "_kafka_offset": 7,
        },
        {
            "tenure_days": 101,
            "spend": 5.5,
            "plan": "gold",
            "_request_id": "r1",
            "_row": 1,
            "_timestamp": T0,
            "_version": "3",
            "_prediction": 1,
            "_score": 0.5,
            "_kafka_partition": 0,
            "_kafka_offset": 7,
        },
    ]


GOOD = orjson.loads(encoded(["r1"], [2])[0])


def _with(**changes: Any) -> bytes:
    record = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in record.items() if v is not MISSING})


MISSING = object()


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        (b"{not json", "invalid_json", "value: not JSON (at character 1)"),
        (None, "invalid_json", "value: empty message (tombstone)"),
        (b"[1, 2]", "not_an_object", "value: expected a JSON object, got list"),
        (_with(model=MISSING), "missing_field", "model: missing"),
        (_with(model=""), "invalid_field", "model: empty"),
        (_with(model=".."), "invalid_field", "model: not a usable name"),
        (_with(request_id=None), "missing_field", "request_id: missing"),
        (_with(request_id={"a": 1}), "invalid_field", "request_id: expected a string, got dict"),
        (
            _with(timestamp="yesterday"),
            "invalid_field",
            "timestamp: expected epoch seconds (a number), got str",
        ),
        (
            _with(timestamp=T0.timestamp() * 1000),
            "invalid_field",
            "timestamp: epoch seconds outside 2000-01-01..2100-01-01",
        ),
        (_with(features={}), "invalid_field", "features: expected a non-empty object, got dict"),
        (_with(features={"a": 1}), "invalid_field", "features.a: expected a list, got int"),
        (
            _with(features={"a": [1, 2], "b": [1]}),
            "row_count_mismatch",
            "features.b: feature columns differ in length",
        ),
        (
            _with(features={"_row": [1, 2]}),
            "reserved_name",
            "features: a feature name starts with '_' or is model/date/hour (reserved)",
        ),
        (
            _with(features={"date": [1, 2]}),
            "reserved_name",
            "features: a feature name starts with '_' or is model/date/hour (reserved)",
        ),
        (
            _with(features={"a": [1, {"password": "x"}]}),
            "invalid_field",
            "features.a[1]: expected a scalar, got dict",
        ),
        (_with(predictions=[1]), "row_count_mismatch", "predictions: 1 values for 2 feature rows"),
        (_with(scores=[0.1, "high"]), "invalid_field", "scores[1]: expected a number, got str"),
    ],
)
def test_malformed_predictions_name_the_field_and_never_the_value(
    value: bytes | None, reason: str, message: str
) -> None:
    with pytest.raises(MalformedRecord) as err:
        windows.parse_prediction(value, ORIGIN)
    assert (err.value.reason, str(err.value)) == (reason, message)
    assert "password" not in str(err.value)


def test_a_label_record_and_its_malformed_forms() -> None:
    row = windows.parse_label(label("r1", 1, T0, row=2), ORIGIN)
    assert row == {
        "_request_id": "r1",
        "_row": 2,
        "label": 1,
        "_label_timestamp": T0,
        "_kafka_partition": 0,
        "_kafka_offset": 7,
    }
    assert (
        windows.parse_label(
            orjson.dumps({"request_id": "r", "label": "yes", "timestamp": T0.timestamp()}), ORIGIN
        )["_row"]
        == 0
    )
    for record, message in [
        ({"request_id": "r", "timestamp": T0.timestamp()}, "label: missing"),
        ({"request_id": "r", "label": [1], "timestamp": 1e9}, "label: expected a scalar, got list"),
        ({"request_id": "r", "row": -1, "label": 1, "timestamp": 1e9}, "row: must be >= 0"),
        ({"label": 1, "timestamp": 1e9}, "request_id: missing"),
    ]:
        with pytest.raises(MalformedRecord) as err:
            windows.parse_label(orjson.dumps(record), ORIGIN)
        assert str(err.value) == message


# -- layout -------------------------------------------------------------------------------------


def test_hour_folders_are_hive_style_in_utc_and_encode_the_model_name() -> None:
    local = datetime(2026, 12, 4, 23, 5, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    assert windows.hour_dir("predictions", local, "churn") == (
        "predictions/model=churn/date=2026-12-04/hour=23"
    )
    assert windows.hour_dir("predictions", T0, "churn v2/eu") == (
        "predictions/model=churn%20v2%2Feu/date=2026-12-04/hour=09"
    )
    assert windows.hour_dir("labels", T0) == "labels/date=2026-12-04/hour=09"
    assert [h.hour for h in windows.hours(T0, T0 + timedelta(hours=2))] == [9, 10, 11]


# -- write and read back ------------------------------------------------------------------------


def _write(base: Path, kind: str, rows: list[dict[str, Any]], model: str | None = None) -> None:
    fs, root = windows.filesystem(str(base))
    for folder, group in windows.group_rows(kind, rows, model).items():
        table, _ = windows.to_table(group)
        windows.write_file(fs, f"{root}/{folder}/{windows.unique_name(T0)}", table)


def _rows(records: list[bytes], offset: int = 0) -> list[dict[str, Any]]:
    out = []
    for i, record in enumerate(records):
        out += windows.parse_prediction(record, Origin(0, offset + i))[1]
    return out


def test_a_time_range_reads_back_across_hours_without_duplicates(tmp_path: Path) -> None:
    early = _rows(encoded(["a"], [2], T0))  # 09:59:30
    late = _rows(encoded(["b"], [1], T0 + timedelta(minutes=1)), offset=1)  # 10:00:30
    outside = _rows(encoded(["c"], [1], T0 + timedelta(hours=2)), offset=2)
    _write(tmp_path, "predictions", early + late + outside, "churn")
    _write(tmp_path, "predictions", early, "churn")  # a replay after a crash before commit
    _write(tmp_path, "predictions", _rows(encoded(["x"], [1], T0, model="other")), "other")
    folders = sorted(p.relative_to(tmp_path).parent.as_posix() for p in tmp_path.rglob("*.parquet"))
    assert folders == [
        "predictions/model=churn/date=2026-12-04/hour=09",
        "predictions/model=churn/date=2026-12-04/hour=09",
        "predictions/model=churn/date=2026-12-04/hour=10",
        "predictions/model=churn/date=2026-12-04/hour=11",
        "predictions/model=other/date=2026-12-04/hour=09",
    ]
    assert not list(tmp_path.rglob("*.tmp"))
    frame = windows.read_predictions(str(tmp_path), "churn", T0, T0 + timedelta(hours=1))
    assert list(zip(frame["_request_id"], frame["_row"], strict=True)) == [
        ("a", 0),
        ("a", 1),
        ("b", 0),
    ]
    assert frame["tenure_days"].tolist() == [100, 101, 100]
    assert str(frame["_timestamp"].dtype) == "datetime64[us, UTC]"
    empty = windows.read_predictions(
        str(tmp_path), "churn", T0 - timedelta(days=3), T0 - timedelta(days=2)
    )
    assert empty.empty


def test_files_with_different_feature_types_and_sets_are_unified(tmp_path: Path) -> None:
    first = _rows(encoded(["a"], [1]))
    second = _rows(encoded(["b"], [1]), offset=1)
    second[0]["tenure_days"] = 100.5  # float where the first file has int64
    second[0]["new_feature"] = "x"  # a newer model version logs one more feature
    _write(tmp_path, "predictions", first, "churn")
    _write(tmp_path, "predictions", second, "churn")
    frame = windows.read_predictions(str(tmp_path), "churn", T0, T0 + timedelta(seconds=1))
    assert frame["tenure_days"].tolist() == [100.0, 100.5]
    assert frame["new_feature"].tolist()[1] == "x" and pd.isna(frame["new_feature"].tolist()[0])


def test_mixed_types_in_one_batch_are_kept_as_text() -> None:
    table, as_text = windows.to_table([{"a": 1, "b": 1}, {"a": "one", "b": 2}])
    assert as_text == ["a"]
    assert table.column("a").to_pylist() == ["1", "one"]
    assert table.column("b").to_pylist() == [1, 2]


def test_labels_join_with_late_labels_and_corrections(tmp_path: Path) -> None:
    _write(tmp_path, "predictions", _rows(encoded(["a", "b"], [2, 1])), "churn")
    labels = [
        windows.parse_label(label("a", 0, T0 + timedelta(minutes=5), row=0), Origin(1, 0)),
        windows.parse_label(label("a", 1, T0 + timedelta(days=1), row=1), Origin(1, 1)),
        # A correction: the later label for the same prediction wins.
        windows.parse_label(label("a", 1, T0 + timedelta(days=2), row=0), Origin(1, 2)),
        windows.parse_label(label("zz", 1, T0 + timedelta(minutes=5)), Origin(1, 3)),  # unknown
    ]
    _write(tmp_path, "labels", labels)
    end = T0 + timedelta(seconds=1)
    # Read one day after: a's row 1 label (day 1) is there, its correction (day 2) is not yet.
    day1 = windows.read_labelled(str(tmp_path), "churn", T0, end, T0 + timedelta(days=1, hours=1))
    assert list(zip(day1["_request_id"], day1["_row"], strict=True)) == [
        ("a", 0),
        ("a", 1),
        ("b", 0),
    ]
    assert day1["label"].tolist()[:2] == [0, 1] and pd.isna(day1["label"].tolist()[2])
    # Later, the correction and a label that arrives a week late are both picked up.
    _write(tmp_path, "labels", [windows.parse_label(label("b", 1, T0 + timedelta(days=7)), ORIGIN)])
    later = windows.read_labelled(str(tmp_path), "churn", T0, end, T0 + timedelta(days=8))
    assert later["label"].tolist() == [1, 1, 1]
    assert later["_label_timestamp"].tolist() == [
        T0 + timedelta(days=2),
        T0 + timedelta(days=1),
        T0 + timedelta(days=7),
    ]


def test_unlabelled_window_joins_to_null_labels(tmp_path: Path) -> None:
    _write(tmp_path, "predictions", _rows(encoded(["a"], [1])), "churn")
    frame = windows.read_labelled(str(tmp_path), "churn", T0, T0 + timedelta(seconds=1), T0)
    assert len(frame) == 1 and frame["label"].isna().all()
    nothing = windows.read_labelled(str(tmp_path / "empty"), "churn", T0, T0 + timedelta(hours=1))
    assert nothing.empty and {"_request_id", "_row", "label"} <= set(nothing.columns)


def test_range_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        windows.read_predictions("/tmp", "churn", datetime(2026, 1, 1), T0)
    with pytest.raises(ValueError, match=r"end \(.*\) must be after start"):
        windows.read_predictions("/tmp", "churn", T0, T0)


def test_drift_frame_feeds_the_drift_check(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    records = []
    for i in range(40):
        n = 50
        batch = LoggedBatch(
            timestamp=(T0 + timedelta(minutes=i)).timestamp(),
            request_ids=[f"q{i}"],
            row_counts=[n],
            columns={"spend": rng.normal(3.0, 1.0, n), "plan": rng.choice(["basic", "gold"], n)},
            predictions=[0] * n,
            scores=None,
        )
        log = PredictionLog.__new__(PredictionLog)
        log.model_name, log.model_version = "churn", "3"
        records += log.encode(batch)[0]
    _write(tmp_path, "predictions", _rows(records), "churn")
    _write(
        tmp_path,
        "labels",
        [windows.parse_label(label("q0", 1, T0, row=r), ORIGIN) for r in range(5)],
    )
    joined = windows.read_labelled(str(tmp_path), "churn", T0, T0 + timedelta(hours=1))
    frame = windows.drift_frame(joined)
    assert list(frame.columns) == ["spend", "plan", "snapshot_date", "churned"]
    assert len(frame) == 2000 and frame["churned"].notna().sum() == 5
    assert str(frame["snapshot_date"].dtype) == "datetime64[us]"
    assert len(windows.drift_frame(joined, labelled_only=True)) == 5
    reference = pd.DataFrame(
        {"spend": rng.normal(3.0, 1.0, 4000), "plan": rng.choice(["basic", "gold"], 4000)}
    )
    report = detect_drift(reference, frame, season_days=None)
    assert report.drifted is False and set(report.to_dict()["features"]) == {"spend", "plan"}
    shifted = frame.assign(spend=frame["spend"] + 3)
    assert detect_drift(reference, shifted, season_days=None).drifted_features == ["spend"]


@pytest.mark.parametrize(
    ("variables", "config", "expected"),
    [
        ({}, None, None),  # AWS's own endpoint
        ({"AWS_ENDPOINT_URL": "http://env:9000"}, None, "http://env:9000"),
        # The workload identity's mounted config file (MinIO locally).
        ({}, "[default]\nendpoint_url = http://minio:9000\n", "http://minio:9000"),
        (
            {"AWS_ENDPOINT_URL": "http://env:9000"},
            "[default]\nendpoint_url = http://minio:9000\n",
            "http://env:9000",
        ),
        ({}, "[default]\nregion = us-east-1\n", None),
    ],
)
def test_the_s3_endpoint_is_the_aws_sdks_configured_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variables, config, expected
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config"
    if config is not None:
        path.write_text(config)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    assert windows.configured_s3_endpoint() == expected
    if expected is not None:
        fs, base = windows.filesystem("s3://bucket/prefix/")
        assert base == "bucket/prefix"
        assert fs.type_name == "s3"
