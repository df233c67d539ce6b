"""A batch's transaction: started in the ledger, every table's version noted before it is written, the hooks
called in order, then committed and archived, or failed and rolled back to the noted versions."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import date
from typing import TYPE_CHECKING, Any

from shoplake.errors import AuditFailed, BatchFailed, LeaseLost, ShoplakeError
from shoplake.faults import crash_point
from shoplake.hooks import BatchContext, BatchHook, CheckResult
from shoplake.landing import ledger as L
from shoplake.landing.archive import FAILED_FOLDER, PROCESSED_FOLDER, archive_target, finish_move
from shoplake.notify import BATCH_FAILED, Event
from shoplake.outcomes import BatchOutcome, FileOutcome
from shoplake.stages import Stages

if TYPE_CHECKING:
    from shoplake.session import Session

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


def context(session: Session, batch_id: str, business_date: date, kind: str, outcome: BatchOutcome) -> BatchContext:
    """What the hooks read about a batch; the versions before are the ones noted so far (none yet for a
    batch just started)."""
    return BatchContext(batch_id=batch_id, business_date=business_date, kind=kind, settings=session.settings,
                        engine=session.engine, ledger=session.ledger, lake=session.lake, outcome=outcome,
                        versions_before=session.ledger.table_versions(batch_id))


def run_batch(session: Session, waiting: list[L.Waiting], *, owner: str, reason: str = "run",
              replaces: str | None = None, replay: str | None = None) -> BatchOutcome:
    """Load these waiting files (one business date) as one batch; a replay batch has no files and
    re-checks the quarantine of feed `replay` instead."""
    s = session
    business_date = waiting[0].business_date if waiting else L.now().date()
    batch_id = f"{business_date:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    kind = "replay" if replay else "reprocess" if replaces else "load"
    s.ledger.start_batch(batch_id, business_date, s.settings.engine, len(waiting), owner=owner, kind=kind,
                         replaces=replaces)
    s.ledger.queue([w.file_id for w in waiting], batch_id)
    outcome = BatchOutcome(batch_id, business_date, L.RUNNING, reason=reason)
    started = time.perf_counter()
    tx = Transaction(s, outcome, waiting, context(s, batch_id, business_date, kind, outcome))
    try:
        tx.run(replay=replay)
    except LeaseLost:
        raise  # another process holds the lake now: touch nothing, it rolls this batch back
    except ShoplakeError as error:
        tx.fail(str(error))
    except BaseException:
        # Interrupted (a second Ctrl-C, a bug): nothing half-written stays; the files wait again.
        if not s.lock_lost.is_set():
            why = "abandoned: interrupted while running; rolled back"
            roll_back(s, batch_id, why)
            tell_hooks(s.hooks, "rolled_back", tx.context, why)
        raise
    outcome.seconds = time.perf_counter() - started
    s.report.batches.append(outcome)
    return outcome


class Transaction:
    """One batch from start to commit or rollback; its files and their outcomes live here."""

    def __init__(self, session: Session, outcome: BatchOutcome, waiting: list[L.Waiting],
                 context: BatchContext) -> None:
        self.s = session
        self.outcome = outcome
        self.batch_id = outcome.batch_id
        self.waiting = waiting
        self.by_relative: dict[str, FileOutcome] = {}
        self.context = context
        self.versions_noted = False
        self.seconds_before = dict(session.report.seconds)

    def run(self, *, replay: str | None) -> None:
        """The hooks and the stages in order; an exception leaves the decision to `run_batch`."""
        s = self.s
        ask_hooks(s.hooks, "started", self.context)
        stages = Stages(self, replay=replay)
        stages.read()
        stages.clear_replaced()
        stages.check()
        stages.count_files()
        stages.gold()
        self.audit()
        self.reconcile()
        self.commit(L.SUCCEEDED)
        stages.committed()
        self.context.seconds = self.stage_seconds()
        tell_hooks(s.hooks, "committed", self.context)

    def stage_seconds(self) -> dict[str, float]:
        """This batch's seconds per stage (the report's are summed over the run's batches)."""
        now = self.s.report.seconds
        return {k: now[k] - self.seconds_before.get(k, 0.0) for k in STAGES if k in now}

    def note_versions(self, paths: list[str]) -> None:
        """Before the batch writes a table, the ledger learns the version to go back to."""
        engine = self.s.engine
        versions = {p: engine.table_version(p) for p in dict.fromkeys(paths)}
        self.s.ledger.note_table_versions(self.batch_id, versions)
        for path, version in versions.items():  # first note wins, as in the ledger
            self.context.versions_before.setdefault(path, version)
        self.versions_noted = True

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

    def reconcile(self) -> None:
        """Every row read is loaded, quarantined or a duplicate: else nothing of the batch stays."""
        for f in self.outcome.files:
            if f.status not in (L.FAILED, L.WAITING) and f.rows_read != (
                    f.rows_loaded + f.rows_quarantined + f.rows_duplicate):
                raise ShoplakeError(f"reconciliation broke for {f.file}: read {f.rows_read} != loaded {f.rows_loaded}"
                                    f" + quarantined {f.rows_quarantined} + duplicates {f.rows_duplicate}")

    def fail(self, error: str) -> None:
        """Undo every write of the batch, then send its files to archive/failed/."""
        if self.versions_noted:
            restore_tables(self.s, self.batch_id)
        self.outcome.error = error
        for f in self.outcome.files:
            f.error = f.error or error
        self.s.notifiers.send(Event(BATCH_FAILED, error, batch_id=self.batch_id,
                                    details={"business_date": self.outcome.business_date.isoformat()}))
        self.commit(L.FAILED)
        self.context.seconds = self.stage_seconds()
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
        # A succeeded batch wrote nothing since the audit read every noted table's version: those are its
        # versions (a Delta table open each, 50 of them, is a tenth of a small batch).
        written = self.context.versions_written if status == L.SUCCEEDED else {}
        tables = {p: written[p] if p in written else s.engine.table_version(p)
                  for p in s.ledger.table_versions(self.batch_id)}
        if s.lock_lost.is_set() or not s.ledger.commit_batch(self.batch_id, updates, tables=tables,
                                                               lock=(LOCK, s.holder), outcome=status,
                                                               error=self.outcome.error, **totals):
            s.lock_lost.set()
            raise LeaseLost("it was about to commit the batch")
        archive(s, self.batch_id)
        s.ledger.set_batch(self.batch_id, status=status, finished_at=L.now())
        self.outcome.status = status


