"""Delta tables as `shoplake publish` copies them: version, columns as PostgreSQL types, the partitions
two versions differ in, and the rows as CSV chunks for PostgreSQL's COPY (Arrow's C++ CSV writer, no
Python loop per row)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
from deltalake import DeltaTable

from shoplake.engines.duckdb_io import log_features, open_table
from shoplake.errors import EngineError

PartitionValue = date | datetime | str | int | float | bool | None
CHUNK_ROWS = 65_536  # rows per CSV chunk handed to COPY: memory stays flat for any table size


@dataclass(frozen=True)
class DeltaSnapshot:
    """One version of a Delta table, as publish needs it."""

    path: str
    version: int
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)
    partition: str | None  # its one partition column, if partitioned by exactly one
    rows: int


def postgres_type(kind: pa.DataType) -> str:
    """The PostgreSQL type holding an Arrow type's values as Arrow's CSV writer renders them."""
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_int8(kind) or pa.types.is_int16(kind) or pa.types.is_uint8(kind):
        return "smallint"
    if pa.types.is_int32(kind) or pa.types.is_uint16(kind):
        return "integer"
    if pa.types.is_integer(kind):
        return "bigint" if not pa.types.is_uint64(kind) else "numeric(20,0)"
    if pa.types.is_float32(kind):
        return "real"
    if pa.types.is_floating(kind):
        return "double precision"
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision},{kind.scale})"  # as PostgreSQL's format_type writes it
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamp with time zone" if kind.tz else "timestamp without time zone"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "text"
    raise EngineError(f"a column of Arrow type {kind} cannot be published to PostgreSQL",
                      hint="cast it in the model to text, a number, a date or a timestamp")


def _open(path: str, version: int | None = None) -> DeltaTable:
    table = open_table(path) if version is None else DeltaTable(path, version=version)
    if table is None:
        raise EngineError(f"the Delta table {path} does not exist", hint="run shoplake run first")
    features = log_features(table)
    if features:
        raise EngineError(f"{path} uses {', '.join(features)}, which publish does not read",
                          hint="run shoplake maintain (compaction purges deletion vectors), then publish again")
    return table


def snapshot(path: str) -> DeltaSnapshot | None:
    """The table's current version, or None when it does not exist."""
    table = open_table(path)
    if table is None:
        return None
    table = _open(path)
    schema = pa.schema(table.schema())
    partitions = table.metadata().partition_columns
    rows = sum(int(n) for n in pa.table(table.get_add_actions(flatten=True)).column("num_records").to_pylist()
               if n is not None)
    return DeltaSnapshot(path=path, version=int(table.version()),
                         columns=tuple((f.name, postgres_type(f.type)) for f in schema),
                         partition=partitions[0] if len(partitions) == 1 else None, rows=rows)


def _files(table: DeltaTable, column: str) -> dict[str, PartitionValue]:
    actions = pa.table(table.get_add_actions(flatten=True))
    return dict(zip(actions.column("path").to_pylist(), actions.column(f"partition.{column}").to_pylist(),
                    strict=True))


def changed_partitions(path: str, since: int, column: str) -> list[PartitionValue] | None:
    """The partition values whose files differ between version `since` and now (a rollback that went
    back to an older file set counts too); None when `since` cannot be read (its log entry is gone)."""
    try:
        before = _files(DeltaTable(path, version=since), column)
    except Exception:  # any failure to read the old version: republish the whole table
        return None
    now = _files(_open(path), column)
    changed = {value for file, value in before.items() if file not in now}
    changed |= {value for file, value in now.items() if file not in before}
    return sorted(changed, key=lambda v: (v is None, str(v)))


def key_has_nulls(path: str, columns: list[str]) -> bool:
    """Whether any of these columns holds a NULL (a primary key cannot; a unique constraint then is used)."""
    dataset = _open(path).to_pyarrow_dataset()
    found = dataset.filter(_any_null(columns)).head(1, columns=columns[:1])
    return bool(found.num_rows)


def _any_null(columns: list[str]) -> pads.Expression:
    condition = pads.field(columns[0]).is_null()
    for name in columns[1:]:
        condition = condition | pads.field(name).is_null()
    return condition


def csv_chunks(path: str, version: int, columns: list[str], *, partition: str | None = None,
               values: list[PartitionValue] | None = None) -> Iterator[tuple[bytes, int]]:
    """The rows of `path` at `version` (only the given partitions' when `values` is set) as CSV chunks
    without a header, each with its row count: strings always quoted, NULL an unquoted empty field (COPY
    ... CSV tells them apart)."""
    dataset = _open(path, version).to_pyarrow_dataset()
    condition: Any = None
    if partition is not None and values is not None:
        kind = dataset.schema.field(partition).type
        present = [v for v in values if v is not None]
        condition = pads.field(partition).isin(pa.array(present, type=kind))
        if len(present) < len(values):
            condition = condition | pads.field(partition).is_null()
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in dataset.to_batches(columns=columns, filter=condition, batch_size=CHUNK_ROWS):
        if batch.num_rows:
            out = io.BytesIO()
            pacsv.write_csv(pa.Table.from_batches([batch]), out, write_options=options)
            yield out.getvalue(), batch.num_rows
