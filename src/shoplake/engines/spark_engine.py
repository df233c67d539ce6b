"""The Spark engine: the same staged tables, queries and merges on PySpark with Delta Lake.

Queries arrive as sqlglot expressions in DuckDB's dialect and are rendered for Spark; `schema.name`
tables become temporary views named `schema__name` (Spark has no schemas for temporary views).
One Spark session per process, shared by every engine opened in it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from sqlglot import exp

from shoplake.engines import spark_csv, spark_formats, spark_storage
from shoplake.engines.base import (
    APP_ID,
    BATCH_TAG,
    MERGE_KEY_PREFIX,
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
)
from shoplake.engines.spark_ctes import split_shared_ctes
from shoplake.engines.spark_session import short_error, spark_session
from shoplake.errors import EngineError, LeaseLost
from shoplake.faults import crash_point

CAPABILITIES = Capabilities(
    name="spark",
    dialect="spark",
)

T = TypeVar("T")


class SparkEngine:
    capabilities = CAPABILITIES

    def __init__(self, *, master: str | None = None, conf: Mapping[str, str] | None = None) -> None:
        self._spark = spark_session(master, tuple(sorted((conf or {}).items())))
        self._persisted: dict[str, DataFrame] = {}
        self._rows: dict[str, int] = {}  # the rows of each staged table, counted when it was computed
        self._ctes: list[str] = []  # CTEs kept for the table being computed (see `_shared_ctes`)
        self._fence: Fence | None = None

    # -- reading -----------------------------------------------------------------------------------
    load_csv = spark_csv.stage  # staged, counted and checked in one Spark job (spark_csv.py)
    load_file = spark_formats.stage  # the formats beyond CSV, read as load_csv reads a CSV (spark_formats.py)

    def counted(self, table: str, rows: int) -> None:
        """Remember a staged table's rows: a write of it needs no Spark job to count them again."""
        self._rows[table] = rows

    # -- computing ---------------------------------------------------------------------------------
    def create_table(self, table: str, query: exp.Query) -> int:
        with self._shared_ctes():
            # One job computes, keeps and counts the rows (an eager checkpoint and then a count were two).
            frame = self._persist(table, self._frame(query))
            rows = int(_guard(frame.count, query))
        self.counted(table, rows)
        frame.createOrReplaceTempView(table)
        return rows

    def define_view(self, view: str, query: exp.Query) -> None:
        # Cached on first use: Spark re-plans a view at every read, and a write reads it twice.
        self._persist(view, self._frame(query)).createOrReplaceTempView(view)

    def create_view(self, schema: str, name: str, table: str) -> None:
        if f"{schema}__{name}" != table:
            self._spark.table(table).createOrReplaceTempView(f"{schema}__{name}")
            self._rows.pop(f"{schema}__{name}", None)

    def fetch(self, query: exp.Query) -> list[tuple[Any, ...]]:
        with self._shared_ctes():
            return [tuple(row) for row in _guard(self._frame(query).collect, query)]

    def columns(self, table: str) -> list[str]:
        return list(self._spark.table(table).columns)

    def drop(self, table: str) -> None:
        self._spark.catalog.dropTempView(table)
        self._rows.pop(table, None)
        frame = self._persisted.pop(table, None)
        if frame is not None:
            frame.unpersist()

    def clear(self) -> None:
        for view in self._spark.catalog.listTables():
            if view.isTemporary:
                self._spark.catalog.dropTempView(view.name)
        for frame in self._persisted.values():
            frame.unpersist()
        self._persisted.clear()
        self._rows.clear()
        self._ctes.clear()

    # -- Delta tables ------------------------------------------------------------------------------
    def attach_delta(self, path: str, schema: str, name: str, where: exp.Expr | None = None) -> bool:
        from delta.tables import DeltaTable

        view = f"{schema}__{name}"
        if not DeltaTable.isDeltaTable(self._spark, path):
            self._spark.catalog.dropTempView(view)
            return False
        frame = self._spark.read.format("delta").load(path)
        if where is not None:
            frame = frame.where(where.sql(dialect="spark"))
        frame.createOrReplaceTempView(view)
        self._rows.pop(view, None)
        return True

    def write(self, jobs: list[WriteJob], *, tag: str | None = None,
              on_written: Callable[[WriteJob], None] | None = None) -> list[WriteResult]:
        # Spark parallelises each write itself; jobs run one after the other.
        results = []
        for job in jobs:
            with self._tagged(tag, job.path) as fence:
                try:
                    results.append(self._write_one(job, fence))
                except (EngineError, LeaseLost):
                    raise
                except Exception as error:
                    raise EngineError(f"writing {job.path} ({job.mode}) failed: {short_error(error)}") from error
                if on_written:
                    on_written(job)
        return results

    def table_columns(self, path: str) -> list[str]:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self._spark, path):
            return []
        return list(self._spark.read.format("delta").load(path).columns)

    def table_partitions(self, path: str) -> list[str]:
        from delta.tables import DeltaTable

        if spark_storage.by_delta_rs(self._spark, path):  # read from the log by delta-rs, without a Spark job
            import deltalake
            from deltalake.exceptions import TableNotFoundError

            try:
                return list(deltalake.DeltaTable(path).metadata().partition_columns)
            except TableNotFoundError:
                return []
        if not DeltaTable.isDeltaTable(self._spark, path):
            return []
        return list(DeltaTable.forPath(self._spark, path).detail().collect()[0]["partitionColumns"])

    def table_version(self, path: str) -> int | None:
        from delta.tables import DeltaTable

        if spark_storage.by_delta_rs(self._spark, path):
            # A table's version is in its _delta_log: delta-rs reads it without a Spark job.
            import deltalake
            from deltalake.exceptions import TableNotFoundError

            try:
                return int(deltalake.DeltaTable(path).version())
            except TableNotFoundError:
                return None
        if not DeltaTable.isDeltaTable(self._spark, path):
            return None
        return int(DeltaTable.forPath(self._spark, path).history(1).collect()[0]["version"])

    def restore(self, path: str, version: int | None, *, tag: str | None = None) -> None:
        from delta.tables import DeltaTable

        current = self.table_version(path)
        if current is None or current == version:
            return
        with self._tagged(tag, path):
            try:
                table = DeltaTable.forPath(self._spark, path)
                if version is None:
                    table.delete()  # created by the batch: empty it again
                else:
                    table.restoreToVersion(version)
            except Exception as error:
                raise EngineError(f"restoring {path} to version {version} failed: {short_error(error)}") from error

    def delete_rows(self, path: str, where: exp.Expr, *, tag: str | None = None) -> None:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self._spark, path):
            return
        with self._tagged(tag, path):
            DeltaTable.forPath(self._spark, path).delete(where.sql(dialect="spark"))

    def set_fence(self, fence: Fence) -> None:
        self._fence = fence

    # -- history and upkeep ------------------------------------------------------------------------
    def table_history(self, path: str) -> list[Commit]:
        from delta.tables import DeltaTable

        if spark_storage.by_delta_rs(self._spark, path):
            # A table's log read by delta-rs: every commit's metadata, also a delta-rs writer's batch
            # tag, which delta-spark's history() does not show (it shows only userMetadata).
            import deltalake
            from deltalake.exceptions import TableNotFoundError

            try:
                log = deltalake.DeltaTable(path).history()
            except TableNotFoundError:
                return []
            return sorted((commit_from_log(info) for info in log), key=lambda c: c.version)
        if not DeltaTable.isDeltaTable(self._spark, path):
            return []
        commits = []
        for row in DeltaTable.forPath(self._spark, path).history().select(
                "version", "timestamp", "operation", "userMetadata").collect():
            batch = None
            if row["userMetadata"]:
                try:
                    batch = json.loads(row["userMetadata"]).get(BATCH_TAG)
                except (ValueError, AttributeError):
                    batch = None
            commits.append(Commit(version=int(row["version"]), timestamp=row["timestamp"],
                                  operation=str(row["operation"]), batch_id=batch))
        return sorted(commits, key=lambda c: c.version)

    def attach_delta_version(self, path: str, schema: str, name: str, version: int) -> list[str]:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self._spark, path):
            raise EngineError(f"there is no Delta table at {path}")
        if "://" not in path or path.startswith("file:"):
            # Spark finds missing files only when it reads them; delta-rs lists the version's files at once.
            import deltalake

            files = deltalake.DeltaTable(path, version=version).file_uris()
            missing = [f for f in files if not os.path.exists(f.removeprefix("file://"))]
            if missing:
                raise VersionGone(f"version {version} of {path} cannot be read: vacuum deleted {len(missing)} of "
                                  f"its {len(files)} data file(s)",
                                  hint="a vacuumed version is gone for good; maintenance.vacuum_retention_hours "
                                  "sets how long old versions stay readable")
        try:
            frame = self._spark.read.format("delta").option("versionAsOf", version).load(path)
        except Exception as error:
            raise EngineError(f"{path} has no readable version {version}: {short_error(error)}") from None
        frame.createOrReplaceTempView(f"{schema}__{name}")
        self._rows.pop(f"{schema}__{name}", None)
        return list(frame.columns)

    def compact(self, path: str, *, target_size: int | None = None, tag: str | None = None) -> Compaction:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self._spark, path):
            return Compaction(0, 0, 0, 0)
        size_key = "spark.databricks.delta.optimize.maxFileSize"
        with self._tagged(tag, path):
            if target_size is not None:
                self._spark.conf.set(size_key, str(target_size))
            try:
                rows = DeltaTable.forPath(self._spark, path).optimize().executeCompaction().collect()
            except Exception as error:
                raise EngineError(f"compacting {path} failed: {short_error(error)}") from error
            finally:
                if target_size is not None:
                    self._spark.conf.unset(size_key)
        metrics = rows[0]["metrics"] if rows else None
        if metrics is None:
            return Compaction(0, 0, 0, 0)
        return Compaction(files_removed=int(metrics["numFilesRemoved"]), files_added=int(metrics["numFilesAdded"]),
                          bytes_removed=int(metrics["filesRemoved"]["totalSize"] or 0),
                          bytes_added=int(metrics["filesAdded"]["totalSize"] or 0))

    def vacuum(self, path: str, *, retention_hours: float, dry_run: bool, tag: str | None = None) -> Vacuumed:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self._spark, path):
            return Vacuumed([], 0)
        check = "spark.databricks.delta.retentionDurationCheck.enabled"
        listing = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
        # The caller's retention is the one that counts (see Engine.vacuum), not the table's minimum.
        self._spark.conf.set(check, "false")
        # Vacuum lists the table's files in this many tasks (default 10,000: minutes of task overhead for
        # a small table); the session's parallelism is enough.
        self._spark.conf.set(listing, self._spark.conf.get("spark.default.parallelism", "4") or "4")
        try:
            target = "delta.`" + path.replace("`", "``") + "`"
            listed = self._spark.sql(f"VACUUM {target} RETAIN {float(retention_hours)} HOURS DRY RUN").collect()
            doomed = sorted(str(row[0]) for row in listed)
            local = [d.removeprefix("file:").removeprefix("//") for d in doomed]
            size = sum(os.path.getsize(f) for f in local if os.path.exists(f)) if all(
                "://" not in d or d.startswith("file:") for d in doomed) else None
            if doomed and not dry_run:
                with self._tagged(tag, path):
                    DeltaTable.forPath(self._spark, path).vacuum(float(retention_hours))
        except (EngineError, LeaseLost):
            raise
        except Exception as error:
            raise EngineError(f"vacuuming {path} failed: {short_error(error)}") from error
        finally:
            self._spark.conf.unset(check)
            self._spark.conf.unset(listing)
        return Vacuumed(files=doomed, bytes=size)

    @contextmanager
    def _tagged(self, tag: str | None, path: str) -> Iterator[int | None]:
        """The one commit made inside, to `path`, carries the batch id as its user metadata and the
        lease's fence as its application transaction (Delta's idempotent-write settings, which also
        cover MERGE and DELETE): a table that a later holder wrote refuses it."""
        settings = {}
        if tag is not None:
            settings["spark.databricks.delta.commitInfo.userMetadata"] = json.dumps({BATCH_TAG: tag})
        fence = None
        if self._fence is not None:
            fence = self._fence()
            latest = self._fence_of(path)
            if latest is not None and latest > fence:
                raise LeaseLost(f"{path} was written by a later holder of the lake (its fence {latest} is "
                                f"above this process's {fence})")
            crash_point("fenced")
            settings["spark.databricks.delta.write.txnAppId"] = APP_ID
            settings["spark.databricks.delta.write.txnVersion"] = str(fence)
        for key, value in settings.items():
            self._spark.conf.set(key, value)
        try:
            yield fence
        finally:
            for key in settings:
                self._spark.conf.unset(key)

    def _fence_of(self, path: str) -> int | None:
        """The highest fence that wrote a table (None: none, or no table). The log is read by delta-rs
        without a Spark job where it can (spark_storage.by_delta_rs); elsewhere Delta itself skips a commit
        whose fence is not above the table's."""
        if not spark_storage.by_delta_rs(self._spark, path):
            return None
        import deltalake
        from deltalake.exceptions import TableNotFoundError

        try:
            latest = deltalake.DeltaTable(path).transaction_version(APP_ID)
        except TableNotFoundError:
            return None
        return None if latest is None else int(latest)

    def _write_one(self, job: WriteJob, fence: int | None = None) -> WriteResult:
        from delta.tables import DeltaTable

        frame = self._spark.table(job.table)
        data = frame.select(*[c for c in frame.columns if not c.startswith(MERGE_KEY_PREFIX)])
        exists = DeltaTable.isDeltaTable(self._spark, job.path)
        if job.mode == "merge" and exists:
            assert job.merge is not None, "a merge job needs its MergeSpec"
            return self._merge(frame, job.path, job.merge, self._count(job.table, frame))
        rows = self._count(job.table, data)
        if rows == 0 and exists and job.mode == "append":
            return WriteResult(rows=0)
        writer = data.write.format("delta")
        if fence is not None:
            writer = writer.option("txnAppId", APP_ID).option("txnVersion", str(fence))
        if job.mode == "append":
            writer = writer.mode("append").option("mergeSchema", "true")
        elif job.replace is not None and exists:
            # The rows of `replace` only, in the table's own layout; Delta checks every new row matches it.
            writer = writer.mode("overwrite").option("replaceWhere", job.replace.sql(dialect="spark"))
        else:  # overwrite, or the first load of a merged table
            writer = writer.mode("overwrite").option("overwriteSchema", "true")
            if job.partition_by:
                writer = writer.partitionBy(*job.partition_by)
        if job.stats and not exists:  # a new table's property, as the DuckDB engine sets it
            writer = writer.option("delta.dataSkippingStatsColumns", ",".join(job.stats))
        writer.save(job.path)
        return WriteResult(rows=rows)

    def _merge(self, frame: DataFrame, path: str, spec: MergeSpec, rows: int) -> WriteResult:
        from delta.tables import DeltaTable

        target = DeltaTable.forPath(self._spark, path)
        if rows == 0:
            return WriteResult(rows=0)
        columns = [c for c in frame.columns if not c.startswith(MERGE_KEY_PREFIX)]
        clauses = merge_clauses(spec, columns, "spark")
        merge = target.alias("t").merge(frame.alias("s"), clauses.on)
        if clauses.delete_when is not None:
            merge = merge.whenMatchedDelete(condition=clauses.delete_when)
        update: dict[str, Any] = {"condition": clauses.update_when} if clauses.update_when else {}
        insert: dict[str, Any] = {"condition": clauses.insert_when} if clauses.insert_when else {}
        if clauses.update_set is None:
            merge = merge.whenMatchedUpdateAll(**update)
        else:
            merge = merge.whenMatchedUpdate(set=dict(clauses.update_set), **update)
        if clauses.insert_values is None:
            merge = merge.whenNotMatchedInsertAll(**insert)
        else:
            merge = merge.whenNotMatchedInsert(values=dict(clauses.insert_values), **insert)
        merge.execute()
        return WriteResult(rows=rows)

    def close(self) -> None:
        self.clear()  # the session itself lives as long as the process

    # -- helpers -----------------------------------------------------------------------------------
    def _frame(self, query: exp.Query) -> DataFrame:
        sql = render(split_shared_ctes(query, self._keep_cte))
        try:
            return self._spark.sql(sql)
        except Exception as error:
            raise EngineError(short_error(error), hint=f"the query was: {sql[:1500]}") from None

    def _count(self, table: str, frame: DataFrame) -> int:
        """A staged table's rows as counted when it was computed; a lazily kept view is counted now."""
        known = self._rows.get(table)
        return int(frame.count()) if known is None else known

    def _keep_cte(self, name: str, query: exp.Query) -> None:
        """Compute a CTE the query reads more than once (see `spark_ctes`), kept until the query's rows are."""
        frame = self._persist(name, self._frame(query))
        self.counted(name, int(_guard(frame.count, query)))  # computes and keeps the rows
        frame.createOrReplaceTempView(name)
        self._ctes.append(name)

    @contextmanager
    def _shared_ctes(self) -> Iterator[None]:
        """The CTEs kept while computing one table or fetch are dropped once its rows are kept (a lazily
        defined view keeps its own until the batch's end)."""
        before = len(self._ctes)
        try:
            yield
        finally:
            for name in self._ctes[before:]:
                self.drop(name)
            del self._ctes[before:]

    def _persist(self, table: str, frame: DataFrame) -> DataFrame:
        """Keep a staged frame's rows, cut from its lineage: a cached plan that reads a Delta table is
        dropped when that table is written (as a batch does), and recomputing it costs minutes."""
        self.drop(table)
        # Kept as rows in memory (spilled to disk past it): PySpark's MEMORY_AND_DISK keeps them serialized,
        # and every read of a staged table then deserialized each row again.
        frame = frame.localCheckpoint(eager=False, storageLevel=StorageLevel.MEMORY_AND_DISK_DESER)
        self._persisted[table] = frame
        return frame


def _guard(action: Callable[[], T], query: exp.Query) -> T:
    """Run a Spark action; a failure while computing becomes an EngineError naming the query."""
    try:
        return action()
    except Exception as error:
        raise EngineError(short_error(error), hint=f"the query was: {render(query)[:1500]}") from None


def render(query: exp.Expr) -> str:
    """Spark SQL for a query written in DuckDB's dialect, with `schema.name` as the view `schema__name`."""
    query = query.copy()
    for table in query.find_all(exp.Table):
        if table.db:
            table.set("this", exp.to_identifier(f"{table.db}__{table.name}", quoted=True))
            table.set("db", None)
    return query.sql(dialect="spark")
