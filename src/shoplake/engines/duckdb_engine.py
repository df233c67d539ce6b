"""The default engine: DuckDB computes, Arrow moves the data, delta-rs (`deltalake`) writes and merges."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import DeltaError
from sqlglot import exp

from shoplake.contracts.formats import FileRead
from shoplake.engines import delta_files, duckdb_io, formats
from shoplake.engines.base import (
    APP_ID,
    BATCH_TAG,
    MAX_ROW_BYTES,
    MERGE_KEY_PREFIX,
    ROW_TOO_LONG,
    Capabilities,
    Commit,
    Compaction,
    Fence,
    MergeSpec,
    Vacuumed,
    VersionGone,
    WriteJob,
    WriteResult,
    commit_from_log,
    merge_clauses,
    quoted,
)
from shoplake.engines.duckdb_io import StagedRows, check_fence, log_features, open_table, short_error, staged_columns
from shoplake.errors import EngineError, LeaseLost
from shoplake.faults import crash_point

CAPABILITIES = Capabilities(
    name="duckdb",
    dialect="duckdb",
)

_SNAPSHOTS = "_delta_snapshots"  # DuckDB schema of the delta-rs reads of such tables


class DuckDBEngine:
    capabilities = CAPABILITIES

    def __init__(self, *, temp_dir: Path, memory_limit: str = "1GB", threads: int | None = None) -> None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "memory_limit": memory_limit,
            "temp_directory": str(temp_dir),
            "preserve_insertion_order": True,  # row numbers are taken in file order
        }
        if threads:
            config["threads"] = threads
        try:
            self._con = duckdb.connect(":memory:", config=config)
        except duckdb.Error as error:
            raise EngineError(f"cannot start DuckDB: {short_error(error)}",
                              hint="check memory_limit and threads in shoplake.yml") from None
        self._run("SET enable_progress_bar = false")  # progress is the caller's to show
        self._schemas: set[str] = set()  # created once per connection: nothing drops a schema
        self._tables = duckdb_io.LatestTables()
        # Timestamps are UTC throughout; current_timestamp and casts must not depend on the host's zone.
        self._run("SET TimeZone = 'UTC'")
        self._registered = itertools.count()
        self._threads = threads
        self._fence: Fence | None = None
        self._drawn: dict[str, int] = {}  # table -> the fence of this process's latest commit to it

    # -- reading -----------------------------------------------------------------------------------
    def load_csv(self, path: str, table: str, columns: list[str]) -> int:
        spec = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(columns))) + "}"
        select = ", ".join(f"c{i} AS {_ident(name)}" for i, name in enumerate(columns))
        data = _ident(table + "__rows")
        # A row must be shorter than DuckDB's default max_line_size; the Spark engine enforces the same.
        max_line, too_long = MAX_ROW_BYTES, ROW_TOO_LONG
        duckdb_io.check_last_line(Path(path), max_line)
        # strict_mode rejects a row with more fields than the header (nothing is silently cut off);
        # null_padding reads a short row, such as a truncated last line, with its missing fields NULL.
        # The parallel reader keeps file order (preserve_insertion_order), so a row's rowid is its
        # position in the file: cheaper than row_number(), which would read the file on one thread.
        # It cannot pad rows in files with quoted line breaks, nor read past a row longer than its buffer;
        # those files are read on one thread, which also names the line at fault.
        for parallel in ("true", "false"):
            try:
                self._con.execute(
                    f"CREATE OR REPLACE TABLE {data} AS SELECT {select} "
                    f"FROM read_csv({duckdb_io.literal(path)}, columns={spec}, header=true, auto_detect=false, "
                    f"delim=',', quote='\"', escape='\"', null_padding=true, strict_mode=true, encoding='utf-8', "
                    f"max_line_size={max_line}, parallel={parallel})"
                ).fetchall()
                break
            except duckdb.Error as error:
                text = str(error)
                not_in_parallel = "quoted new lines" in text or isinstance(error, duckdb.NotImplementedException)
                if parallel == "true" and not_in_parallel:
                    continue
                if "Maximum line size" in text:  # DuckDB quotes the whole line: keep the message to one line
                    line = text.partition("Line: ")[2].split("\n", 1)[0].strip()
                    raise EngineError(f"line {line} {too_long}" if line.isdigit() else f"a row {too_long}") from None
                raise EngineError(short_error(error)) from None
        self._run(f"CREATE OR REPLACE VIEW {_ident(table)} AS SELECT *, rowid + 1 AS _row_number FROM {data}")
        return self._scalar(f"SELECT count(*) FROM {data}")

    def load_file(self, path: str, table: str, columns: list[str], read: FileRead) -> int:
        return formats.stage_duckdb(self._con, path, table, columns, read)

    def define_view(self, view: str, query: exp.Query) -> None:
        self._run(f"CREATE OR REPLACE VIEW {_ident(view)} AS {self._sql(query)}")

    def clear(self) -> None:
        staged = self._con.execute(
            "SELECT 'VIEW', view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal "
            "UNION ALL SELECT 'TABLE', table_name FROM duckdb_tables() WHERE schema_name = 'main'"
        ).fetchall()
        for kind, name in sorted(staged, key=lambda s: s[0] != "VIEW"):  # views first: they read tables
            self._run(f"DROP {kind} IF EXISTS {_ident(name)}")

    # -- computing ---------------------------------------------------------------------------------
    def create_table(self, table: str, query: exp.Query) -> int:
        # CREATE TABLE AS answers with the number of rows it stored: no count(*) afterwards.
        return self._run(f"CREATE OR REPLACE TABLE {_ident(table)} AS {self._sql(query)}")

    def fetch(self, query: exp.Query) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(self._sql(query)).fetchall()
        except duckdb.Error as error:
            raise EngineError(short_error(error), hint=f"the query was: {self._sql(query)[:1500]}") from None

    def columns(self, table: str) -> list[str]:
        return staged_columns(self._con, table)

    def drop(self, table: str) -> None:
        # A staged file is a view over its rows' table (`load_csv`, `formats.stage_duckdb`): both go, the
        # view first. Dropped by trying each kind: a catalog query per name cost ten times as much.
        for name in (table, table + "__rows"):
            for kind in ("VIEW", "TABLE"):
                try:
                    self._con.execute(f"DROP {kind} IF EXISTS {_ident(name)}").fetchall()
                except duckdb.CatalogException:  # the name is the other kind
                    continue

    def create_view(self, schema: str, name: str, table: str) -> None:
        self._schema(schema)
        self._run(f"CREATE OR REPLACE VIEW {_ident(schema)}.{_ident(name)} AS SELECT * FROM {_ident(table)}")

    # -- Delta tables ------------------------------------------------------------------------------
    def attach_delta(self, path: str, schema: str, name: str, where: exp.Expr | None = None) -> bool:
        """Expose the table's current snapshot as the view schema.name, as the Delta log defines it.

        A plain table (shoplake's own) is read by DuckDB's Parquet reader over the snapshot's files. A
        table whose rows are not simply its files' rows (deletion vectors, column mapping: a lake
        continued by delta-spark or Databricks) is read through delta-rs, which applies them; the
        snapshot is copied into DuckDB once per version, since its stream can be read only once.
        """
        table = self._tables.open(path)
        self._schema(schema)
        view = f"{_ident(schema)}.{_ident(name)}"
        if table is None:
            self._run(f"DROP VIEW IF EXISTS {view}")
            return False
        condition = f" WHERE {where.sql(dialect='duckdb')}" if where is not None else ""
        if features := log_features(table):
            source = self._snapshot_copy(path, table, features)
            self._run(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}{condition}")
            return True
        # DuckDB's own Parquet reader on the snapshot's files: parallel, with projection and filter
        # pushdown, and union_by_name for files written before a column was added.
        files = table.file_uris()
        if "://" in path:
            # Object storage: DuckDB's own S3 reader is an extension it would download; Arrow's dataset
            # reader (filters and projections pushed down) reads the files through delta-rs's settings.
            dataset = f"_delta_{next(self._registered)}"
            self._con.register(dataset, table.to_pyarrow_dataset())
            source = _ident(dataset)
        elif files:
            listing = "[" + ", ".join(duckdb_io.literal(f) for f in files) + "]"
            source = f"read_parquet({listing}, union_by_name=true)"
        else:
            empty = f"_delta_{next(self._registered)}"
            self._con.register(empty, pa.schema(table.schema().to_arrow()).empty_table())
            source = _ident(empty)
        self._run(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {source}{condition}")
        return True

    def _snapshot_copy(self, path: str, table: DeltaTable, features: list[str]) -> str:
        """The table's snapshot read by delta-rs into a DuckDB table (reused while the version stands);
        a table delta-rs cannot read is refused, never read file by file."""
        key = "t_" + hashlib.sha256(path.encode()).hexdigest()[:16]
        copy = f"{key}_v{table.version()}"
        self._schema(_SNAPSHOTS)
        copies = [r[0] for r in self._con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? AND starts_with(table_name, ?)",
            [_SNAPSHOTS, key + "_v"]).fetchall()]
        target = f"{_ident(_SNAPSHOTS)}.{_ident(copy)}"
        if copy not in copies:
            try:
                stream = pa.RecordBatchReader.from_stream(table.scan())
            except Exception as error:  # a reader feature this deltalake does not know
                raise EngineError(
                    f"cannot read the Delta table {path}: it uses {', '.join(features)}, and deltalake "
                    f"refuses it ({short_error(error)})",
                    hint="upgrade deltalake, or read this lake with the Spark engine (--engine spark)") from None
            staged = f"_delta_{next(self._registered)}"
            self._con.register(staged, stream)
            try:
                self._run(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {_ident(staged)}")
            finally:
                self._con.unregister(staged)
        for old in copies:  # earlier versions of this table: nothing reads them once re-attached
            if old != copy:
                self._run(f"DROP TABLE IF EXISTS {_ident(_SNAPSHOTS)}.{_ident(old)}")
        return target

    def write(self, jobs: list[WriteJob], *, tag: str | None = None,
              on_written: Callable[[WriteJob], None] | None = None) -> list[WriteResult]:
        # delta-rs encodes Parquet largely on one thread, so two writes at once use both cores (about
        # 30 % less wall time for a batch). Each job reads its table through its own cursor.
        def one(con: duckdb.DuckDBPyConnection, job: WriteJob) -> WriteResult:
            result = self._write_one(con, job, tag)
            if on_written:
                on_written(job)
            return result

        if len(jobs) <= 1 or self._threads == 1:
            return [one(self._con, job) for job in jobs]
        with ThreadPoolExecutor(max_workers=self._threads or 2) as pool:
            futures = [pool.submit(one, self._con.cursor(), job) for job in jobs]
            wait(futures)
        return [f.result() for f in futures]

    def table_columns(self, path: str) -> list[str]:
        table = self._tables.open(path)
        return [] if table is None else [f.name for f in table.schema().fields]

    def table_version(self, path: str) -> int | None:
        table = self._tables.open(path)
        return None if table is None else int(table.version())

    def table_partitions(self, path: str) -> list[str]:
        table = self._tables.open(path)
        return [] if table is None else list(table.metadata().partition_columns)

    def set_fence(self, fence: Fence) -> None:
        self._fence = fence

    # -- history and upkeep ------------------------------------------------------------------------
    def table_history(self, path: str) -> list[Commit]:
        table = open_table(path)
        if table is None:
            return []
        return sorted((commit_from_log(info) for info in table.history()), key=lambda c: c.version)

    def attach_delta_version(self, path: str, schema: str, name: str, version: int) -> list[str]:
        """The table at an older version, read like attach_delta reads the current one: its files by
        DuckDB's Parquet reader when local and plain, else through delta-rs's Arrow dataset."""
        table = open_table(path)
        if table is None:
            raise EngineError(f"there is no Delta table at {path}")
        try:
            table.load_as_version(version)
        except DeltaError as error:
            raise EngineError(f"{path} has no readable version {version}: {short_error(error)}") from None
        files = table.file_uris()
        if "://" not in path:
            missing = [f for f in files if not Path(f).exists()]
            if missing:
                raise VersionGone(f"version {version} of {path} cannot be read: vacuum deleted {len(missing)} of "
                                  f"its {len(files)} data file(s)",
                                  hint="a vacuumed version is gone for good; maintenance.vacuum_retention_hours "
                                  "sets how long old versions stay readable")
        self._schema(schema)
        if files and "://" not in path and not log_features(table):
            listing = "[" + ", ".join(duckdb_io.literal(f) for f in files) + "]"
            source = f"read_parquet({listing}, union_by_name=true)"
        else:
            dataset = f"_delta_{next(self._registered)}"
            self._con.register(dataset, table.to_pyarrow_dataset() if files
                               else pa.schema(table.schema().to_arrow()).empty_table())
            source = _ident(dataset)
        self._run(f"CREATE OR REPLACE VIEW {_ident(schema)}.{_ident(name)} AS SELECT * FROM {source}")
        return [f.name for f in table.schema().fields]

    def compact(self, path: str, *, target_size: int | None = None, tag: str | None = None) -> Compaction:
        table = open_table(path)
        if table is None:
            return Compaction(0, 0, 0, 0)
        # The fence is drawn and checked on this snapshot; delta-rs's OPTIMIZE commit does not record
        # application transactions, so the table keeps the fence of its last write (a later holder's
        # check is unaffected, and OPTIMIZE's own conflict check refuses a commit made in between).
        commit = self._commit(table, tag, path)
        try:
            metrics = table.optimize.compact(target_size=target_size, commit_properties=commit,
                                             writer_properties=duckdb_io.writer(duckdb_io.table_stats(table)))
        except Exception as error:
            self._refuse_if_fenced_out(path)
            raise EngineError(f"compacting {path} failed: {short_error(error)}") from error
        return Compaction(files_removed=int(metrics["numFilesRemoved"]), files_added=int(metrics["numFilesAdded"]),
                          bytes_removed=int(json.loads(metrics["filesRemoved"])["totalSize"]),
                          bytes_added=int(json.loads(metrics["filesAdded"])["totalSize"]))

    def vacuum(self, path: str, *, retention_hours: float, dry_run: bool, tag: str | None = None) -> Vacuumed:
        table = open_table(path)
        if table is None:
            return Vacuumed([], 0)
        hours = int(retention_hours)  # delta-rs takes whole hours
        try:
            # The caller's retention is the one that counts (see Engine.vacuum), not the table's minimum.
            doomed = sorted(table.vacuum(retention_hours=hours, dry_run=True, enforce_retention_duration=False))
            size = None if "://" in path else sum(
                (Path(path) / f).stat().st_size for f in doomed if (Path(path) / f).exists())
            if doomed and not dry_run:
                commit = self._commit(table, tag, path)
                table.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False,
                             commit_properties=commit)
        except (EngineError, LeaseLost):
            raise
        except Exception as error:
            self._refuse_if_fenced_out(path)
            raise EngineError(f"vacuuming {path} failed: {short_error(error)}") from error
        return Vacuumed(files=doomed, bytes=size)

    def _commit(self, table: DeltaTable | None, tag: str | None, path: str) -> CommitProperties | None:
        """The properties of one commit to `table` (None: a new table): the batch tag, and the fence as
        the application transaction. The commit must be made on this same snapshot of the table, so that
        delta-rs refuses it if another holder committed in between."""
        if self._fence is None:
            return CommitProperties(custom_metadata={BATCH_TAG: tag}) if tag else None
        fence = self._fence()
        self._drawn[path] = fence
        if table is not None:
            check_fence(table, fence)
        crash_point("fenced")
        return CommitProperties(custom_metadata={BATCH_TAG: tag} if tag else None,
                                app_transactions=[Transaction(APP_ID, fence)])

    def _refuse_if_fenced_out(self, path: str) -> None:
        """A failed commit lost a race against a later holder of the lake: say so, not a write error."""
        table = open_table(path)
        if table is not None and path in self._drawn:
            check_fence(table, self._drawn[path])

    def restore(self, path: str, version: int | None, *, tag: str | None = None) -> None:
        table = self._tables.open(path)
        if table is None or (version is not None and table.version() == version):
            return
        commit = self._commit(table, tag, path)
        try:
            if version is None:
                table.delete(commit_properties=commit)  # created by the batch: empty it again
            else:
                table.restore(version, commit_properties=commit)
        except Exception as error:
            self._refuse_if_fenced_out(path)
            raise EngineError(f"restoring {path} to version {version} failed: {error}") from error

    def delete_rows(self, path: str, where: exp.Expr, *, tag: str | None = None) -> None:
        table = self._tables.open(path)
        if table is None:
            return
        commit = self._commit(table, tag, path)
        try:
            table.delete(where.sql(dialect="duckdb"), commit_properties=commit)
        except Exception:
            self._refuse_if_fenced_out(path)
            raise

    def _write_one(self, con: duckdb.DuckDBPyConnection, job: WriteJob, tag: str | None) -> WriteResult:
        try:
            if job.mode == "merge":
                assert job.merge is not None, "a merge job needs its MergeSpec"
                return self._merge(con, job.table, job.path, job.merge, tag, stats=job.stats)
            return self._write(con, job.table, job.path, job.mode, tag=tag, replace=job.replace,
                               partition_by=job.partition_by, stats=job.stats)
        except (EngineError, LeaseLost):
            raise
        except Exception as error:  # delta-rs and Arrow errors, named with the table they hit
            self._refuse_if_fenced_out(job.path)
            raise EngineError(f"writing {job.path} ({job.mode}) failed: {error}") from error
        finally:
            if con is not self._con:
                con.close()

    def _write(self, con: duckdb.DuckDBPyConnection, table: str, path: str, mode: str,
               rows: StagedRows | None = None, tag: str | None = None, replace: exp.Expr | None = None,
               partition_by: tuple[str, ...] = (), stats: tuple[str, ...] = ()) -> WriteResult:
        rows = rows or StagedRows(con, table)
        existing = self._tables.open(path)
        if rows.empty and existing is not None and mode == "append":
            rows.close()
            return WriteResult(rows=0)
        try:
            commit = self._commit(existing, tag, path)
            source = rows.reader()
            if "://" not in path and delta_files.plan(source.schema, existing, mode, partition_by, replace):
                # Local: pyarrow writes the files and delta-rs commits them (flat memory, see delta_files).
                delta_files.write(path, source, existing, mode, partition_by=partition_by,
                                  stats=stats or (duckdb_io.table_stats(existing) if existing is not None else ()),
                                  replace=None if replace is None else replace.sql(dialect="duckdb"),
                                  commit=commit, configuration=duckdb_io.stats_setting(stats))
            elif existing is None:
                # A new table: "error" if one appeared meanwhile (another holder's), never append to it.
                write_deltalake(path, source, mode="error", commit_properties=commit,
                                writer_properties=duckdb_io.writer(stats), partition_by=list(partition_by) or None,
                                configuration=duckdb_io.stats_setting(stats))
            elif replace is not None and mode == "overwrite":
                # The rows of `replace` only, in the table's own layout; delta-rs checks that every new row
                # matches it. No rows: the matching rows are removed.
                write_deltalake(existing, source, mode="overwrite", predicate=replace.sql(dialect="duckdb"),
                                commit_properties=commit, writer_properties=duckdb_io.writer(stats))
            else:
                write_deltalake(
                    existing,  # the snapshot the fence was checked on
                    source,
                    mode="append" if mode == "append" else "overwrite",
                    schema_mode="merge" if mode == "append" else "overwrite",
                    partition_by=list(partition_by) or None if mode == "overwrite" else None,
                    commit_properties=commit,
                    writer_properties=duckdb_io.writer(stats),
                )
        finally:
            rows.close()  # a failed write must not leave the connection with an open result
        return WriteResult(rows=rows.count)

    def _merge(self, con: duckdb.DuckDBPyConnection, table: str, path: str, spec: MergeSpec,
               tag: str | None = None, stats: tuple[str, ...] = ()) -> WriteResult:
        target = self._tables.open(path)
        if target is None:
            # The first load of a table: nothing to match, so the merge is a plain write.
            return self._write(con, table, path, "overwrite", tag=tag, stats=stats)
        columns = [c for c in staged_columns(con, table) if not c.startswith(MERGE_KEY_PREFIX)]
        rows = StagedRows(con, table, merge_keys=True)
        if rows.empty:
            rows.close()
            return WriteResult(rows=0)
        clauses = merge_clauses(spec, columns, "duckdb")  # delta-rs reads DuckDB-style identifiers
        try:
            commit = self._commit(target, tag, path)
        except BaseException:
            rows.close()
            raise
        merger = target.merge(rows.reader(), clauses.on, "s", "t", merge_schema=True, commit_properties=commit,
                              writer_properties=duckdb_io.writer(stats))
        if clauses.delete_when is not None:
            merger = merger.when_matched_delete(predicate=clauses.delete_when)
        if clauses.update_set is None:
            merger = merger.when_matched_update_all(predicate=clauses.update_when)
        else:
            merger = merger.when_matched_update(clauses.update_set, predicate=clauses.update_when)
        if clauses.insert_values is None:
            merger = merger.when_not_matched_insert_all(predicate=clauses.insert_when)
        else:
            merger = merger.when_not_matched_insert(clauses.insert_values, predicate=clauses.insert_when)
        try:
            merger.execute()
        finally:
            rows.close()
        return WriteResult(rows=rows.count)

    def close(self) -> None:
        self._con.close()

    # -- helpers -----------------------------------------------------------------------------------
    def _sql(self, query: exp.Expr) -> str:
        # Rendered in place: every query handed to the engine is built for this one statement (the
        # generator's defensive copy of each tree was a fifth of a small batch's time).
        return query.sql(dialect="duckdb", copy=False)

    def _schema(self, schema: str) -> None:
        if schema not in self._schemas:
            self._run(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
            self._schemas.add(schema)

    def _run(self, sql: str) -> int:
        """The statement run; the number of rows a CREATE TABLE AS or INSERT stored, else 0."""
        try:
            rows = self._con.execute(sql).fetchall()
        except duckdb.Error as error:
            raise EngineError(short_error(error), hint=f"the statement was: {sql[:1500]}") from None
        return int(rows[0][0]) if rows and sql.startswith(("CREATE OR REPLACE TABLE", "INSERT")) else 0

    def _scalar(self, sql: str, what: str = "query") -> int:
        return _scalar(self._con, sql, what)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, what: str = "query") -> int:
    try:
        rows = con.execute(sql).fetchall()
    except duckdb.Error as error:
        raise EngineError(f"{what} failed: {short_error(error)}") from None
    return int(rows[0][0]) if rows else 0


def _ident(name: str) -> str:
    return quoted(name)
