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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import groupby
from types import TracebackType
from typing import Any

from sqlglot import exp

from shoplake.config import Settings
from shoplake.contracts import ContractSet, load_contracts
from shoplake.engines import Engine, WriteJob, open_engine
from shoplake.errors import BatchFailed, ConfigError, FileRejected, LakeStateMismatch, LeaseLost, ShoplakeError
from shoplake.faults import crash_point
from shoplake.landing import ledger as L
from shoplake.landing.archive import FAILED_FOLDER, PROCESSED_FOLDER, archive_target, finish_move
from shoplake.landing.files import classify, in_progress, landed_file
from shoplake.landing.storage import Entry, LocalStore, open_store
from shoplake.landing.triggers import read_trigger
from shoplake.layers import bronze, gold, silver
from shoplake.layers.sql import col, lit
from shoplake.notify import BATCH_FAILED, BATCH_ROLLED_BACK, FILE_DUPLICATE, FILE_FAILED, Event, Notifiers

Progress = Callable[[str, int, int], None]  # (step description, done, total)
OWNER = f"{socket.gethostname()}:{os.getpid()}"
LOCK = "lake"


@dataclass
class FileOutcome:
    file: str
    feed: str | None
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    error: str | None = None
    archived_to: str | None = None
    max_quarantine_rate: float | None = None  # its feed's limit; None: not judged (a replay, a failed file)

    @property
    def too_quarantined(self) -> bool:
        """More of its rows quarantined than its contract's max_quarantine_rate allows: the run fails (exit 1)."""
        limit = self.max_quarantine_rate
        return limit is not None and self.rows_read > 0 and self.rows_quarantined / self.rows_read > limit


@dataclass
class BatchOutcome:
    batch_id: str
    business_date: date
    status: str
    files: list[FileOutcome] = field(default_factory=list)
    rule_failures: dict[str, dict[str, int]] = field(default_factory=dict)  # feed -> rule -> rows
    error: str | None = None
    reason: str = ""  # why the batch ran (run, trigger, max_files, max_wait, reprocess, replay)
    seconds: float = 0.0


@dataclass
class RunReport:
    batches: list[BatchOutcome] = field(default_factory=list)
    skipped_duplicates: list[FileOutcome] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # entries of landing not read (links, pipes, ...)
    recovered: list[str] = field(default_factory=list)  # what was finished or rolled back first
    gold: dict[str, int] = field(default_factory=dict)
    gold_skipped: dict[str, str] = field(default_factory=dict)  # model -> why it was not built
    lake: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage, summed over batches

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started

    @property
    def failed(self) -> bool:
        return any(b.status != L.SUCCEEDED for b in self.batches) or any(
            f.status == L.FAILED or f.too_quarantined for b in self.batches for f in b.files)


def run(settings: Settings, progress: Progress | None = None, notifiers: Notifiers | None = None) -> RunReport:
    """Process every waiting file of the landing store now, one batch per business date, oldest first."""
    with Session(settings, notifiers=notifiers, progress=progress) as session:
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
                 progress: Progress | None = None) -> None:
        self.settings = settings
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
        except BaseException:
            engine.close()
            raise
        self.notifiers = notifiers or Notifiers()
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
                self._roll_back(batch_id, f"interrupted ({batch['owner']} stopped while it ran); rolled back")
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

    def build_gold(self, tag: str | None) -> dict[str, int]:
        available = silver.attach_silver(self.engine, self.contracts, self.lake)
        with self.report.timed("gold"):
            built = gold.run_models(self.engine, self.models, self.lake, available, tag=tag)
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
        run = _Batch(self, outcome, waiting, replay=replay)
        try:
            run.load()
        except LeaseLost:
            raise  # another process holds the lake now: touch nothing, it rolls this batch back
        except ShoplakeError as error:
            run.fail(str(error))
        except BaseException:
            # Interrupted (a second Ctrl-C, a bug): nothing half-written stays; the files wait again.
            if not self.lock_lost.is_set():
                self._roll_back(batch_id, "abandoned: interrupted while running; rolled back")
            raise
        outcome.seconds = time.perf_counter() - started
        self.report.batches.append(outcome)
        return outcome

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


class _Batch:
    """The steps of one batch; state shared between them lives here."""

    def __init__(self, session: Session, outcome: BatchOutcome, waiting: list[L.Waiting], *,
                 replay: str | None) -> None:
        self.s = session
        self.outcome = outcome
        self.batch_id = outcome.batch_id
        self.waiting = waiting
        self.replay = replay
        self.by_relative: dict[str, FileOutcome] = {}
        self.replaces = {w.relative: w.replaces for w in waiting if w.replaces}
        self.versions_noted = False

    def step(self, what: str, done: int, total: int) -> None:
        if self.s.progress:
            self.s.progress(f"{self.outcome.business_date} {what}", done, total)

    def load(self) -> None:
        s, engine, contracts, report = self.s, self.s.engine, self.s.contracts, self.s.report
        engine.clear()
        ingested_at = L.now()
        expected = self._triggers()
        loaded: dict[str, list[exp.Select]] = {}  # feed -> bronze rows of each of its readable files
        drifted: dict[str, list[str]] = {}
        data = [w for w in self.waiting if w.feed is not None]
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
            quarantine_mode="overwrite" if feed == self.replay else "append")]
        self._note_versions([*(j.path for j in jobs), *(gold.gold_path(s.lake, m.name) for m in s.models)])
        with report.timed("write"):
            bronze_jobs = [j for j in jobs if "/bronze/" in j.path]
            engine.write(bronze_jobs, tag=self.batch_id)
            crash_point("after_bronze")

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
        s.build_gold(tag=self.batch_id)
        crash_point("after_gold")
        # 4. Reconcile, commit, archive.
        for f in self.outcome.files:
            if f.status not in (L.FAILED, L.WAITING) and f.rows_read != (
                    f.rows_loaded + f.rows_quarantined + f.rows_duplicate):
                raise ShoplakeError(f"reconciliation broke for {f.file}: read {f.rows_read} != loaded {f.rows_loaded}"
                                    f" + quarantined {f.rows_quarantined} + duplicates {f.rows_duplicate}")
        self.commit(L.SUCCEEDED)

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
        self.s.ledger.note_table_versions(self.batch_id, {p: engine.table_version(p) for p in dict.fromkeys(paths)})
        self.versions_noted = True

    def _replaced_tables(self) -> list[str]:
        feeds = {w.feed for w in self.waiting if w.replaces and w.feed}
        layers = ("bronze", "quarantine", "silver")
        return [f"{self.s.lake}/{layer}/{feed}" for feed in sorted(feeds) for layer in layers]

    def _clear_replaced(self, paths: list[str]) -> None:
        """Delete what the earlier batch loaded from the files being reprocessed."""
        by_batch: dict[str, list[str]] = {}
        for relative, batch in self.replaces.items():
            by_batch.setdefault(batch, []).append(relative)
        for path in paths:
            feed = path.rsplit("/", 1)[-1]
            for batch, relatives in by_batch.items():
                mine = [r for r in relatives if any(w.relative == r and w.feed == feed for w in self.waiting)]
                if mine:
                    where = exp.and_(exp.EQ(this=col("_batch_id"), expression=lit(batch)),
                                     exp.In(this=col("_source_file"), expressions=[lit(r) for r in mine]))
                    self.s.engine.delete_rows(path, where, tag=self.batch_id)

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

