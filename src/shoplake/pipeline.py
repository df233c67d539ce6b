"""Batches: files of one business date through bronze, silver and quarantine, then gold, exactly once.

A `Session` is one process's hold on a lake. It takes the lake's lock (a lease renewed by a heartbeat
thread), finishes or rolls back whatever a dead process left half-done, notes landed files in the
ledger as waiting, and runs batches of them.

A batch moves running -> committed -> succeeded (or failed):
  running    files are read and checked; the version of every table the batch may write is noted in
             the ledger, then bronze, quarantine, silver and gold are written, each commit tagged with
             the batch id. Killed here, the next session restores every noted table to its version
             and the files wait again: as if the batch had never started.
  committed  every table is written and every file's counts and archive path are in the ledger; only
             moving files to the archive is left. Killed here, the next session finishes the moves.
A batch that fails (a fail_batch rule, an unreadable trigger, a write error) is rolled back the same way
and its files go to archive/failed/<date>/.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import date
from itertools import groupby
from types import TracebackType
from typing import Any

from shoplake.alerts import alert_notifiers
from shoplake.batch import LOCK, Batch, tell_hooks
from shoplake.config import Settings
from shoplake.contracts import ContractSet, LoadMode, load_contracts
from shoplake.engines import Engine, open_engine
from shoplake.errors import ConfigError, LakeStateMismatch, LeaseLost, ShoplakeError
from shoplake.faults import crash_point
from shoplake.hooks import BatchContext, BatchHook, batch_hooks
from shoplake.landing import ledger as L
from shoplake.landing.archive import FAILED_FOLDER, archive_target, finish_move
from shoplake.landing.files import classify, in_progress, landed_file
from shoplake.landing.storage import Entry, LocalStore, open_store
from shoplake.layers import gold, scd2, silver
from shoplake.notify import BATCH_ROLLED_BACK, FILE_DUPLICATE, Event, Notifiers
from shoplake.outcomes import BatchOutcome, FileOutcome, Progress, RunReport

OWNER = f"{socket.gethostname()}:{os.getpid()}"


def run(settings: Settings, progress: Progress | None = None, notifiers: Notifiers | None = None, *,
        hooks: list[BatchHook] | None = None) -> RunReport:
    """Process every waiting file of the landing store now, one batch per business date, oldest first."""
    with Session(settings, notifiers=notifiers, progress=progress, hooks=hooks) as session:
        report = session.report
        session.scan()
        groups = session.waiting_groups()
        for i, ((_, replaces), waiting) in enumerate(groups):
            if progress:
                progress(f"batch {waiting[0].business_date}", i, len(groups))
            session.run_batch(waiting, reason="reprocess" if replaces else "run", replaces=replaces)
        if not report.batches and not session.gold_exists():
            session.build_gold(tag=None)
        return report


def _dead(owner: str) -> bool:
    """Whether the process named `owner` (host:pid#session) is known to be gone: only provable on this host."""
    host, _, pid = owner.partition("#")[0].rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Session:
    """One process's hold on a lake; use as a context manager."""

    def __init__(self, settings: Settings, *, notifiers: Notifiers | None = None,
                 progress: Progress | None = None, hooks: list[BatchHook] | None = None) -> None:
        self.settings = settings
        # The hooks every batch runs (settings decide which), then the caller's own (tests, embedders).
        self.hooks: list[BatchHook] = [*batch_hooks(settings), *(hooks or [])]
        self.contracts: ContractSet = load_contracts(settings.contracts)
        self.models = gold.load_models(settings.models, contracts=self.contracts)
        self.landing = open_store(settings.landing)
        if isinstance(self.landing, LocalStore) and not self.landing.root.is_dir():
            raise ConfigError(f"landing folder {self.landing.root} does not exist",
                              hint="create it or set landing in shoplake.yml")
        self.archive = open_store(settings.archive_dir)
        self.lake = settings.tables_root
        self._engine: Engine | None = None
        # The engine starts before the state store opens or a file is touched: one that cannot start (not
        # installed, no Java, a setting it refuses) stops with a ConfigError and every file still waiting.
        engine = self.engine
        try:
            settings.scratch.mkdir(parents=True, exist_ok=True)
            self.cache = settings.scratch / "_landing_cache"
            self.ledger = L.Ledger(settings.state_db_url)
            self.notifiers = notifiers or alert_notifiers(settings, self.ledger.engine)  # log + shoplake.yml alerts
        except BaseException:
            engine.close()
            raise
        self.progress = progress
        self.report = RunReport(lake=self.lake)
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        self.lock_lost = threading.Event()
        # The lease's holder: this process and this session (a pid can be reused, a session cannot).
        self.holder = f"{OWNER}#{uuid.uuid4().hex[:12]}"

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Session:
        try:
            self.ledger.acquire_lock(LOCK, self.holder, self.settings.lease_seconds, dead=_dead)
        except BaseException:
            self.engine.close()
            self.ledger.close()
            raise
        self._heartbeat = threading.Thread(target=self._renew, name="shoplake-lease", daemon=True)
        self._heartbeat.start()
        try:
            self.recover()
            self.verify_tables()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._heartbeat:
            self._heartbeat.join()
        try:
            if self._engine is not None:
                self._engine.close()
            self.ledger.release_lock(LOCK, self.holder)
        finally:
            self.ledger.close()

    def _renew(self) -> None:
        interval = self.settings.lease_seconds / 3
        while not self._stop.wait(interval):
            try:
                renewed = self.ledger.renew_lock(LOCK, self.holder, self.settings.lease_seconds)
            except Exception:  # a blip of the state store: try again at the next beat
                continue
            if not renewed:  # released or taken by another: never taken back
                self.lock_lost.set()
                return

    def prove_lease(self) -> None:
        """Before a write: the lake must still be this session's, else stop with LeaseLost."""
        if self.lock_lost.is_set() or not self.ledger.renew_lock(LOCK, self.holder, self.settings.lease_seconds):
            self.lock_lost.set()
            raise LeaseLost()

    def _draw_fence(self) -> int:
        """The fence of the next Delta commit; drawing it proves the lease."""
        fence = None if self.lock_lost.is_set() else self.ledger.next_fence(
            LOCK, self.holder, self.settings.lease_seconds)
        if fence is None:
            self.lock_lost.set()
            raise LeaseLost()
        return fence

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            s = self.settings
            self._engine = open_engine(s.engine, temp_dir=s.scratch / "_tmp", memory_limit=s.memory_limit,
                                       threads=s.threads, spark_master=s.spark_master, spark_conf=s.spark_conf)
            self._engine.set_fence(self._draw_fence)
        return self._engine

    # -- recovery ----------------------------------------------------------------------------------
    def recover(self) -> None:
        """Finish (committed) or roll back (running) every batch a dead process left behind."""
        if moved := self.move_back():
            self.report.recovered.append(f"{moved} file(s) on their way back to landing for reprocessing moved")
        for batch in self.ledger.unfinished_batches():
            batch_id = batch["batch_id"]
            if batch["status"] == L.COMMITTED:
                moved = self._archive(batch_id)
                self.ledger.set_batch(batch_id, status=batch["outcome"], finished_at=L.now())
                self.report.recovered.append(f"batch {batch_id} was committed by {batch['owner']}: finished "
                                             f"archiving ({moved} file(s) moved)")
            else:
                error = f"interrupted ({batch['owner']} stopped while it ran); rolled back"
                context = self.context(batch_id, batch["business_date"], batch["kind"],
                                       BatchOutcome(batch_id, batch["business_date"], L.ROLLED_BACK, error=error))
                self._roll_back(batch_id, error)
                tell_hooks(self.hooks, "rolled_back", context, error)
                self.report.recovered.append(f"batch {batch_id} of {batch['owner']} was interrupted: rolled back, "
                                             "its files wait again")
                self.notifiers.send(Event(BATCH_ROLLED_BACK, f"batch {batch_id} was interrupted and rolled back",
                                          batch_id=batch_id))

    def move_back(self) -> int:
        """Finish moving requeued files from the archive back to landing (see `reprocess`)."""
        moved = 0
        for row in self.ledger.files_where(L.files.c.status == L.WAITING, L.files.c.archive_key.is_not(None)):
            if not self.landing.exists(row["relative"]):
                self.archive.move(row["archive_key"], self.landing, row["relative"])
                moved += 1
            entry = self.landing.stat(row["relative"])
            self.ledger.update_file(row["file_id"], archive_key=None, archived_path=None,
                                    mtime=entry.mtime if entry else None)
        return moved

    def _restore_tables(self, batch_id: str) -> None:
        for path, version in self.ledger.table_versions(batch_id).items():
            self.engine.restore(path, version, tag=f"rollback {batch_id}")

    def _roll_back(self, batch_id: str, error: str) -> None:
        self.prove_lease()
        self._restore_tables(batch_id)
        self._record_tables(self.ledger.table_versions(batch_id), batch_id)
        self.ledger.forget_rules(batch_id)
        for row in self.ledger.batch_files(batch_id):
            if row["status"] in (L.QUEUED, L.ARCHIVING):
                self.ledger.update_file(row["file_id"], status=L.WAITING, batch_id=None, outcome=None,
                                        archive_key=None, archived_path=None, error=None)
        self.ledger.set_batch(batch_id, status=L.ROLLED_BACK, error=error, finished_at=L.now())

    # -- the tables and the state store agree ------------------------------------------------------
    def _table_paths(self) -> list[str]:
        feeds = [c.feed for c in self.contracts]
        layered = [f"{self.lake}/{layer}/{feed}" for feed in feeds for layer in ("bronze", "silver", "quarantine")]
        layered += [scd2.observations_path(self.lake, c.feed) for c in self.contracts if c.load.mode is LoadMode.SCD2]
        return [*layered, *(gold.gold_path(self.lake, m.name) for m in self.models)]

    def _record_tables(self, paths: Any, batch_id: str | None) -> None:
        self.ledger.record_table_states({p: self.engine.table_version(p) for p in paths}, batch_id)

    def verify_tables(self) -> None:
        """Refuse a lake whose tables the state store cannot account for, before anything is written.

        A lost (deleted or emptied) state store would load every file again on top of the tables; a table
        older than the ledger says (a deleted log entry, a restored backup) would lose its batches silently.
        """
        known = self.ledger.table_states()
        current = {p: self.engine.table_version(p) for p in self._table_paths()}
        present = sorted(p for p, v in current.items() if v is not None)
        state = self.settings.state_db_url
        if present and not self.ledger.has_batches():
            raise LakeStateMismatch(
                f"the lake {self.lake} holds {len(present)} table(s) (e.g. {present[0]}) written by batches the "
                f"state store {state} does not know: was it deleted or emptied? Loading now would load files "
                "a second time",
                hint="restore the state database from a backup (or point state_url at the right one); to start "
                "over, move the lake's tables away first")
        behind = [(p, v, known[p]) for p, v in current.items() if p in known and (v is None or v < known[p])]
        if behind:
            path, version, expected = behind[0]
            now_at = "is missing" if version is None else f"is at version {version}"
            raise LakeStateMismatch(
                f"table {path} {now_at} but the state store recorded version {expected} after its last batch "
                f"({len(behind)} table(s) behind): its Delta log lost commits, and loading now would lose those "
                "batches silently",
                hint=f"restore the missing entries of {path}/_delta_log (up to version {expected}) from a backup; "
                "shoplake writes nothing to this lake until its tables are where the state store left them")
        adopted = {p: v for p, v in current.items() if v is not None and known.get(p) != v}
        if adopted:  # tables written before versions were recorded, or maintained since (OPTIMIZE)
            self.ledger.record_table_states(adopted, None)

    # -- finding files -----------------------------------------------------------------------------
    def scan(self, entries: list[Entry] | None = None, *, complete: bool = True) -> list[L.Waiting]:
        """Note every (given) landed file in the ledger as waiting; duplicates of loaded files are archived.

        `complete`: the entries are the whole listing, so waiting files no longer there are forgotten.
        """
        listing = self.landing.list() if entries is None else entries
        self.report.refused = [r.message for r in self.landing.refused]
        known = {w.relative: w for w in self.ledger.waiting()}
        seen = set()
        fresh: list[dict[str, Any]] = []
        here: dict[str, str] = {}  # sha256 -> file noted in this scan
        for entry in listing:
            if in_progress(entry.relative):
                continue
            recognised, feed = classify(entry.relative, self.contracts)
            if not recognised:
                where = self.landing.describe(entry.relative)
                if where not in self.report.unrecognised:
                    self.report.unrecognised.append(where)
                continue
            seen.add(entry.relative)
            noted = known.get(entry.relative)
            if noted is not None and noted.size == entry.size and noted.mtime == entry.mtime:
                continue
            try:
                landed = landed_file(self.landing, entry, feed, self.cache, timezone=self.settings.timezone,
                                     arrived_at=noted.detected_at if noted else None)
            except FileNotFoundError:
                continue
            where = self.landing.describe(entry.relative)
            if landed.has_rows and not landed.is_trigger and (noted is None or noted.replaces is None):
                earlier = here.get(landed.sha256) or self.ledger.known_file_with_hash(
                    landed.sha256, excluding=noted.file_id if noted else None)
                if earlier is not None:
                    self._archive_duplicate(entry.relative, where, landed.feed, landed.business_date, landed.size,
                                            landed.sha256, earlier)
                    continue
                here[landed.sha256] = where
            fresh.append(dict(relative=entry.relative, path=where, feed=feed, business_date=landed.business_date,
                              size=landed.size, sha256=landed.sha256, mtime=entry.mtime,
                              replaces=noted.replaces if noted else None))
        self.ledger.note_waiting(fresh)
        if complete:
            for relative, noted in known.items():
                if relative not in seen and noted.replaces is None and not self.landing.exists(relative):
                    self.ledger.forget_waiting(relative)
        return self.ledger.waiting()

    def _archive_duplicate(self, relative: str, where: str, feed: str | None, business_date: date, size: int,
                           digest: str, earlier: str) -> None:
        self.prove_lease()
        target = archive_target(self.archive, FAILED_FOLDER, business_date, relative, None)
        error = f"duplicate: same content (sha256 {digest[:12]}…) as {earlier}"
        self.ledger.record_file(path=where, relative=relative, archived_path=self.archive.describe(target),
                                archive_key=target, size=size, sha256=digest, feed=feed,
                                business_date=business_date, status=L.DUPLICATE, error=error, processed_at=L.now())
        finish_move(self.landing, relative, self.archive, target)
        self.report.skipped_duplicates.append(FileOutcome(relative, feed, L.DUPLICATE, error=error,
                                                          archived_to=self.archive.describe(target)))
        self.notifiers.send(Event(FILE_DUPLICATE, error, file=where))

    def waiting_groups(self) -> list[tuple[tuple[date, str | None], list[L.Waiting]]]:
        """Waiting files by business date (oldest first); files being reprocessed apart from new ones."""
        def key(w: L.Waiting) -> tuple[date, str]:
            return (w.business_date, w.replaces or "")

        ordered = sorted(self.ledger.waiting(), key=lambda w: (*key(w), w.feed or "~", w.relative))
        return [((d, r or None), list(group)) for (d, r), group in groupby(ordered, key=key)]

    def gold_exists(self) -> bool:
        first = gold.gold_path(self.lake, self.models[0].name) if self.models else None
        return first is not None and self.engine.table_version(first) is not None

    def build_gold(self, tag: str | None, *, full: bool = False) -> dict[str, int]:
        """Build the models; a partitioned one rewrites only its changed partitions unless `full`."""
        available = silver.attach_silver(self.engine, self.contracts, self.lake)
        with self.report.timed("gold"):
            built = gold.run_models(self.engine, self.models, self.lake, available, tag=tag,
                                     parameters=self.settings.model_parameters(), full=full)
        self.report.gold, self.report.gold_skipped = built.built, built.skipped
        if tag is None:  # gold built outside a batch: its versions are recorded here
            self._record_tables([gold.gold_path(self.lake, m) for m in self.report.gold], None)
        return self.report.gold

    # -- a batch -----------------------------------------------------------------------------------
    def run_batch(self, waiting: list[L.Waiting], *, reason: str = "run", replaces: str | None = None,
                  replay: str | None = None) -> BatchOutcome:
        """Load these waiting files (one business date) as one batch; a replay batch has no files and
        re-checks the quarantine of feed `replay` instead."""
        business_date = waiting[0].business_date if waiting else L.now().date()
        batch_id = f"{business_date:%Y%m%d}-{uuid.uuid4().hex[:8]}"
        kind = "replay" if replay else "reprocess" if replaces else "load"
        self.ledger.start_batch(batch_id, business_date, self.settings.engine, len(waiting), owner=OWNER, kind=kind,
                                replaces=replaces)
        self.ledger.queue([w.file_id for w in waiting], batch_id)
        outcome = BatchOutcome(batch_id, business_date, L.RUNNING, reason=reason)
        started = time.perf_counter()
        run = Batch(self, outcome, waiting, replay=replay, context=self.context(batch_id, business_date, kind, outcome))
        try:
            run.load()
        except LeaseLost:
            raise  # another process holds the lake now: touch nothing, it rolls this batch back
        except ShoplakeError as error:
            run.fail(str(error))
        except BaseException:
            # Interrupted (a second Ctrl-C, a bug): nothing half-written stays; the files wait again.
            if not self.lock_lost.is_set():
                why = "abandoned: interrupted while running; rolled back"
                self._roll_back(batch_id, why)
                tell_hooks(self.hooks, "rolled_back", run.context, why)
            raise
        outcome.seconds = time.perf_counter() - started
        self.report.batches.append(outcome)
        return outcome

    def context(self, batch_id: str, business_date: date, kind: str, outcome: BatchOutcome) -> BatchContext:
        """What the hooks read about a batch; the versions before are the ones noted so far (none yet for a
        batch just started)."""
        return BatchContext(batch_id=batch_id, business_date=business_date, kind=kind, settings=self.settings,
                            engine=self.engine, ledger=self.ledger, lake=self.lake, outcome=outcome,
                            versions_before=self.ledger.table_versions(batch_id))

    def _archive(self, batch_id: str) -> int:
        """Move a committed batch's files to their recorded archive paths; returns how many moved."""
        self.prove_lease()
        moved = 0
        outcomes = {}
        for row in self.ledger.batch_files(batch_id):
            if row["status"] != L.ARCHIVING:
                continue
            if finish_move(self.landing, row["relative"], self.archive, row["archive_key"]):
                moved += 1
                crash_point("during_archive")
            self.landing.drop_copy(row["relative"], self.cache)
            outcomes[row["file_id"]] = row["outcome"]
        self.ledger.files_archived(outcomes)  # a file moved but not yet marked is finished by recovery
        return moved


__all__ = ["BatchOutcome", "FileOutcome", "Progress", "RunReport", "Session", "run"]
