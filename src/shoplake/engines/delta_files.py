"""Writes to a local Delta table without delta-rs's writer: the staged rows stream into Parquet files in
the table's folder (pyarrow), and delta-rs commits those files in one transaction.

delta-rs's writer holds memory that grows with the rows of one write (about 50 bytes a row beyond the
Parquet encoding: 2.6 GiB to write 37M rows of fact_sales, against 0.5 GiB for pyarrow writing the same
stream), which made a day's peak memory grow with the day. Here a write holds at most one row group per
open partition, and every file's statistics are computed from its rows (exact, never from a guess).

`plan` says whether a write can go this way; anything it cannot do exactly as delta-rs would (a schema
change, a type Delta stores otherwise, partitions by text) is left to delta-rs's writer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.schema import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions
from sqlglot import exp

TARGET_FILE_BYTES = 128 << 20  # a file is closed once it holds this much (delta-rs's default is 100 MiB)
ROW_GROUP_ROWS = 2 * 122_880  # rows a partition buffers before they become a row group: two of DuckDB's
BUFFER_BYTES = 96 << 20  # all partitions' buffered rows together: past it, the largest is written out
DEFAULT_STATS_COLUMNS = 32  # Delta's delta.dataSkippingNumIndexedCols default
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # the folder of the NULL partition value, as delta-rs names it
# Arrow types whose Parquet encoding (pyarrow's) is what Delta reads for them; others go through delta-rs.
_PLAIN = (pa.types.is_boolean, pa.types.is_signed_integer, pa.types.is_floating, pa.types.is_decimal,
          pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary,
          pa.types.is_date32)
_PARTITION_TYPES = (pa.types.is_date32, pa.types.is_signed_integer)
# Writer features a commit of plain files satisfies as they are; a table with any other (CHECK constraints,
# generated or identity columns, row tracking, change data feed...) is written by delta-rs, which keeps them.
_PLAIN_WRITER_FEATURES = frozenset({"timestampNtz", "deletionVectors", "v2Checkpoint", "vacuumProtocolCheck",
                                    "appendOnly"})


def plan(schema: pa.Schema, table: DeltaTable | None, mode: str, partition_by: tuple[str, ...],
         replace: exp.Expr | None = None) -> bool:
    """Whether this write can go through `write`: every column of a type written here as Delta reads it,
    partitions by dates or whole numbers, for an existing table the same columns and layout (a schema
    change is delta-rs's to commit), and a `replace` predicate over partition columns only."""
    if not all(_plain(f.type) for f in schema):
        return False
    if replace is not None and (table is None or not {c.name for c in replace.find_all(exp.Column)}
                                <= set(table.metadata().partition_columns)):
        return False
    if table is None:
        columns = partition_by
    else:
        layout = list(table.metadata().partition_columns)
        if mode == "overwrite" and list(partition_by) != layout:
            return False
        configuration = table.metadata().configuration
        if (set(table.protocol().writer_features or []) - _PLAIN_WRITER_FEATURES
                or any(key.startswith("delta.constraints.") for key in configuration)
                or configuration.get("delta.enableChangeDataFeed", "false").lower() == "true"):
            return False  # kept by delta-rs's writer (generated columns and the like change the schema below)
        try:
            same = DeltaSchema.from_arrow(schema).to_json() == table.schema().to_json()
        except Exception:  # a type Delta has no name for: delta-rs says so
            return False
        if not same:
            return False
        columns = tuple(layout)
    return all(c in schema.names and any(t(schema.field(c).type) for t in _PARTITION_TYPES) for c in columns)


def _plain(kind: pa.DataType) -> bool:
    if pa.types.is_timestamp(kind):
        return bool(kind.unit == "us")  # with a zone: Delta's timestamp; without: timestamp_ntz
    return any(test(kind) for test in _PLAIN)


@dataclass
class _OpenFile:
    """One Parquet file being written for one partition value."""

    key: tuple[object, ...]
    relative: str
    values: dict[str, str | None]
    writer: pq.ParquetWriter
    sink: pa.OSFile
    stats: _Stats
    pending: list[pa.RecordBatch] = field(default_factory=list)
    pending_rows: int = 0
    pending_bytes: int = 0


class _Stats:
    """A file's Delta statistics, from its rows: the count, and nulls, min and max of the stats columns."""

    def __init__(self, columns: list[str]) -> None:
        self.rows = 0
        self.nulls = dict.fromkeys(columns, 0)
        self.low: dict[str, object] = {}
        self.high: dict[str, object] = {}

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for name in self.nulls:
            column = batch.column(name)
            self.nulls[name] += column.null_count
            if column.null_count == len(column):
                continue
            bounds = pc.min_max(column).as_py()
            low, high = bounds["min"], bounds["max"]
            if name not in self.low or low < self.low[name]:
                self.low[name] = low
            if name not in self.high or high > self.high[name]:
                self.high[name] = high

    def json(self) -> str:
        low = {k: v for k, v in ((k, _stat(v, up=False)) for k, v in self.low.items()) if v is not None}
        high = {k: v for k, v in ((k, _stat(v, up=True)) for k, v in self.high.items()) if v is not None}
        return json.dumps({"numRecords": self.rows, "minValues": low, "maxValues": high, "nullCount": self.nulls})


def _stat(value: object, *, up: bool) -> object:
    """A min or max as Delta's statistics write it; timestamps at milliseconds, rounded outwards so the
    bounds still hold. None: a value kept out of the statistics (no file is skipped by it)."""
    if isinstance(value, datetime):
        cut = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if up and cut != value:
            cut += timedelta(milliseconds=1)
        zone = "Z" if cut.tzinfo is not None else ""
        if cut.tzinfo is not None:
            cut = cut.astimezone(UTC).replace(tzinfo=None)
        return cut.isoformat(timespec="milliseconds") + zone
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return value
    return None


class _Files:
    """The Parquet files of one write, one open file per partition value, each rolled at its size."""

    def __init__(self, root: Path, schema: pa.Schema, partition_by: tuple[str, ...], stats: tuple[str, ...]) -> None:
        self._root = root
        self._partition_by = partition_by
        self._data_schema = pa.schema([f for f in schema if f.name not in partition_by])
        self._stats = [c for c in stats if c in self._data_schema.names]
        self._open: dict[tuple[object, ...], _OpenFile] = {}
        self.added: list[AddAction] = []
        self.written_values: set[tuple[object, ...]] = set()
        self._buffered = 0

    def write(self, batches: Iterable[pa.RecordBatch]) -> None:
        for batch in batches:
            for key, part in self._split(batch):
                self.written_values.add(key)
                self._buffer(key, part)
            while self._buffered > BUFFER_BYTES:
                self._flush(max(self._open.values(), key=lambda f: f.pending_bytes))

    def close(self) -> list[AddAction]:
        for handle in list(self._open.values()):
            self._finish(handle)
        return self.added

    def abort(self) -> None:
        """A failed write: its files are closed and deleted (none is in the log yet)."""
        for handle in self._open.values():
            handle.writer.close()
            handle.sink.close()
        for relative in [h.relative for h in self._open.values()] + [a.path for a in self.added]:
            (self._root / relative).unlink(missing_ok=True)

    def _split(self, batch: pa.RecordBatch) -> Iterator[tuple[tuple[object, ...], pa.RecordBatch]]:
        if not self._partition_by:
            yield (), batch
            return
        if len(self._partition_by) == 1:
            column = batch.column(self._partition_by[0])
            bounds = pc.min_max(column).as_py()
            if column.null_count == 0 and bounds["min"] == bounds["max"]:  # the usual case: one day's rows
                yield (bounds["min"],), batch.select(self._data_schema.names)
                return
        keys = pa.table([batch.column(c) for c in self._partition_by], names=list(self._partition_by))
        for row in keys.group_by(list(self._partition_by)).aggregate([]).to_pylist():
            mask = None
            for name in self._partition_by:
                test = pc.is_null(batch.column(name)) if row[name] is None else pc.equal(batch.column(name), row[name])
                test = pc.fill_null(test, False)
                mask = test if mask is None else pc.and_(mask, test)
            yield tuple(row[c] for c in self._partition_by), batch.filter(mask).select(self._data_schema.names)

    def _buffer(self, key: tuple[object, ...], part: pa.RecordBatch) -> None:
        handle = self._open.get(key) or self._start(key)
        handle.pending.append(part)
        handle.pending_rows += part.num_rows
        handle.pending_bytes += part.nbytes
        self._buffered += part.nbytes
        handle.stats.add(part)
        if handle.pending_rows >= ROW_GROUP_ROWS:
            self._flush(handle)

    def _start(self, key: tuple[object, ...]) -> _OpenFile:
        values = {c: None if v is None else str(v) for c, v in zip(self._partition_by, key, strict=True)}
        folder = "/".join(f"{c}={NULL_PARTITION if v is None else v}" for c, v in values.items())
        name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        relative = f"{folder}/{name}" if folder else name
        (self._root / relative).parent.mkdir(parents=True, exist_ok=True)
        sink = pa.OSFile(str(self._root / relative), "wb")
        writer = pq.ParquetWriter(sink, self._data_schema, compression="snappy", write_statistics=self._stats or False,
                                  store_schema=False)
        handle = _OpenFile(key, relative, values, writer, sink, _Stats(self._stats))
        self._open[key] = handle
        return handle

    def _flush(self, handle: _OpenFile) -> None:
        self._flush_rows(handle)
        if handle.sink.tell() >= TARGET_FILE_BYTES:
            self._finish(handle)

    def _finish(self, handle: _OpenFile) -> None:
        self._flush_rows(handle)
        handle.writer.close()
        handle.sink.close()
        del self._open[handle.key]
        path = self._root / handle.relative
        self.added.append(AddAction(handle.relative, path.stat().st_size, handle.values,
                                    int(path.stat().st_mtime * 1000), True, handle.stats.json()))

    def _flush_rows(self, handle: _OpenFile) -> None:
        if handle.pending:
            handle.writer.write_table(pa.Table.from_batches(handle.pending, self._data_schema),
                                      row_group_size=ROW_GROUP_ROWS)
            self._buffered -= handle.pending_bytes
            handle.pending, handle.pending_rows, handle.pending_bytes = [], 0, 0


def write(path: str, reader: pa.RecordBatchReader, table: DeltaTable | None, mode: str, *,
          partition_by: tuple[str, ...], stats: tuple[str, ...], replace: str | None,
          commit: CommitProperties | None, configuration: dict[str, str | None] | None) -> None:
    """The rows of `reader` written as one commit to the local table at `path` (see `plan` for when):
    a new table (`table` None), an append, a whole overwrite, or the rows of the `replace` predicate
    (DuckDB SQL over partition columns) replaced, refused when a new row falls outside it."""
    layout = tuple(table.metadata().partition_columns) if table is not None else partition_by
    # No stats columns named: Delta's default, the first 32 columns (as delta-rs keeps them).
    stats = stats or tuple([n for n in reader.schema.names if n not in layout][:DEFAULT_STATS_COLUMNS])
    files = _Files(Path(path), reader.schema, layout, stats)
    try:
        files.write(reader)
        added = files.close()
        if replace is not None:
            _check_within(files.written_values, layout, reader.schema, replace)
    except BaseException:
        files.abort()
        raise
    schema = DeltaSchema.from_arrow(reader.schema)
    if table is None:
        create_table_with_add_actions(path, schema, added, mode="error", partition_by=list(layout) or None,
                                      configuration=configuration, commit_properties=commit)
    elif replace is not None:
        removed = _matching_files(table, layout, replace)
        table.create_write_transaction([*removed, *added], "append", schema, list(layout) or None,
                                       commit_properties=commit)
    else:
        actions: list[AddAction | RemoveAction] = list(added)
        table.create_write_transaction(actions, "overwrite" if mode == "overwrite" else "append", schema,
                                       list(layout) or None, commit_properties=commit)


def _matching_files(table: DeltaTable, layout: tuple[str, ...], replace: str) -> list[RemoveAction]:
    """The table's files whose partition values satisfy `replace` (evaluated by DuckDB, as delta-rs would)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return []
    parts = pa.table({"path": actions.column("path"), **{c: actions.column(f"partition.{c}") for c in layout}})
    with duckdb.connect() as con:
        con.register("files", parts)
        doomed = {row[0] for row in con.execute(f"SELECT path FROM files WHERE {replace}").fetchall()}
    now = int(time.time() * 1000)
    removed = []
    for row in actions.select(["path", "size_bytes", *[f"partition.{c}" for c in layout]]).to_pylist():
        if row["path"] in doomed:
            values = {c: None if row[f"partition.{c}"] is None else str(row[f"partition.{c}"]) for c in layout}
            removed.append(RemoveAction(row["path"], True, now, row["size_bytes"], values))
    return removed


def _check_within(values: set[tuple[object, ...]], layout: tuple[str, ...], schema: pa.Schema, replace: str) -> None:
    """Every written partition satisfies `replace`, as delta-rs checks every row of a predicate overwrite."""
    if not values:
        return
    keys = pa.table({c: pa.array([v[i] for v in values], schema.field(c).type) for i, c in enumerate(layout)})
    with duckdb.connect() as con:
        con.register("written", keys)
        outside = con.execute(f"SELECT count(*) FROM written WHERE NOT coalesce(({replace}), false)").fetchone()
    if outside and outside[0]:
        raise ValueError(f"{outside[0]} partition(s) of the new rows do not match the predicate {replace}")
