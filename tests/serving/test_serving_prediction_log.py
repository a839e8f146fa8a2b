"""The prediction log never loses other clients' records because of one record, the file sink
rotates at a size cap, and an unwritable prediction file is an error naming path and setting."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from mlops_platform.model_server.prediction_log import (
    FileSink,
    LoggedBatch,
    PredictionLog,
    SinkError,
)


def _batch(plans: list[str], ids: list[str]) -> LoggedBatch:
    return LoggedBatch(
        timestamp=time.time(),
        request_ids=ids,
        row_counts=[1] * len(ids),
        columns={"plan": np.array(plans, dtype=object), "tenure": np.arange(len(ids), dtype=float)},
        predictions=[0] * len(ids),
        scores=np.full(len(ids), 0.5),
    )


def _run(sink: FileSink, batches: list[LoggedBatch]) -> dict[str, int]:
    drops: dict[str, int] = {}
    written: list[int] = []
    log = PredictionLog(
        sink,
        "churn",
        "1",
        100,
        lambda reason, n: drops.__setitem__(reason, drops.get(reason, 0) + n),
        written.append,
    )
    for batch in batches:
        log.submit(batch)
    log.close(5)
    drops["written"] = sum(written)
    return drops


def test_one_unencodable_record_drops_only_itself(tmp_path: Path) -> None:
    # A lone surrogate cannot be encoded as UTF-8 (validation rejects it; this is the last line).
    path = tmp_path / "p.jsonl"
    counts = _run(
        FileSink(str(path)),
        [_batch(["gold", "bad\ud800", "basic"], ["a", "b", "c"]), _batch(["gold"], ["d"])],
    )
    assert counts == {"encode_error": 1, "written": 3}
    ids = [json.loads(line)["request_id"] for line in path.read_text().splitlines()]
    assert ids == ["a", "c", "d"]


def test_the_file_sink_rotates_at_its_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    sink = FileSink(str(path), max_bytes=2_000, backups=2)
    for i in range(60):
        sink.write([json.dumps({"i": i, "pad": "x" * 80}).encode()], [b"k"])
    sink.close(1)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["p.jsonl", "p.jsonl.1", "p.jsonl.2"]
    sizes = [(tmp_path / f).stat().st_size for f in files]
    assert all(0 < s <= 2_000 for s in sizes), sizes
    # Oldest records were deleted, newest kept in order across the files.
    lines = [
        json.loads(x)["i"] for f in reversed(files) for x in (tmp_path / f).read_text().splitlines()
    ]
    assert lines == list(range(60 - len(lines), 60)) and lines[-1] == 59


def test_rotation_continues_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"x" * 1_500 + b"\n")
    sink = FileSink(str(path), max_bytes=2_000, backups=1)
    sink.write([b"y" * 600], [b"k"])
    sink.close(1)
    assert (tmp_path / "p.jsonl.1").stat().st_size == 1_501
    assert path.read_bytes() == b"y" * 600 + b"\n"


def test_an_unwritable_prediction_file_names_path_and_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SinkError) as err:
        FileSink(str(blocker / "p.jsonl"))
    message = str(err.value)
    assert message.startswith(
        f"MLOPS_SERVE_PREDICTION_FILE={str(blocker / 'p.jsonl')!r}: cannot open"
    )
    assert "MLOPS_SERVE_PREDICTION_SINK=none" in message
