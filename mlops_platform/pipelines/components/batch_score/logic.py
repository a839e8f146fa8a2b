"""Score a Parquet dataset with a registered model: the model server's own model code, in
bounded batches, with lineage written into the output.

The model is loaded exactly as the model server loads it (`mlops_platform.model_server.model`:
the alias resolved to a pinned version, the signature enforced, the compiled fast path checked
against the real model at load time), so a batch score and an online answer for the same row
agree. Reading and writing stream through Arrow record batches, so memory stays bounded by
`batch_rows` whatever the file's size.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlops_platform.pipelines.components.common import ComponentError

# Columns the output adds; input columns of these names are refused (they would be shadowed).
PREDICTION, SCORE, ROW = "prediction", "score", "_row"
# Keys of the output file's Parquet metadata (`pyarrow.parquet.read_schema(...).metadata`).
LINEAGE_PREFIX = "mlops."


@dataclass
class ScoreSummary:
    """What was scored, with what, into where: the step's metadata and the file's lineage."""

    model_uri: str
    model: str
    version: str
    input_uri: str
    input_sha256: str
    output_uri: str
    rows: int = 0
    seconds: float = 0.0
    kept_columns: list[str] = field(default_factory=list)

    def lineage(self, scored_at: str) -> dict[str, str]:
        return {
            f"{LINEAGE_PREFIX}{key}": value
            for key, value in {
                "model_uri": self.model_uri,
                "model": self.model,
                "model_version": self.version,
                "input_uri": self.input_uri,
                "input_sha256": self.input_sha256,
                "scored_at": scored_at,
            }.items()
        }


def default_output_uri(data_uri: str, model: str, version: str) -> str:
    """Beside the input: `<dir>/<stem>.predictions/<model>-v<version>.parquet`."""
    base = data_uri[: -len(".parquet")] if data_uri.endswith(".parquet") else data_uri
    return f"{base}.predictions/{model}-v{version}.parquet"


def _filesystem(uri: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)


def file_sha256(fs: Any, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open_input_stream(path) as stream:
        while block := stream.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _arrays(schema: Any, batch: Any, data_uri: str, first_row: int) -> dict[str, Any]:
    """One typed numpy array per signature column, as the server's `to_arrays` builds them."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = {}
    for column in schema.columns:
        values = batch.column(column.name)
        nulls = values.null_count
        if nulls and column.required:
            row = first_row + pc.index(pc.is_null(values), True).as_py()
            raise ComponentError(
                f"{data_uri}: column {column.name!r} row {row}: missing value in a required "
                "column of the model's signature"
            )
        try:
            if column.kind == "float":
                arrays[column.name] = (
                    values.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
                )
            elif column.kind == "int" and not nulls:
                arrays[column.name] = values.cast(pa.int64()).to_numpy(zero_copy_only=False)
            elif column.kind == "bool" and not nulls:
                arrays[column.name] = values.cast(pa.bool_()).to_numpy(zero_copy_only=False)
            elif column.kind == "str":
                arrays[column.name] = np.asarray(values.cast(pa.string()).to_pylist(), dtype=object)
            else:
                arrays[column.name] = np.asarray(values.to_pylist(), dtype=object)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ComponentError(
                f"{data_uri}: column {column.name!r} ({values.type}) does not fit the model's "
                f"{column.mlflow_type} input: {exc}"
            ) from None
    return arrays


def _check_columns(schema: Any, names: list[str], data_uri: str) -> None:
    missing = [c.name for c in schema.columns if c.name not in names]
    if missing:
        raise ComponentError(
            f"{data_uri}: missing column(s) the model's signature requires: {', '.join(missing)}"
        )
    clashing = [n for n in (PREDICTION, SCORE, ROW) if n in names]
    if clashing:
        raise ComponentError(
            f"{data_uri}: column(s) {', '.join(clashing)} would be overwritten by the "
            "predictions; rename them"
        )


