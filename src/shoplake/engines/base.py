"""The engine seam: what the layers ask of a compute engine, and what each engine declares it can do.

Layers build SQL as sqlglot expressions in DuckDB's dialect and hand them over with table names; an
engine turns them into its own dialect, runs them, and reads and writes Delta tables. No engine type
(a DuckDB relation, a Spark DataFrame, an Arrow table) crosses this seam.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlglot import exp

from shoplake.contracts.formats import FileRead
from shoplake.errors import EngineError


@dataclass(frozen=True)
class Capabilities:
    """What an engine is, as data, so callers ask instead of guessing: its name (the `engine` setting's
    value) and the sqlglot dialect its SQL is rendered in.

    No flag is declared that nothing decides on (it would be a promise nobody checks): a capability is
    added together with the caller whose decision depends on it.
    """

    name: str
    dialect: str  # sqlglot dialect the engine speaks


# Columns of SCD2 silver tables (a version's number, the newest sequence value it accounts for, its
# period), and the prefix of the columns a staged merge source carries that are not data.
VERSION = "_version"
LAST_SEEN = "_last_seen"
VALID_FROM = "_valid_from"
VALID_TO = "_valid_to"
CURRENT_FLAG = "_is_current"
MERGE_KEY_PREFIX = "_mk_"
DELETE_FLAG = MERGE_KEY_PREFIX + "delete"  # scd2: the source row deletes the stored version it matches
# Commit metadata naming the batch that made a Delta commit (in the table's history on every engine).
BATCH_TAG = "shoplake.batch_id"
# The Delta application transaction every shoplake commit carries: its version is the lake lease's fence
# drawn for that commit, so a table remembers the highest fence that wrote it and a stalled process's late
# commit (a lower fence) is recognised and refused, never applied on top of a newer holder's work.
APP_ID = "shoplake"

# The longest CSV row either engine reads (DuckDB's default max_line_size); a longer one rejects its file.
MAX_ROW_BYTES = 2_000_000
ROW_TOO_LONG = (f"is too long (the reader's limit is {MAX_ROW_BYTES:,} bytes per row): check the export for a "
                "missing line break or an unclosed quote")

Fence = Callable[[], int]  # draws the next fence value, raising LeaseLost once the lease is gone


def quoted(name: str) -> str:
    """An identifier quoted for DuckDB, Spark SQL and delta-rs predicates alike."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class MergeSpec:
    """How rows of a staged table become rows of a silver table; the same for every engine.

    upsert: match on `keys`; a matched row is replaced only by a row at least as new by `sequence`.
    scd2: match on `keys` and `_valid_from` (a version); a source row flagged `DELETE_FLAG` deletes the
    version it matches, any other replaces it or is inserted as a new version.
    """

    mode: Literal["upsert", "scd2"]
    keys: tuple[str, ...]
    sequence: str | None = None


@dataclass(frozen=True)
class MergeClauses:
    """A MergeSpec as the clauses of a Delta MERGE (source `s`, target `t`), rendered for one dialect.

    Written once here, so both engines merge alike; `None` for a set or values means all columns. The
    clauses apply in this order: delete a matched row (when `delete_when` holds), update a matched row,
    insert an unmatched one.
    """

    on: str
    update_when: str | None
    update_set: dict[str, str] | None
    insert_when: str | None
    insert_values: dict[str, str] | None
    delete_when: str | None = None


