"""Request payloads -> validated columns, checked against the model's MLflow signature.

Pure functions only (no I/O, no model): every rule about what a client may send lives here,
and every violation raises `InputError` with a message that names the column and the row.

Requests are kept as plain column lists (not DataFrames) until the micro-batcher merges many
of them, because building a DataFrame costs far more than validating one row.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

Kind = Literal["float", "int", "str", "bool", "any"]

# MLflow DataType name -> how values are checked and stored.
_KIND_BY_MLFLOW_TYPE: dict[str, Kind] = {
    "double": "float",
    "float": "float",
    "long": "int",
    "integer": "int",
    "string": "str",
    "boolean": "bool",
    "datetime": "str",
    "binary": "str",
}
_DTYPE_BY_KIND = {"float": np.float64, "int": np.int64, "str": object, "bool": np.bool_}
_KIND_LABEL = {"float": "a number", "int": "an integer", "str": "a string", "bool": "a boolean"}
# Open Inference Protocol datatypes a column of each kind accepts.
V2_DATATYPES: dict[Kind, frozenset[str]] = {
    "float": frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64"}),
    "int": frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}),
    "str": frozenset({"BYTES"}),
    "bool": frozenset({"BOOL"}),
    "any": frozenset(),
}
V2_DATATYPE_BY_KIND = {"float": "FP64", "int": "INT64", "str": "BYTES", "bool": "BOOL"}
# Every datatype the Open Inference Protocol defines (for inputs of columns of kind "any").
V2_ALL_DATATYPES = frozenset().union(*V2_DATATYPES.values()) | {"UINT8", "UINT16", "UINT32"}

# The range an integer column's values must fit (they become an int64 array), and the largest
# magnitude a float may have to stand for exactly one integer (beyond 2**53, float64 cannot
# tell neighbouring integers apart, so accepting it would silently change the client's value:
# orjson turns an integer literal beyond the 64-bit range into such a float).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT_INT = 2**53
# Largest integer a number column takes: beyond it, conversion to float64 overflows.
_FLOAT_MAX = 1.7976931348623157e308


class InputError(ValueError):
    """The client sent something the model cannot take; `status` is the HTTP status to use."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    mlflow_type: str
    # MLflow marks a column optional when its training data had missing values: only then
    # may requests leave it out or send null/NaN in it.
    required: bool = True
    # Values the model can encode (from a fitted encoder that raises on unknown ones), checked
    # here so a bad row is rejected alone instead of failing the micro-batch it would join.
    categories: frozenset[Any] | None = None
    # Whether null/NaN is one of them (an encoder fitted on missing values, or an imputer).
    categories_missing: bool = False


@dataclass
class Rows:
    """Validated request rows, column-major: `columns[name]` holds `n_rows` values."""

    columns: dict[str, list[Any]]
    n_rows: int