def score_file(
    model_uri: str,
    data_uri: str,
    output_uri: str = "",
    batch_rows: int = 100_000,
    keep_columns: list[str] | None = None,
) -> ScoreSummary:
    """Score every row of the Parquet file at `data_uri` with `model_uri` (`models:/name@alias`
    or any URI the model server takes) and write `prediction`, `score`, `_row` (the input's
    row number) and the `keep_columns` (default: the input columns that are not model inputs,
    e.g. identifiers and timestamps) to `output_uri` (default: beside the input)."""
    import time

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_platform.model_server.model import ModelLoadError, ServedModel, resolve

    if batch_rows < 1:
        raise ComponentError(f"batch_rows must be at least 1, not {batch_rows}")
    try:
        # Every core: a batch is large, unlike the server's single rows (where one thread
        # keeps latency low).
        served = ServedModel(resolve(model_uri), inference_threads=os.cpu_count() or 1)
    except ModelLoadError as exc:
        raise ComponentError(f"cannot load {model_uri}: {exc}") from None
    if served.schema is None:
        raise ComponentError(
            f"{model_uri}: the model has no input signature; batch scoring needs one to read "
            "the columns with their types"
        )
    served.warm_up(rounds=1)  # verifies the fast path against the model, as the server does

    in_fs, in_path = _filesystem(data_uri)
    try:
        source = pq.ParquetFile(in_fs.open_input_file(in_path))
    except (OSError, pa.ArrowInvalid) as exc:
        raise ComponentError(f"{data_uri}: cannot read it as Parquet: {exc}") from None
    names = source.schema_arrow.names
    _check_columns(served.schema, names, data_uri)
    features = {c.name for c in served.schema.columns}
    kept = [n for n in names if n not in features] if keep_columns is None else keep_columns
    unknown = [n for n in kept if n not in names]
    if unknown:
        raise ComponentError(f"keep_columns: {', '.join(unknown)} not in {data_uri}")

    summary = ScoreSummary(
        model_uri=model_uri,
        model=served.name,
        version=served.version,
        input_uri=data_uri,
        input_sha256=file_sha256(in_fs, in_path),
        output_uri=output_uri or default_output_uri(data_uri, served.name, served.version),
        kept_columns=kept,
    )
    out_fs, out_path = _filesystem(summary.output_uri)
    if "://" not in summary.output_uri:
        os.makedirs(os.path.dirname(out_path), exist_ok=True)
    started = time.perf_counter()
    scored_at = datetime.now(UTC).isoformat(timespec="seconds")
    writer = None
    # Written to a temporary name, then moved: readers never see half a file.
    partial = f"{out_path}.partial"
    try:
        with out_fs.open_output_stream(partial) as sink:
            for batch in source.iter_batches(
                batch_size=batch_rows, columns=sorted(features | set(kept), key=names.index)
            ):
                arrays = _arrays(served.schema, batch, data_uri, summary.rows)
                predictions, scores = served.predict(arrays)
                columns = {name: batch.column(name) for name in kept}
                columns[ROW] = pa.array(range(summary.rows, summary.rows + batch.num_rows))
                columns[PREDICTION] = pa.array(predictions)
                if scores is not None:
                    columns[SCORE] = pa.array(scores, type=pa.float64())
                table = pa.table(columns)
                if writer is None:
                    schema = table.schema.with_metadata(summary.lineage(scored_at))
                    writer = pq.ParquetWriter(sink, schema)
                writer.write_table(table.cast(writer.schema))
                summary.rows += batch.num_rows
            if writer is not None:
                writer.close()
        if writer is None:
            raise ComponentError(f"{data_uri}: no rows to score")
        out_fs.move(partial, out_path)
    except BaseException:
        with contextlib.suppress(OSError):
            out_fs.delete_file(partial)
        raise
    summary.seconds = time.perf_counter() - started
    return summary
