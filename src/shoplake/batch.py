"""One batch's steps: stage and check its files, write bronze, quarantine, silver and gold, reconcile,
commit and archive; a failure undoes every write (see `shoplake.pipeline` for the states it moves through)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from shoplake.contracts import LoadMode
from shoplake.engines import WriteJob
from shoplake.errors import AuditFailed, BatchFailed, FileRejected, LeaseLost, ShoplakeError
from shoplake.faults import crash_point
from shoplake.hooks import BatchContext, BatchHook, CheckResult
from shoplake.landing import ledger as L
from shoplake.landing.archive import FAILED_FOLDER, PROCESSED_FOLDER, archive_target
from shoplake.landing.triggers import read_trigger
from shoplake.layers import bronze, gold, scd2, silver, touched
from shoplake.layers.sql import col, lit
from shoplake.notify import BATCH_FAILED, FILE_FAILED, Event
from shoplake.outcomes import BatchOutcome, FileOutcome

if TYPE_CHECKING:
    from shoplake.pipeline import Session

LOCK = "lake"  # the name of the lake's lock in the state store
STAGES = ("read", "check", "write", "gold", "audit")  # the stages a batch's seconds are counted in
log = logging.getLogger("shoplake.hooks")


def tell_hooks(hooks: list[BatchHook], point: str, context: BatchContext, *args: Any) -> None:
    """Tell every hook what was decided (audited, committed, rolled_back): a hook that raises is logged,
    and never changes the batch's outcome."""
    for hook in hooks:
        try:
            getattr(hook, point)(context, *args)
        except Exception:
            log.exception("hook %s raised in %s for batch %s; ignored", type(hook).__name__, point,
                          context.batch_id)


def ask_hooks(hooks: list[BatchHook], point: str, context: BatchContext) -> list[CheckResult]:
    """Run a deciding point (started, written, audit) on every hook: one that raises fails the batch."""
    results: list[CheckResult] = []
    for hook in hooks:
        try:
            if point == "audit":
                results.extend(hook.audit(context))
            else:
                getattr(hook, point)(context)
        except ShoplakeError:
            raise
        except Exception as error:
            raise BatchFailed(f"hook {type(hook).__name__} failed in {point}: {error}",
                              hint="fix the hook (or its settings), then `shoplake reprocess --failed`") from error
    return results