@dataclass(frozen=True)
class InputSchema:
    columns: tuple[Column, ...]
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        groups: dict[str, list[Column]] = {}
        for column in self.columns:
            groups.setdefault(column.kind, []).append(column)
        object.__setattr__(self, "_groups", groups)
        categorical = [c for c in self.columns if c.categories is not None]
        object.__setattr__(self, "_categorical", categorical)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @classmethod
    def from_signature(cls, signature: Any) -> InputSchema | None:
        """Column schema of an MLflow `ModelSignature`; None when it has no named columns."""
        if signature is None or signature.inputs is None:
            return None
        inputs = signature.inputs
        if not inputs.has_input_names() or inputs.is_tensor_spec():
            return None
        columns = []
        for spec in inputs.inputs:
            type_name = getattr(spec.type, "name", str(spec.type))
            kind = _KIND_BY_MLFLOW_TYPE.get(type_name, "any")
            columns.append(Column(spec.name, kind, type_name, bool(spec.required)))
        return cls(tuple(columns))

    # -- parsing -----------------------------------------------------------------------

    def rows_from_invocations(self, payload: Any) -> Rows:
        """MLflow scoring-server formats: dataframe_split, dataframe_records, instances, inputs."""
        if not isinstance(payload, dict):
            raise InputError(
                "request body must be a JSON object with one of the keys dataframe_split, "
                "dataframe_records, instances or inputs",
                400,
            )
        keys = [
            k
            for k in ("dataframe_split", "dataframe_records", "instances", "inputs")
            if k in payload
        ]
        unknown = sorted(
            set(payload) - {"dataframe_split", "dataframe_records", "instances", "inputs", "params"}
        )
        if unknown:
            raise InputError(f"unknown top-level key(s): {', '.join(unknown)}", 400)
        if len(keys) != 1:
            raise InputError(
                "request body must have exactly one of the keys dataframe_split, "
                f"dataframe_records, instances, inputs (got {len(keys)})",
                400,
            )
        key = keys[0]
        body = payload[key]
        if key == "dataframe_split":
            return self.validate(*_split_to_columns(body))
        if isinstance(body, list):
            return self.validate(*_records_to_columns(body, key))
        if isinstance(body, dict):
            return self.validate(*_mapping_to_columns(body, key))
        raise InputError(f"'{key}' must be a list of records or an object of columns", 400)

    def rows_from_v2(self, payload: Any) -> Rows:
        """Open Inference Protocol v2 request: one named 1-D input tensor per column."""
        if not isinstance(payload, dict):
            raise InputError("request body must be a JSON object with an 'inputs' list", 400)
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise InputError("'inputs' must be a non-empty list of tensors", 400)
        columns: dict[str, Sequence[Any]] = {}
        n_rows: int | None = None
        for i, tensor in enumerate(inputs):
            where = f"inputs[{i}]"
            if not isinstance(tensor, dict):
                raise InputError(f"{where} must be an object with name, shape, datatype, data")
            name = tensor.get("name")
            if not isinstance(name, str):
                raise InputError(f"{where}.name must be a string")
            where = f"input {reprlib.repr(name)}"
            if name in columns:
                raise InputError(f"{where} appears more than once")
            shape, datatype, data = tensor.get("shape"), tensor.get("datatype"), tensor.get("data")
            if (
                not isinstance(shape, list)
                or not shape
                or not all(type(d) is int and d >= 0 for d in shape)
            ):
                raise InputError(f"{where}: shape must be a list of non-negative integers")
            if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                raise InputError(f"{where}: shape {shape} is not a column; use [n] or [n, 1]")
            if not isinstance(data, list):
                raise InputError(f"{where}: data must be a list")
            if data and isinstance(data[0], list):
                data = [v for row in data for v in (row if isinstance(row, list) else [row])]
            if len(data) != shape[0]:
                raise InputError(
                    f"{where}: shape {shape} says {shape[0]} values, data has {len(data)}"
                )
            if not isinstance(datatype, str) or datatype not in V2_ALL_DATATYPES:
                raise InputError(
                    f"{where}: datatype must be one of the protocol's datatype names "
                    f"(FP64, INT64, BYTES, BOOL, ...), got {_describe(datatype)}"
                )
            column = self.by_name.get(name)
            if (
                column is not None
                and column.kind != "any"
                and datatype not in V2_DATATYPES[column.kind]
            ):
                raise InputError(
                    f"{where} has datatype {datatype!r} but the model expects "
                    f"{V2_DATATYPE_BY_KIND[column.kind]} ({column.mlflow_type})"
                )
            if n_rows is None:
                n_rows = shape[0]
            elif shape[0] != n_rows:
                raise InputError(f"{where} has {shape[0]} rows, earlier inputs have {n_rows}")
            columns[name] = data
        assert n_rows is not None
        return self.validate(columns, n_rows)

    # -- validation --------------------------------------------------------------------

    def validate(self, columns: Mapping[str, Sequence[Any]], n_rows: int) -> Rows:
        if n_rows == 0:
            raise InputError("the request has no rows")
        unknown = [name for name in columns if name not in self.by_name]
        if unknown:
            raise InputError(
                f"unknown column(s): {_names(unknown)}; the model expects: {', '.join(self.names)}"
            )
        missing = [c.name for c in self.columns if c.required and c.name not in columns]
        if missing:
            raise InputError(f"missing required column(s): {', '.join(repr(m) for m in missing)}")
        out: dict[str, list[Any]] = {}
        for column in self.columns:
            values = columns.get(column.name)
            out[column.name] = [None] * n_rows if values is None else list(values)
        # Fast path: one pass over all values of a kind proves the common case (every value
        # well-typed and finite) with C-level set/sum calls; only a group that fails it is
        # checked value by value, which also finds the column and row to report.
        for kind, group in self._groups.items():  # type: ignore[attr-defined]
            if kind == "any":
                continue
            values = [v for column in group for v in out[column.name]]
            if _group_ok(kind, values):
                continue
            for column in group:
                out[column.name] = _check_values(column, out[column.name])
        for column in self._categorical:  # type: ignore[attr-defined]
            _check_categories(column, out[column.name])
        return Rows(out, n_rows)

    def with_categories(self, categories: Mapping[str, tuple[frozenset[Any], bool]]) -> InputSchema:
        """This schema with the known categories (and whether missing is one) of some columns."""
        columns = []
        for column in self.columns:
            known = categories.get(column.name)
            if known is not None and column.kind != "any":
                column = replace(column, categories=known[0], categories_missing=known[1])
            columns.append(column)
        return InputSchema(tuple(columns))