def merge_clauses(spec: MergeSpec, columns: list[str], dialect: str) -> MergeClauses:
    def c(table: str, name: str) -> exp.Column:
        return exp.column(name, table=table, quoted=True)

    def sql(node: exp.Expr) -> str:
        return node.sql(dialect=dialect)

    if spec.mode == "upsert":
        on = exp.and_(*[exp.EQ(this=c("t", k), expression=c("s", k)) for k in spec.keys])
        newer = None
        if spec.sequence:
            # A row replaces the stored one unless it is older by the sequence column. A row without a
            # sequence value (stored or incoming) takes the time it was ingested instead, so a NULL
            # never wins by being NULL (silver.sequence_value orders a batch's versions the same way).
            def seq(table: str) -> exp.Expr:
                return exp.Coalesce(this=c(table, spec.sequence or ""), expressions=[c(table, "_ingested_at")])

            newer = sql(exp.GTE(this=seq("s"), expression=seq("t")))
        return MergeClauses(on=sql(on), update_when=newer, update_set=None, insert_when=None, insert_values=None)
    # SCD2 in one commit: a version is its key and _valid_from. Only changed versions are in the source,
    # so the files holding unchanged history are not rewritten.
    on = exp.and_(*[exp.EQ(this=c("t", k), expression=c("s", k)) for k in (*spec.keys, VALID_FROM)])

    def ident(name: str) -> exp.Identifier:
        return exp.Identifier(this=name, quoted=True)

    data = {sql(ident(name)): sql(c("s", name)) for name in columns}
    upsert = sql(exp.Not(this=c("s", DELETE_FLAG)))
    return MergeClauses(on=sql(on), update_when=upsert, update_set=data, insert_when=upsert,
                        insert_values=dict(data), delete_when=sql(c("s", DELETE_FLAG)))


@dataclass(frozen=True)
class WriteJob:
    """One staged table of this run to write to one Delta table."""

    table: str
    path: str
    mode: Literal["append", "overwrite", "merge"]
    merge: MergeSpec | None = None
    # overwrite only: replace just the rows matching this condition (DuckDB dialect) and keep the rest, in
    # one commit (Delta's predicate overwrite, replaceWhere); every staged row must match it.
    replace: exp.Expr | None = None
    partition_by: tuple[str, ...] = ()  # the partition columns of a table created or wholly overwritten
    # The columns whose min and max per file a new table keeps, for skipping files (merges find their
    # keys, a reprocess its files); empty: Delta's default, the first 32. Statistics on every text column
    # cost a quarter of a write's CPU and skip nothing.
    stats: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteResult:
    rows: int


@dataclass(frozen=True)
class Commit:
    """One entry of a Delta table's history: its version, when (UTC) and what made it, and the batch
    (BATCH_TAG) when a shoplake batch did."""

    version: int
    timestamp: datetime
    operation: str
    batch_id: str | None


@dataclass(frozen=True)
class Compaction:
    """What compacting a table did: files replaced by fewer, larger ones, and their bytes."""

    files_removed: int
    files_added: int
    bytes_removed: int
    bytes_added: int


@dataclass(frozen=True)
class Vacuumed:
    """The files vacuum deleted (or, in a dry run, would delete) and their bytes (None when the store
    cannot tell without reading every object)."""

    files: list[str]
    bytes: int | None


class VersionGone(EngineError):
    """A table version whose data files were deleted by vacuum: it cannot be read any more."""


def commit_from_log(info: Mapping[str, Any]) -> Commit:
    """A Delta log commitInfo (as delta-rs's history gives it) as a Commit: the batch tag is a top-level
    key when delta-rs wrote it (custom metadata), or inside userMetadata's JSON when delta-spark did."""
    batch = info.get(BATCH_TAG)
    if batch is None and isinstance(info.get("userMetadata"), str):
        try:
            batch = json.loads(info["userMetadata"]).get(BATCH_TAG)
        except (ValueError, AttributeError):
            batch = None
    stamp = datetime.fromtimestamp(int(info["timestamp"]) / 1000, UTC).replace(tzinfo=None)
    return Commit(version=int(info["version"]), timestamp=stamp, operation=str(info.get("operation", "")),
                  batch_id=None if batch is None else str(batch))