def archive(session: Session, batch_id: str) -> int:
    """Move a committed batch's files to their recorded archive paths; returns how many moved."""
    s = session
    s.prove_lease()
    moved = 0
    outcomes = {}
    for row in s.ledger.batch_files(batch_id):
        if row["status"] != L.ARCHIVING:
            continue
        if finish_move(s.landing, row["relative"], s.archive, row["archive_key"]):
            moved += 1
            crash_point("during_archive")
        s.landing.drop_copy(row["relative"], s.cache)
        outcomes[row["file_id"]] = row["outcome"]
    s.ledger.files_archived(outcomes)  # a file moved but not yet marked is finished by recovery
    return moved


def restore_tables(session: Session, batch_id: str) -> None:
    """Every table the batch noted back at its noted version (a new commit; an unwritten table is untouched)."""
    for path, version in session.ledger.table_versions(batch_id).items():
        session.engine.restore(path, version, tag=f"rollback {batch_id}")


def roll_back(session: Session, batch_id: str, error: str) -> None:
    """An abandoned or interrupted batch: its tables restored, its rule counts forgotten, its files waiting again."""
    s = session
    s.prove_lease()
    restore_tables(s, batch_id)
    s.record_tables(s.ledger.table_versions(batch_id), batch_id)
    s.ledger.forget_rules(batch_id)
    for row in s.ledger.batch_files(batch_id):
        if row["status"] in (L.QUEUED, L.ARCHIVING):
            s.ledger.update_file(row["file_id"], status=L.WAITING, batch_id=None, outcome=None,
                                 archive_key=None, archived_path=None, error=None)
    s.ledger.set_batch(batch_id, status=L.ROLLED_BACK, error=error, finished_at=L.now())