_FLOAT_TYPES = frozenset({float, int})
_EXACT_TYPES = {"int": frozenset({int}), "str": frozenset({str}), "bool": frozenset({bool})}


def _group_ok(kind: str, values: list[Any]) -> bool:
    types = set(map(type, values))
    if kind == "float":
        if not types <= _FLOAT_TYPES:
            return False
        if int in types and not -_FLOAT_MAX <= min(values) <= max(values) <= _FLOAT_MAX:
            return False  # an integer too large for float64 (which a sum could cancel out)
        # A finite sum proves every float finite; an overflowing sum takes the slow path.
        try:
            return math.isfinite(sum(values))
        except OverflowError:
            return False
    if kind == "int":
        # min/max are C-level: the range check costs little more than the type check.
        return types <= _EXACT_TYPES["int"] and INT64_MIN <= min(values) <= max(values) <= INT64_MAX
    return types <= _EXACT_TYPES[kind]


def _check_values(column: Column, values: Sequence[Any]) -> list[Any]:
    kind = column.kind
    if kind == "any":
        return list(values)
    out = list(values)
    for row, value in enumerate(out):
        vtype = type(value)
        if kind == "float":
            if vtype is float:
                if math.isfinite(value):
                    continue
                if value != value:  # NaN
                    if column.required:
                        raise _missing(column, row)
                    continue
                raise InputError(
                    f"column '{column.name}' row {row}: {value} is not allowed "
                    "(only finite numbers)"
                )
            if vtype is int:
                if -_FLOAT_MAX <= value <= _FLOAT_MAX:
                    continue
                raise _out_of_range(column, row, value, "a 64-bit float")
            if value is None and not column.required:
                continue
        elif kind == "int":
            if vtype is int:
                if INT64_MIN <= value <= INT64_MAX:
                    continue
                raise _out_of_range(column, row, value, "a 64-bit integer")
            if vtype is float and math.isfinite(value) and value.is_integer():
                if -_EXACT_FLOAT_INT <= value <= _EXACT_FLOAT_INT:
                    out[row] = int(value)
                    continue
                raise InputError(
                    f"column '{column.name}' row {row}: {value!r} is beyond 2**53, where a "
                    "number with a fraction or exponent stands for no single integer; send "
                    f"an integer literal within the 64-bit range ({column.mlflow_type})"
                )
            if vtype is float and not math.isfinite(value):
                if value != value:
                    raise _missing(column, row)
                raise InputError(
                    f"column '{column.name}' row {row}: {value} is not allowed "
                    "(only finite numbers)"
                )
        elif kind == "str":
            if vtype is str:
                continue
            if value is None and not column.required:
                continue
        elif kind == "bool" and vtype is bool:
            continue
        if value is None:
            raise _missing(column, row)
        raise InputError(
            f"column '{column.name}' row {row}: expected {_KIND_LABEL[kind]} "
            f"({column.mlflow_type}), got {_describe(value)}"
        )
    return out


def _is_missing(value: Any) -> bool:
    return value is None or (type(value) is float and value != value)


def _check_categories(column: Column, values: list[Any]) -> None:
    known = column.categories
    assert known is not None
    unknown = set(values) - known  # one C-level pass in the common case
    if column.categories_missing:
        unknown = {v for v in unknown if not _is_missing(v)}
    if not unknown:
        return
    row = next(i for i, v in enumerate(values) if v in unknown)
    value = values[row]
    shown = "a missing value (null/NaN)" if _is_missing(value) else _describe(value)
    expected = _names(sorted(known, key=str), 20)
    raise InputError(
        f"column '{column.name}' row {row}: unknown category: {shown}; the model was trained "
        f"on {expected}"
    )


