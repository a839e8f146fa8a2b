"""Prediction and label windows: time-partitioned Parquet files in the datasets bucket.

The consumer (`consumer.py`) turns Kafka records into rows with `parse_prediction` /
`parse_label` and writes them with `write_windows`; the drift pipeline reads a time range back
with `read_predictions`, `read_labels` and `join_labels` (or `read_labelled` for all three).

Layout under the bucket URI (hive-style, so Athena / BigQuery / pyarrow datasets read it too):

    predictions/model=<name>/date=YYYY-MM-DD/hour=HH/<unique>.parquet   by prediction time
    labels/date=YYYY-MM-DD/hour=HH/<unique>.parquet                      by label time

A prediction row is one row of one request: the model's features as columns (their own names)
and the log's own columns, which start with `_` so that no feature can collide with them.
Delivery is at-least-once, so a row can be in two files after a crash; readers drop the
duplicates by (`_request_id`, `_row`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import orjson
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd

PREDICTIONS = "predictions"
LABELS = "labels"

REQUEST_ID = "_request_id"
ROW = "_row"
TIMESTAMP = "_timestamp"
VERSION = "_version"
PREDICTION = "_prediction"
SCORE = "_score"
# Where the row came from in Kafka: provenance for debugging duplicates and replays.
KAFKA_PARTITION = "_kafka_partition"
KAFKA_OFFSET = "_kafka_offset"
LABEL = "label"
LABEL_TIMESTAMP = "_label_timestamp"
# Hive partition keys: a feature of that name would shadow the key when a dataset is read.
PARTITION_KEYS = frozenset({"model", "date", "hour"})

# A label is observed after its prediction; this much earlier is tolerated for clock skew
# between the label producer and the model server.
LABEL_CLOCK_SKEW = timedelta(hours=1)
# Epoch seconds outside 2000..2100 are a unit mistake (milliseconds) or garbage.
_MIN_TS, _MAX_TS = 946_684_800.0, 4_102_444_800.0
_SCALARS = (str, int, float, bool)


class MalformedRecord(ValueError):
    """A record that cannot become rows. `reason` is a fixed vocabulary (a metric label);
    the message names the field and never quotes a value (payloads may carry secrets)."""

    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class Origin:
    """The Kafka coordinates of a record."""

    partition: int
    offset: int


def _decode(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise MalformedRecord("invalid_json", "value", "empty message (tombstone)")
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        # The position only: a parser's message may quote the text around it.
        raise MalformedRecord(
            "invalid_json", "value", f"not JSON (at character {exc.pos})"
        ) from None
    if not isinstance(record, dict):
        raise MalformedRecord(
            "not_an_object", "value", f"expected a JSON object, got {type(record).__name__}"
        )
    return record


def _require(record: Mapping[str, Any], name: str) -> Any:
    if name not in record or record[name] is None:
        raise MalformedRecord("missing_field", name, "missing")
    return record[name]


def _text(record: Mapping[str, Any], name: str) -> str:
    value = _require(record, name)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedRecord("invalid_field", name, f"expected a string, got {_kind(value)}")
    text = str(value)
    if not text.strip():
        raise MalformedRecord("invalid_field", name, "empty")
    return text


def _epoch(record: Mapping[str, Any], name: str) -> float:
    value = _require(record, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedRecord(
            "invalid_field", name, f"expected epoch seconds (a number), got {_kind(value)}"
        )
    if not (_MIN_TS <= value < _MAX_TS):
        raise MalformedRecord("invalid_field", name, "epoch seconds outside 2000-01-01..2100-01-01")
    return float(value)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _scalar(value: Any, field: str) -> Any:
    if value is None or isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            raise MalformedRecord("invalid_field", field, "not a finite number")
        return value
    raise MalformedRecord("invalid_field", field, f"expected a scalar, got {_kind(value)}")


def _column(record: Mapping[str, Any], name: str, rows: int) -> list[Any]:
    values = _require(record, name)
    if not isinstance(values, list):
        raise MalformedRecord("invalid_field", name, f"expected a list, got {_kind(values)}")
    if len(values) != rows:
        raise MalformedRecord(
            "row_count_mismatch", name, f"{len(values)} values for {rows} feature rows"
        )
    return values


def parse_prediction(value: bytes | None, origin: Origin) -> tuple[str, list[dict[str, Any]]]:
    """The model name and one row per request row of a prediction-log record (the format of
    `mlops_platform/model_server/prediction_log.py`: `model`, `version`, `request_id`,
    `timestamp`, `features` as columns, `predictions`, `scores`)."""
    record = _decode(value)
    model = _text(record, "model")
    if model in {".", ".."}:
        raise MalformedRecord("invalid_field", "model", "not a usable name")
    version = _text(record, "version")
    request_id = _text(record, "request_id")
    timestamp = _epoch(record, "timestamp")
    features = _require(record, "features")
    if not isinstance(features, dict) or not features:
        raise MalformedRecord(
            "invalid_field", "features", f"expected a non-empty object, got {_kind(features)}"
        )
    rows = None
    for name, values in features.items():
        if name.startswith("_") or name in PARTITION_KEYS:
            raise MalformedRecord(
                "reserved_name",
                "features",
                "a feature name starts with '_' or is model/date/hour (reserved)",
            )
        if not isinstance(values, list):
            raise MalformedRecord(
                "invalid_field", f"features.{name}", f"expected a list, got {_kind(values)}"
            )
        if rows is None:
            rows = len(values)
        elif len(values) != rows:
            raise MalformedRecord(
                "row_count_mismatch", f"features.{name}", "feature columns differ in length"
            )
    assert rows is not None
    if rows == 0:
        raise MalformedRecord("invalid_field", "features", "no rows")
    predictions = _column(record, "predictions", rows)
    scores = record.get("scores")
    if scores is not None:
        scores = _column(record, "scores", rows)
    when = datetime.fromtimestamp(timestamp, UTC)
    out = []
    for i in range(rows):
        row: dict[str, Any] = {
            name: _scalar(values[i], f"features.{name}[{i}]") for name, values in features.items()
        }
        prediction = predictions[i]
        if prediction is not None and not isinstance(prediction, _SCALARS):
            # A multi-output model's prediction is kept whole, as JSON text.
            prediction = orjson.dumps(prediction).decode()
        score = None if scores is None else scores[i]
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            raise MalformedRecord(
                "invalid_field", f"scores[{i}]", f"expected a number, got {_kind(score)}"
            )
        row.update(
            {
                REQUEST_ID: request_id,
                ROW: i,
                TIMESTAMP: when,
                VERSION: version,
                PREDICTION: prediction,
                SCORE: None if score is None else float(score),
                KAFKA_PARTITION: origin.partition,
                KAFKA_OFFSET: origin.offset,
            }
        )
        out.append(row)
    return model, out


def parse_label(value: bytes | None, origin: Origin) -> dict[str, Any]:
    """One ground-truth label: `request_id` (the prediction's, also the message key), `row`
    (the row within that request; default 0), `label` and `timestamp` (when it was observed,
    epoch seconds)."""
    record = _decode(value)
    request_id = _text(record, "request_id")
    row = record.get("row", 0)
    if isinstance(row, bool) or not isinstance(row, int):
        raise MalformedRecord("invalid_field", "row", f"expected an integer, got {_kind(row)}")
    if row < 0:
        raise MalformedRecord("invalid_field", "row", "must be >= 0")
    label = _scalar(_require(record, "label"), "label")
    timestamp = _epoch(record, "timestamp")
    return {
        REQUEST_ID: request_id,
        ROW: row,
        LABEL: label,
        LABEL_TIMESTAMP: datetime.fromtimestamp(timestamp, UTC),
        KAFKA_PARTITION: origin.partition,
        KAFKA_OFFSET: origin.offset,
    }


# -- layout -------------------------------------------------------------------------------------


def hour_dir(kind: str, when: datetime, model: str | None = None) -> str:
    """The folder of one hour's window, relative to the bucket URI."""
    when = when.astimezone(UTC)
    # Percent-encoding, as pyarrow's hive partitioning decodes it (segment_encoding="uri").
    model_part = "" if model is None else f"/model={quote(model, safe='')}"
    return f"{kind}{model_part}/date={when:%Y-%m-%d}/hour={when:%H}"


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    """The UTC hours that overlap [start, end)."""
    current = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    while current < end:
        yield current
        current += timedelta(hours=1)


def configured_s3_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint the AWS SDKs would use: `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`, else
    `endpoint_url` of the AWS config file (locally the MinIO endpoint in the workload identity's
    mounted files); None for AWS's own. pyarrow reads only the variables, so botocore resolves
    it: it implements the SDKs' precedence (profiles, per-service sections), which a hand-written
    reader of the file would not."""
    import os

    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider

    session = botocore.session.Session()
    provider = ConfiguredEndpointProvider(
        full_config=session.full_config,
        scoped_config=session.get_scoped_config(),
        client_name="s3",
        environ=os.environ if environ is None else environ,
    )
    return provider.provide()


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's filesystem and base path for `s3://`, `gs://` or a local path. S3 uses the
    configured endpoint (`configured_s3_endpoint`: MinIO locally) and the default credential
    chain (IRSA; locally the shared credentials file of the workload identity's Secret); GCS
    the Application Default Credentials (Workload Identity)."""
    if not uri:
        raise ValueError("bucket URI is empty")
    if uri.startswith("s3://") and (endpoint := configured_s3_endpoint()):
        parts = urlsplit(endpoint)
        fs = pafs.S3FileSystem(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
        return fs, uri.removeprefix("s3://").rstrip("/")
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


# -- writing ------------------------------------------------------------------------------------


def to_table(rows: Sequence[Mapping[str, Any]]) -> tuple[pa.Table, list[str]]:
    """Rows as an Arrow table, and the columns whose values had mixed types (kept as text
    rather than failing the whole window)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    arrays, as_text = [], []
    for name in names:
        values = [row.get(name) for row in rows]
        if name in (TIMESTAMP, LABEL_TIMESTAMP):
            arrays.append(pa.array(values, pa.timestamp("us", tz="UTC")))
            continue
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            as_text.append(name)
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.Table.from_arrays(arrays, names=list(names)), as_text


def write_file(fs: pafs.FileSystem, path: str, table: pa.Table) -> None:
    """Write one Parquet file so that it is either complete or absent.

    On S3 and GCS an object appears only when its upload completes (pyarrow finishes the
    multipart upload on close). A local file is written under a temporary name and renamed,
    because readers list the folder and must never see half a file.
    """
    if isinstance(fs, pafs.LocalFileSystem):
        # Only here: on S3 / GCS, create_dir would add empty "folder/" marker objects.
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        temporary = f"{path}.tmp"
        pq.write_table(table, temporary, filesystem=fs, compression="zstd")
        fs.move(temporary, path)
    else:
        pq.write_table(table, path, filesystem=fs, compression="zstd")


def unique_name(now: datetime) -> str:
    # Time first so a folder lists in write order; the uuid keeps concurrent consumers apart.
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex}.parquet"


def group_rows(
    kind: str, rows: Iterable[Mapping[str, Any]], model: str | None = None
) -> dict[str, list[Mapping[str, Any]]]:
    """Rows by the hour folder their own time puts them in."""
    column = TIMESTAMP if kind == PREDICTIONS else LABEL_TIMESTAMP
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(hour_dir(kind, row[column], model), []).append(row)
    return groups


# -- reading ------------------------------------------------------------------------------------


def _files(fs: pafs.FileSystem, base: str, folders: Iterable[str]) -> list[str]:
    found = []
    for folder in folders:
        selector = pafs.FileSelector(f"{base}/{folder}", allow_not_found=True)
        found += sorted(
            info.path
            for info in fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.path.endswith(".parquet")
        )
    return found


def _read(fs: pafs.FileSystem, files: Sequence[str], column: str, start: datetime, end: datetime):
    """The rows of `files` with `start <= column < end` (row groups outside are skipped)."""
    import pyarrow.dataset as ds

    if not files:
        return None
    found = ds.dataset(list(files), filesystem=fs, format="parquet")
    # Files written at different times may type a feature differently (an all-integer batch
    # vs. a float one) or lack a feature a newer model version added: read them under one
    # schema that holds every file's columns.
    schema = pa.unify_schemas(
        [fragment.physical_schema for fragment in found.get_fragments()],
        promote_options="permissive",
    )
    unified = ds.dataset(list(files), schema=schema, filesystem=fs, format="parquet")
    return unified.to_table(filter=(ds.field(column) >= start) & (ds.field(column) < end))


def _check_range(start: datetime, end: datetime) -> None:
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware (UTC), got {value.isoformat()}")
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")


def read_predictions(uri: str, model: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The prediction rows of `model` with `start <= _timestamp < end`, one per
    (`_request_id`, `_row`) (duplicates from at-least-once delivery dropped), oldest first."""
    import pandas as pd

    _check_range(start, end)
    fs, base = filesystem(uri)
    folders = [hour_dir(PREDICTIONS, hour, model) for hour in hours(start, end)]
    table = _read(fs, _files(fs, base, folders), TIMESTAMP, start, end)
    if table is None:
        return pd.DataFrame(columns=[REQUEST_ID, ROW, TIMESTAMP, VERSION, PREDICTION, SCORE])
    frame = table.to_pandas()
    frame = frame.sort_values([TIMESTAMP, REQUEST_ID, ROW, KAFKA_PARTITION, KAFKA_OFFSET])
    return frame.drop_duplicates([REQUEST_ID, ROW], keep="first").reset_index(drop=True)


def read_labels(uri: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Labels observed in [start, end), the latest per (`_request_id`, `_row`): a later label
    for the same prediction is a correction."""

    _check_range(start, end)
    fs, base = filesystem(uri)
    folders = [hour_dir(LABELS, hour) for hour in hours(start, end)]
    table = _read(fs, _files(fs, base, folders), LABEL_TIMESTAMP, start, end)
    if table is None:
        return _no_labels()
    frame = table.to_pandas()
    frame = frame.sort_values([LABEL_TIMESTAMP, KAFKA_PARTITION, KAFKA_OFFSET], kind="stable")
    return frame.drop_duplicates([REQUEST_ID, ROW], keep="last").reset_index(drop=True)


def _no_labels() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=[REQUEST_ID, ROW, LABEL, LABEL_TIMESTAMP])


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Predictions with their label (`label`, `_label_timestamp`; null while none arrived)."""
    keys: dict[str, Any] = {REQUEST_ID: object, ROW: "int64"}
    right = labels.reindex(columns=[REQUEST_ID, ROW, LABEL, LABEL_TIMESTAMP]).astype(keys)
    left = predictions.astype(keys)
    return left.merge(right, on=[REQUEST_ID, ROW], how="left", validate="one_to_one")


def read_labelled(
    uri: str,
    model: str,
    start: datetime,
    end: datetime,
    labels_until: datetime | None = None,
) -> pd.DataFrame:
    """Predictions of [start, end) joined with every label observed up to `labels_until`
    (default: now). Labels are stored by the time they were observed, so a label that
    arrives days later is found by the next read of the same range: nothing is lost, and a
    quality check simply waits until the range is old enough to be (mostly) labelled."""
    until = labels_until or datetime.now(UTC)
    predictions = read_predictions(uri, model, start, end)
    since = start - LABEL_CLOCK_SKEW
    labels = read_labels(uri, since, until) if until > since else _no_labels()
    return join_labels(predictions, labels)


def drift_frame(
    frame: pd.DataFrame,
    *,
    timestamp: str = "snapshot_date",
    label: str = "churned",
    labelled_only: bool = False,
) -> pd.DataFrame:
    """The frame `check_drift` / `validate_data` read: the features, the prediction time as
    `timestamp` and the label as `label` (the churn dataset's names by default); the log's
    own `_` columns are left out."""
    if labelled_only and LABEL in frame.columns:
        frame = frame[frame[LABEL].notna()]
    features = [c for c in frame.columns if not str(c).startswith("_") and c != LABEL]
    for name in (timestamp, label):
        if name in features:
            raise ValueError(f"{name!r} is both a feature and the requested output column")
    out = frame[features].copy()
    out[timestamp] = frame[TIMESTAMP].dt.tz_convert("UTC").dt.tz_localize(None)
    if LABEL in frame.columns:
        out[label] = frame[LABEL].to_numpy()
    return out.reset_index(drop=True)
