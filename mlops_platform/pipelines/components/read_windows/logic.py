"""The time range a `read_windows` step reads, and the two frames it writes: every prediction
row of the range (input drift needs no labels) and the labelled ones (what validation and
retraining need). Reading and the label join are `mlops_platform.pipelines.loop.windows`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mlops_platform.pipelines.components.common import ComponentError

if TYPE_CHECKING:
    import pandas as pd


class WindowError(ComponentError):
    """A bad range argument or an empty range; the message names the argument."""


@dataclass(frozen=True)
class Frames:
    current: pd.DataFrame
    labelled: pd.DataFrame
    summary: dict[str, Any]


def _time(name: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(
            f"{name}={text!r} is not an ISO 8601 time (like 2026-12-04T00:00:00Z)"
        ) from None
    if value.tzinfo is None:
        raise WindowError(f"{name}={text!r} has no timezone: add Z (UTC) or an offset")
    return value.astimezone(UTC)


def time_range(start: str, end: str, hours: int, now: datetime) -> tuple[datetime, datetime]:
    """`[start, end)`; an empty `end` is the start of the current hour (the last complete
    hour is included), an empty `start` is `hours` before `end` (a recurring run passes
    neither and reads the last `hours`)."""
    if hours <= 0:
        raise WindowError(f"hours must be > 0, got {hours}")
    stop = (
        _time("end", end) if end else now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    )
    begin = _time("start", start) if start else stop - timedelta(hours=hours)
    if stop <= begin:
        raise WindowError(f"end ({stop.isoformat()}) must be after start ({begin.isoformat()})")
    return begin, stop


def read_frames(
    bucket_uri: str,
    model_name: str,
    start: str,
    end: str,
    hours: int,
    labels_until: str,
    now: datetime | None = None,
) -> Frames:
    from mlops_platform.pipelines.loop import windows

    if not bucket_uri:
        raise WindowError("bucket_uri is empty: pass the datasets bucket (s3://..., gs://...)")
    if not model_name:
        raise WindowError("model_name is empty")
    now = now or datetime.now(UTC)
    begin, stop = time_range(start, end, hours, now)
    until = _time("labels_until", labels_until) if labels_until else now
    joined = windows.read_labelled(bucket_uri, model_name, begin, stop, until)
    where = f"model {model_name!r} in [{begin.isoformat()}, {stop.isoformat()}) under {bucket_uri}"
    if joined.empty:
        raise WindowError(f"no prediction rows for {where}")
    current = windows.drift_frame(joined)
    labelled = windows.drift_frame(joined, labelled_only=True)
    summary = {
        "start": begin.isoformat(),
        "end": stop.isoformat(),
        "labels_until": until.isoformat(),
        "rows": len(current),
        "labelled_rows": len(labelled),
        "versions": sorted(str(v) for v in joined[windows.VERSION].unique()),
    }
    return Frames(current, labelled, summary)