class Batch:
    """The steps of one batch; state shared between them lives here."""

    def __init__(self, session: Session, outcome: BatchOutcome, waiting: list[L.Waiting], *,
                 replay: str | None, context: BatchContext) -> None:
        self.s = session
        self.context = context
        self.seconds_before = dict(session.report.seconds)
        self.outcome = outcome
        self.batch_id = outcome.batch_id
        self.waiting = waiting
        self.replay = replay
        self.by_relative: dict[str, FileOutcome] = {}
        self.replaces = {w.relative: w.replaces for w in waiting if w.replaces}
        self.versions_noted = False
        self.recomputed: set[str] = set()  # SCD2 feeds whose replaced observations left their log

    def step(self, what: str, done: int, total: int) -> None:
        if self.s.progress:
            self.s.progress(f"{self.outcome.business_date} {what}", done, total)

    def stage_seconds(self) -> dict[str, float]:
        """This batch's seconds per stage (the report's are summed over the run's batches)."""
        now = self.s.report.seconds
        return {k: now[k] - self.seconds_before.get(k, 0.0) for k in STAGES if k in now}

    def load(self) -> None:
        s, engine, contracts, report = self.s, self.s.engine, self.s.contracts, self.s.report
        ask_hooks(s.hooks, "started", self.context)
        engine.clear()
        ingested_at = L.now()
        expected = self._triggers()
        loaded: dict[str, list[exp.Select]] = {}  # feed -> bronze rows of each of its readable files
        drifted: dict[str, list[str]] = {}
        data = [w for w in self.waiting if w.feed is not None]
        staged_files: list[str] = []  # the engine's table of each file's rows
        # 1. Bronze (staged): read every data file; an unreadable file fails alone.
        for i, w in enumerate(data):
            assert w.feed is not None
            contract = contracts[w.feed]
            f = FileOutcome(w.relative, w.feed, L.QUEUED)
            self.outcome.files.append(f)
            self.by_relative[w.relative] = f
            try:
                path = s.landing.local_copy(w.relative, s.cache, reuse=True)
                if self._changed_since_hashed(w):
                    continue
                with report.timed("read"):
                    layout = bronze.sniff(path, contract)
                    staged = f"csv__{w.feed}__{len(loaded.get(w.feed, []))}"
                    staged_files.append(staged)
                    f.rows_read, rows = bronze.load_file(
                        engine, contract, path, layout, source_file=w.relative, batch_id=self.batch_id,
                        ingested_at=ingested_at, staged=staged)
                if self._changed_since_hashed(w):
                    continue
            except FileRejected as rejected:
                f.status, f.error = L.FAILED, f"{w.path}: {rejected.reason}"
                s.notifiers.send(Event(FILE_FAILED, f.error, batch_id=self.batch_id, file=w.path))
                continue
            except FileNotFoundError:
                f.status, f.error = L.FAILED, f"{w.path}: the file left the landing folder before it was read"
                continue
            loaded.setdefault(w.feed, []).append(rows)
            if layout.drifted and contract.schema_drift.value == "quarantine":
                drifted.setdefault(w.feed, []).append(w.relative)
            self.step(f"bronze {w.relative}", i + 1, len(data))
        self._verify_counts(expected)
        for feed, rows_of_files in loaded.items():
            bronze.define_bronze(engine, feed, rows_of_files)
        if self.replay:
            loaded[self.replay] = []
            bronze.define_quarantined(engine, contracts[self.replay], s.lake)
        # Reprocessing: the rows the earlier batch loaded from these files go first, so that the checks
        # (SCD2 changes against silver above all) see silver without them.
        cleared = self._replaced_tables()
        if cleared:
            self._note_versions(cleared)
            with report.timed("write"):
                self._clear_replaced(cleared)
        # 2. Silver checks for every feed, parents first, before anything is written.
        in_silver = silver.attach_silver(engine, contracts, s.lake)
        order = contracts.load_order(set(loaded))
        results: dict[str, silver.FeedResult] = {}
        for i, feed in enumerate(order):
            with report.timed("check"):
                referenced = any(parent == feed for child in order for _, parent, _ in contracts[child].references)
                results[feed] = silver.check_feed(engine, contracts[feed], contracts, in_silver=in_silver,
                                                  checked_feeds=set(results), drifted_files=drifted.get(feed, []),
                                                  referenced=referenced)
            self.step(f"check {feed}", i + 1, len(order))
        fatal = {f"{feed}.{rule}": n for feed, r in results.items() for rule, n in r.fatal.items()}
        for feed, result in results.items():
            self.outcome.rule_failures[feed] = result.rule_failures
            severities = {rule: severity.value for rule, severity in result.severities.items()}
            s.ledger.record_rules(self.batch_id, feed, result.rule_failures, severities)
        if fatal:
            raise BatchFailed("fail_batch rule(s) failed: " + ", ".join(f"{r} ({n} rows)" for r, n in fatal.items()),
                              hint="fix the data or the contract, then `shoplake reprocess --failed`")
        # 3. Write bronze, then quarantine and silver, then gold; every table's version noted first.
        jobs = [job for feed in order for job in silver.stage_writes(
            engine, contracts[feed], s.lake, in_silver=feed in in_silver, bronze=not self.replay,
            quarantine_mode="overwrite" if feed == self.replay else "append", replaced=feed in self.recomputed)]
        self._note_versions([*(j.path for j in jobs), *(gold.gold_path(s.lake, m.name) for m in s.models)])
        with report.timed("write"):
            bronze_jobs = [j for j in jobs if "/bronze/" in j.path]
            engine.write(bronze_jobs, tag=self.batch_id)
            crash_point("after_bronze")
            # The files' text is written and quarantined rows are staged: freed now, DuckDB does not spill
            # it to disk to make room for silver and gold.
            for feed in loaded:
                engine.drop(bronze.bronze_table(feed))
            for name in staged_files:
                engine.drop(name)

            def written(job: WriteJob) -> None:
                if "/silver/" in job.path:
                    crash_point("during_silver")

            engine.write([j for j in jobs if j not in bronze_jobs], tag=self.batch_id, on_written=written)
            crash_point("after_silver")
        for feed in order:
            for name, counts in results[feed].files.items():
                if feed == self.replay:  # rows from the quarantine, by the file they first came in
                    self.outcome.files.append(FileOutcome(
                        name, feed, L.LOADED, rows_read=counts.duplicates + counts.quarantined + counts.loaded))
                f = self.by_relative.get(name) or self.outcome.files[-1]
                f.rows_duplicate, f.rows_quarantined = counts.duplicates, counts.quarantined
                f.rows_loaded = counts.loaded
                if feed != self.replay:  # replayed rows all come from the quarantine: no rate to judge
                    f.max_quarantine_rate = s.contracts[feed].max_quarantine_rate
        self.step("gold", len(order), len(order))
        # A load batch tells gold what it wrote, so that gold computes only what that touched. A reprocess
        # (rows deleted) or a replay (rows loaded with their first batch's lineage) computes every model.
        changes = None if self.replaces or self.replay else touched.batch_changes(
            contracts, s.lake, self.batch_id, s.ledger.table_versions(self.batch_id))
        available = silver.attach_silver(engine, contracts, s.lake)
        # A model edited, or settings changed, since it was last computed is computed whole. Its signature
        # is forgotten until this batch commits, so a batch that fails leaves it to be computed whole again.
        parameters = s.settings.model_parameters()
        signatures = {m.name: gold.signature(m, parameters) for m in s.models}
        known = s.ledger.model_signatures()
        stale = frozenset(name for name, signature in signatures.items() if known.get(name) != signature)
        s.ledger.set_model_signatures(dict.fromkeys(stale & set(known)))
        with report.timed("gold"):
            built = gold.run_models(engine, s.models, s.lake, available, tag=self.batch_id,
                                    parameters=parameters, changes=changes, stale=stale)
        report.gold, report.gold_skipped = built.built, built.skipped
        crash_point("after_gold")
        self.audit()
        # 4. Reconcile, commit, archive.
        for f in self.outcome.files:
            if f.status not in (L.FAILED, L.WAITING) and f.rows_read != (
                    f.rows_loaded + f.rows_quarantined + f.rows_duplicate):
                raise ShoplakeError(f"reconciliation broke for {f.file}: read {f.rows_read} != loaded {f.rows_loaded}"
                                    f" + quarantined {f.rows_quarantined} + duplicates {f.rows_duplicate}")
        self.commit(L.SUCCEEDED)
        s.ledger.set_model_signatures({name: signatures[name] for name in built.built})

    def audit(self) -> None:
        """Every table is written, nothing committed: the hooks see the versions written and audit them;
        a failed error-level check fails the batch like a fail_batch rule."""
        s, context = self.s, self.context
        if not s.hooks:
            return
        context.versions_written = {p: s.engine.table_version(p) for p in context.versions_before}
        context.seconds = self.stage_seconds()
        ask_hooks(s.hooks, "written", context)
        with s.report.timed("audit"):
            results = ask_hooks(s.hooks, "audit", context)
        context.checks = results
        context.seconds = self.stage_seconds()
        tell_hooks(s.hooks, "audited", context, results)
        failing = [r for r in results if r.severity == "error" and not r.passed]
        if failing:
            raise AuditFailed("audit check(s) failed: " + ", ".join(f"{r.name} ({r.failing_rows} rows)"
                                                                    for r in failing),
                              hint="the failing checks' rows show what is wrong: fix the data or the check, "
                              "then `shoplake reprocess --failed`")

    def _changed_since_hashed(self, w: L.Waiting) -> bool:
        """Whether a file is no longer the one its ledger hash was taken of (its sender is still writing it,
        or sent it again). Then it leaves the batch and waits to settle: the next scan hashes the new bytes,
        so the ledger's hash is always the hash of the bytes loaded."""
        entry = self.s.landing.stat(w.relative)
        if entry is None:
            raise FileNotFoundError(w.relative)
        if w.mtime is None or (entry.size, entry.mtime) == (w.size, w.mtime):
            return False
        self.waiting.remove(w)
        f = self.by_relative.pop(w.relative)
        f.rows_read = 0
        f.status, f.error = L.WAITING, f"{w.path} changed while the batch read it; it waits to settle and loads later"
        self.s.ledger.update_file(w.file_id, status=L.WAITING, batch_id=None, mtime=None)
        return True

    def _triggers(self) -> dict[str, int | None]:
        """Files (by name) and row counts that the batch's trigger files promise; a missing one fails."""
        expected: dict[str, int | None] = {}
        names = {w.relative for w in self.waiting} | {w.relative.rsplit("/", 1)[-1] for w in self.waiting}
        for w in self.waiting:
            if w.feed is not None:
                continue
            path = self.s.landing.local_copy(w.relative, self.s.cache, reuse=True)
            listed = read_trigger(path, w.path)
            missing = [name for name in listed if name not in names]
            if missing:
                raise BatchFailed(f"{w.path} lists {len(missing)} file(s) that have not arrived: "
                                  + ", ".join(sorted(missing)[:10]),
                                  hint="drop the missing files, then `shoplake reprocess --failed`")
            expected.update(listed)
        return expected

    def _verify_counts(self, expected: dict[str, int | None]) -> None:
        wrong = []
        for f in self.outcome.files:
            rows = expected.get(f.file, expected.get(f.file.rsplit("/", 1)[-1]))
            if rows is not None and f.rows_read != rows:
                wrong.append(f"{f.file} has {f.rows_read} rows, the trigger file lists {rows}")
            elif rows is not None and f.status == L.FAILED:
                wrong.append(f"{f.file} could not be read ({f.error})")
        if wrong:
            raise BatchFailed("row counts do not match the trigger file: " + "; ".join(wrong),
                              hint="a short file is usually an incomplete upload: drop it again, then "
                              "`shoplake reprocess --failed`")

    def _note_versions(self, paths: list[str]) -> None:
        """Before the batch writes a table, the ledger learns the version to go back to."""
        engine = self.s.engine
        versions = {p: engine.table_version(p) for p in dict.fromkeys(paths)}
        self.s.ledger.note_table_versions(self.batch_id, versions)
        for path, version in versions.items():  # first note wins, as in the ledger
            self.context.versions_before.setdefault(path, version)
        self.versions_noted = True

    def _replaced_tables(self) -> list[str]:
        feeds = {w.feed for w in self.waiting if w.replaces and w.feed}
        layers = ("bronze", "quarantine", "silver")
        # SCD2 history is never cut: its observations leave the log instead, and the keys are recomputed.
        return [scd2.observations_path(self.s.lake, feed)
                if layer == "silver" and self.s.contracts[feed].load.mode is LoadMode.SCD2
                else f"{self.s.lake}/{layer}/{feed}" for feed in sorted(feeds) for layer in layers]

    def _clear_replaced(self, paths: list[str]) -> None:
        """Delete what the earlier batch loaded from the files being reprocessed."""
        by_batch: dict[str, list[str]] = {}
        for relative, batch in self.replaces.items():
            by_batch.setdefault(batch, []).append(relative)
        for path in paths:
            feed = path.rsplit("/", 1)[-1]
            conditions: list[exp.Expr] = []
            for batch, relatives in by_batch.items():
                mine = [r for r in relatives if any(w.relative == r and w.feed == feed for w in self.waiting)]
                if mine:
                    where = exp.and_(exp.EQ(this=col("_batch_id"), expression=lit(batch)),
                                     exp.In(this=col("_source_file"), expressions=[lit(r) for r in mine]))
                    conditions.append(where)
            if path == scd2.observations_path(self.s.lake, feed):
                if conditions:
                    scd2.forget_observations(self.s.engine, self.s.contracts[feed], self.s.lake,
                                             exp.or_(*conditions), tag=self.batch_id)
                    self.recomputed.add(feed)
                continue
            for condition in conditions:
                self.s.engine.delete_rows(path, condition, tag=self.batch_id)

    def fail(self, error: str) -> None:
        """Undo every write of the batch, then send its files to archive/failed/."""
        if self.versions_noted:
            self.s._restore_tables(self.batch_id)
        self.outcome.error = error
        for f in self.outcome.files:
            f.error = f.error or error
        self.s.notifiers.send(Event(BATCH_FAILED, error, batch_id=self.batch_id,
                                    details={"business_date": self.outcome.business_date.isoformat()}))
        self.commit(L.FAILED)
        tell_hooks(self.s.hooks, "rolled_back", self.context, error)

    def commit(self, status: str) -> None:
        """Counts and archive paths into the ledger, the batch committed; then the files move."""
        s = self.s
        taken: set[str] = set()
        updates: dict[int, dict[str, Any]] = {}
        for w in self.waiting:
            f = self.by_relative.get(w.relative)
            failed = status == L.FAILED or (f is not None and f.status == L.FAILED)
            target = archive_target(s.archive, FAILED_FOLDER if failed else PROCESSED_FOLDER, w.business_date,
                                    w.relative, self.batch_id, taken)
            values: dict[str, Any] = dict(status=L.ARCHIVING, outcome=L.FAILED if failed else L.LOADED,
                                          archive_key=target, archived_path=s.archive.describe(target))
            if f is not None:
                f.status, f.archived_to = (L.FAILED if failed else L.LOADED), s.archive.describe(target)
                values.update(rows_read=f.rows_read, rows_loaded=f.rows_loaded, rows_quarantined=f.rows_quarantined,
                              rows_duplicate=f.rows_duplicate, error=f.error if failed else None)
            elif failed:
                values.update(error=self.outcome.error)
            updates[w.file_id] = values
        totals = {k: sum(getattr(f, k) for f in self.outcome.files if f.status == L.LOADED)
                  for k in ("rows_read", "rows_loaded", "rows_quarantined")}
        tables = {p: s.engine.table_version(p) for p in s.ledger.table_versions(self.batch_id)}
        if s.lock_lost.is_set() or not s.ledger.commit_batch(self.batch_id, updates, tables=tables,
                                                               lock=(LOCK, s.holder), outcome=status,
                                                               error=self.outcome.error, **totals):
            s.lock_lost.set()
            raise LeaseLost("it was about to commit the batch")
        s._archive(self.batch_id)
        s.ledger.set_batch(self.batch_id, status=status, finished_at=L.now())
        self.outcome.status = status
        if status == L.SUCCEEDED:
            self.context.seconds = self.stage_seconds()
            tell_hooks(s.hooks, "committed", self.context)