class Engine(Protocol):
    capabilities: Capabilities

    def load_csv(self, path: str, table: str, columns: list[str]) -> int:
        """Stage a CSV with a header row as a table of text columns named `columns` (by position, the
        header's own names are not used) plus `_row_number` (1 = first data row); returns its rows.
        EngineError if it cannot be parsed."""
        ...

    def load_file(self, path: str, table: str, columns: list[str], read: FileRead) -> int:
        """Stage a file of another format (NDJSON, JSON, Parquet, XLSX; gzip or zip) as `load_csv` does:
        text columns named `columns`, reading `read.fields` by position, plus `_row_number`."""
        ...

    # A query handed to define_view, create_table or fetch is the engine's: it may render it in place
    # (DuckDB does, to save a copy of every tree). A tree kept for later, such as a model's, is handed a copy.
    def define_view(self, view: str, query: exp.Query) -> None:
        """Name a query for the queries that follow (computed when read, not stored)."""
        ...

    def create_table(self, table: str, query: exp.Query) -> int:
        """Materialise a query as a temporary table of this run; returns its row count."""
        ...

    def fetch(self, query: exp.Query) -> list[tuple[Any, ...]]:
        """Run a query whose result is small and return its rows."""
        ...

    def drop(self, table: str) -> None: ...

    def columns(self, table: str) -> list[str]:
        """The column names of a staged table or view, in order."""
        ...

    def clear(self) -> None:
        """Drop everything staged so far (between batches)."""
        ...

    def create_view(self, schema: str, name: str, table: str) -> None:
        """Expose a staged table as `schema.name` for the queries that follow."""
        ...

    def attach_delta(self, path: str, schema: str, name: str, where: exp.Expr | None = None) -> bool:
        """Expose a Delta table as `schema.name` for queries; False when there is no table yet."""
        ...

    def write(self, jobs: list[WriteJob], *, tag: str | None = None,
              on_written: Callable[[WriteJob], None] | None = None) -> list[WriteResult]:
        """Write staged tables to Delta tables, each job one commit tagged with `tag` (the batch id);
        independent jobs may run at once, `on_written` is called after each commit.

        append and overwrite create a missing table and merge new columns in; merge creates a missing
        table from the staged rows. Every job is attempted; the first failure is raised after all end.
        """
        ...

    def table_columns(self, path: str) -> list[str]:
        """The Delta table's column names; empty when there is no table."""
        ...

    def table_version(self, path: str) -> int | None:
        """The Delta table's current version; None when there is no table."""
        ...

    def table_partitions(self, path: str) -> list[str]:
        """The Delta table's partition columns; empty when it has none or there is no table."""
        ...

    def restore(self, path: str, version: int | None, *, tag: str | None = None) -> None:
        """Bring a table back to `version` (None: to no rows, it did not exist) with a new commit."""
        ...

    def delete_rows(self, path: str, where: exp.Expr, *, tag: str | None = None) -> None:
        """Delete the rows matching a condition (DuckDB dialect) in one commit."""
        ...

    def set_fence(self, fence: Fence) -> None:
        """Every Delta commit from now on first draws a fence value and carries it as the `APP_ID`
        application transaction; a table already holding a higher value refuses with LeaseLost."""
        ...

    # -- history and upkeep (shoplake history, show --as-of, maintain) ---------------------------------
    def table_history(self, path: str) -> list[Commit]:
        """The table's commits, oldest first; empty when there is no table."""
        ...

    def attach_delta_version(self, path: str, schema: str, name: str, version: int) -> list[str]:
        """Expose the table as it was at `version` as `schema.name`; returns its columns then.
        VersionGone when vacuum deleted that version's files."""
        ...

    def compact(self, path: str, *, target_size: int | None = None, tag: str | None = None) -> Compaction:
        """Rewrite the table's small files into files of about `target_size` bytes (the engine's default
        when None) in one commit; the rows stay the same."""
        ...

    def vacuum(self, path: str, *, retention_hours: float, dry_run: bool, tag: str | None = None) -> Vacuumed:
        """Delete files no version younger than `retention_hours` needs (dry run: list them). A retention
        below the table's own minimum (delta.deletedFileRetentionDuration, a week by default) is applied
        as asked: the caller holds the lake, so no batch reads an older version meanwhile."""
        ...

    def close(self) -> None: ...