def _out_of_range(column: Column, row: int, value: int, target: str) -> InputError:
    return InputError(
        f"column '{column.name}' row {row}: integer {short_int(value)} is out of range for "
        f"{target} ({column.mlflow_type}); it is rejected, not clamped"
    )


def _names(names: Sequence[str], most: int = 10) -> str:
    """Client-supplied names as a message lists them: each shortened, at most `most`."""
    shown = ", ".join(reprlib.repr(n) for n in names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def short_int(value: int) -> str:
    """An integer as an error message shows it: a long one by its length, not its digits."""
    if -(10**30) < value < 10**30:
        return str(value)
    sign = "-" if value < 0 else ""
    # str(value) would be refused beyond 4300 digits; the bit length gives the count cheaply.
    digits = int(value.bit_length() * math.log10(2)) + 1
    if abs(value) < 10 ** (digits - 1):
        digits -= 1
    return f"{sign}<an integer of {digits} digits>"


def _missing(column: Column, row: int) -> InputError:
    return InputError(
        f"column '{column.name}' row {row}: missing value (null/NaN), but the model's "
        f"signature marks the column as required"
    )


def _describe(value: Any) -> str:
    # reprlib, not repr: the value may be a multi-megabyte string or a deeply nested list.
    text = short_int(value) if type(value) is int else reprlib.repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    name = {
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        list: "list",
        dict: "object",
    }
    return f"{name.get(type(value), type(value).__name__)} {text}"


def _split_to_columns(body: Any) -> tuple[dict[str, Sequence[Any]], int]:
    if not isinstance(body, dict):
        raise InputError("'dataframe_split' must be an object with 'columns' and 'data'", 400)
    names, data = body.get("columns"), body.get("data")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError("'dataframe_split.columns' must be a list of column names", 400)
    if len(set(names)) != len(names):
        raise InputError("'dataframe_split.columns' has duplicate names", 400)
    if not isinstance(data, list):
        raise InputError("'dataframe_split.data' must be a list of rows", 400)
    width = len(names)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else _describe(row)
            raise InputError(
                f"'dataframe_split.data' row {i} has {got}; expected {width} (one per column)"
            )
    if not data:
        return dict.fromkeys(names, ()), 0
    return dict(zip(names, zip(*data, strict=True), strict=True)), len(data)


def _records_to_columns(records: list[Any], key: str) -> tuple[dict[str, Sequence[Any]], int]:
    if not records:
        return {}, 0
    first = records[0]
    if not isinstance(first, dict):
        raise InputError(f"'{key}' must be a list of objects (one per row)", 400)
    names = list(first)
    expected = set(names)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(f"'{key}' row {i} must be an object, got {_describe(record)}", 400)
        if record.keys() != expected:
            extra = sorted(set(record) - expected)
            lacking = sorted(expected - set(record))
            raise InputError(
                f"'{key}' row {i} has different columns than row 0"
                + (f"; extra: {_names(extra)}" if extra else "")
                + (f"; missing: {_names(lacking)}" if lacking else "")
            )
    return {n: [r[n] for r in records] for n in names}, len(records)


def _mapping_to_columns(body: dict[str, Any], key: str) -> tuple[dict[str, Sequence[Any]], int]:
    if not body:
        return {}, 0
    as_lists: dict[str, Sequence[Any]] = {
        n: v if isinstance(v, list) else [v] for n, v in body.items()
    }
    lengths = {len(v) for v in as_lists.values()}
    if len(lengths) != 1:
        raise InputError(f"'{key}' columns have different lengths: {sorted(lengths)}")
    return as_lists, lengths.pop()


def to_arrays(schema: InputSchema, parts: Sequence[Rows]) -> dict[str, np.ndarray]:
    """Concatenate validated rows of many requests into one typed array per column."""
    arrays: dict[str, np.ndarray] = {}
    single = len(parts) == 1
    for column in schema.columns:
        if single:
            values = parts[0].columns[column.name]
        else:
            values = [v for part in parts for v in part.columns[column.name]]
        dtype = _DTYPE_BY_KIND.get(column.kind, object)
        if column.kind == "float":
            arrays[column.name] = np.array(values, dtype=np.float64)  # None -> NaN
        else:
            array: np.ndarray = np.empty(len(values), dtype=dtype)
            array[:] = values
            arrays[column.name] = array
    return arrays
