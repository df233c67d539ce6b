"""What the DuckDB engine reads: Delta tables through delta-rs (opened, their reader features, their fence)
and staged tables as Arrow streams for delta-rs to write."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import ColumnProperties, DeltaTable, WriterProperties
from deltalake.exceptions import DeltaError, DeltaProtocolError, TableNotFoundError

from shoplake.engines.base import APP_ID, MERGE_KEY_PREFIX, ROW_TOO_LONG, quoted
from shoplake.errors import EngineError, LeaseLost

# Reader features that leave a snapshot's rows equal to its files' rows (they concern the log, or are
# plain Parquet types); a table with any other is read through delta-rs (see DuckDBEngine.attach_delta).
_PLAIN_READER_FEATURES = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})
BATCH_ROWS = 122_880  # DuckDB's row-group size: whole groups stream to delta-rs without re-chunking
# Min/max per row group (what readers prune by), no page index (nothing reads it; a tenth of a write's CPU).
WRITER = WriterProperties(compression="SNAPPY", default_column_properties=ColumnProperties(statistics_enabled="CHUNK"))


class StagedRows:
    """A staged table (or view) read once as an Arrow stream, counted on the way through.

    Merge-key columns are read only for a merge (they are not data). A view is not computed twice
    just to learn its size: the first batch is read ahead to tell whether there are rows at all.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str, *, merge_keys: bool = False) -> None:
        keep = [quoted(c) for c in staged_columns(con, table) if merge_keys or not c.startswith(MERGE_KEY_PREFIX)]
        self._source = con.sql(f"SELECT {', '.join(keep)} FROM {quoted(table)}").to_arrow_reader(BATCH_ROWS)
        self._first = next(self._batches(), None)
        self.count = 0

    @property
    def empty(self) -> bool:
        return self._first is None

    def close(self) -> None:
        self._source.close()

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self._source.schema, self._counted())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        return (batch for batch in self._source if batch.num_rows)

    def _counted(self) -> Iterator[pa.RecordBatch]:
        rest = self._batches()
        for batch in itertools.chain([] if self._first is None else [self._first], rest):
            self.count += batch.num_rows
            yield batch


def log_features(table: DeltaTable) -> list[str]:
    """The table's reader features that make its rows differ from its Parquet files' rows: deletion
    vectors (rows deleted by a mask beside the file), column mapping (physical column names), and any
    feature not known here (never guessed to be harmless)."""
    protocol = table.protocol()
    features = set(protocol.reader_features or [])
    if table.metadata().configuration.get("delta.columnMapping.mode", "none") != "none":
        features.add("columnMapping")  # reader version 2 has column mapping without a features list
    features -= _PLAIN_READER_FEATURES
    if features == {"deletionVectors"} and _no_deletion_vectors(table):
        return []  # enabled, but no file has deleted rows (none yet, or purged): the files are the rows
    return sorted(features)


def _no_deletion_vectors(table: DeltaTable) -> bool:
    """Whether no file of the snapshot has deleted rows (delta-rs lists only files that have some)."""
    return int(pa.RecordBatchReader.from_stream(table.deletion_vectors()).read_all().num_rows) == 0


def open_table(path: str) -> DeltaTable | None:
    try:
        return DeltaTable(path)
    except TableNotFoundError:
        return None
    except DeltaError as error:
        # A table whose protocol needs what this deltalake lacks: refused by name, not read partly.
        if not isinstance(error, DeltaProtocolError) and "not supported" not in str(error):
            raise
        raise EngineError(f"cannot read the Delta table {path}: {short_error(error)}",
                          hint="upgrade deltalake, or read this lake with the Spark engine (--engine spark)") from None


class LatestTables:
    """Each local table's latest snapshot, reused while its log has no commit after it: a batch asks for the
    same tables' versions, columns and files dozens of times, and every open reads the whole log (a third
    of a small batch's Delta time). A table on object storage is opened each time."""

    def __init__(self) -> None:
        self._opened: dict[str, DeltaTable] = {}

    def open(self, path: str) -> DeltaTable | None:
        table = self._opened.get(path)
        if table is not None and _still_latest(path, int(table.version())):
            return table
        table = open_table(path)
        if table is None or "://" in path:
            self._opened.pop(path, None)
        else:
            self._opened[path] = table
        return table


def _still_latest(path: str, version: int) -> bool:
    """Whether `version` is still a local table's latest: its commit file is there and the next is not (a
    commit creates the next version's file atomically; a table deleted and made again loses the file)."""
    log = Path(path) / "_delta_log"
    return (log / f"{version:020d}.json").exists() and not (log / f"{version + 1:020d}.json").exists()


def check_fence(table: DeltaTable, fence: int) -> None:
    latest = table.transaction_version(APP_ID)
    if latest is not None and latest > fence:
        raise LeaseLost(f"{table.table_uri} was written by a later holder of the lake (its fence {latest} is "
                        f"above this process's {fence})")


def check_last_line(path: Path, max_line: int) -> None:
    """The parallel CSV reader drops a last row longer than its buffer (16 times max_line) without an error
    (duckdb/duckdb#25825), where it fails on such a row anywhere else. The file's end tells: its last line
    is at least as long as that row. Read only for a file that could hold such a line (a gzip file's
    bytes are not its lines: the reader's own limit applies to those)."""
    size = path.stat().st_size
    if size <= max_line or path.name.lower().endswith(".gz"):
        return
    with path.open("rb") as handle:
        handle.seek(max(0, size - max_line - (1 << 16)))  # the 64 KB spare covers the last line breaks
        tail = handle.read().rstrip(b"\r\n")
    if len(tail) - max(tail.rfind(b"\n"), tail.rfind(b"\r")) - 1 >= max_line:
        raise EngineError(f"the last line {ROW_TOO_LONG}")


def staged_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    result = con.execute(f"SELECT * FROM {quoted(table)} LIMIT 0")
    names = [d[0] for d in result.description or []]
    result.fetchall()
    return names


def short_error(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    keep = [line for line in lines if not line.startswith(("Possible", "*", "  file=", "Consider"))]
    return " | ".join(keep[:3]).replace("Invalid Input Error: ", "")


def writer(stats: tuple[str, ...]) -> WriterProperties:
    """Parquet statistics only on the columns Delta keeps file statistics for (WriteJob.stats): min/max of
    text columns is a third of a write's CPU, and nothing prunes by the other columns."""
    if not stats:
        return WRITER
    return WriterProperties(compression="SNAPPY", default_column_properties=ColumnProperties(statistics_enabled="NONE"),
                            column_properties={c: ColumnProperties(statistics_enabled="CHUNK") for c in stats})


def table_stats(table: DeltaTable) -> tuple[str, ...]:
    setting = table.metadata().configuration.get("delta.dataSkippingStatsColumns") or ""
    return tuple(c for c in setting.split(",") if c)


def stats_setting(stats: tuple[str, ...]) -> dict[str, str | None] | None:  # a new table's: WriteJob.stats
    return {"delta.dataSkippingStatsColumns": ",".join(stats)} if stats else None


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
