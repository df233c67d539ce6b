"""One process's hold on a lake: its lease and heartbeat, its engine, the recovery of what a dead process
left half-done, and the check that the lake's tables and the state store agree."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import date
from types import TracebackType
from typing import Any

from shoplake import intake, stages, transaction
from shoplake.alerts import alert_notifiers
from shoplake.config import Settings
from shoplake.contracts import ContractSet, LoadMode, load_contracts
from shoplake.engines import Engine, open_engine
from shoplake.errors import ConfigError, LakeStateMismatch, LeaseLost
from shoplake.hooks import BatchHook, batch_hooks
from shoplake.landing import ledger as L
from shoplake.landing.storage import Entry, LocalStore, open_store
from shoplake.layers import gold, scd2
from shoplake.layers.selection import select_models
from shoplake.notify import BATCH_ROLLED_BACK, Event, Notifiers
from shoplake.outcomes import BatchOutcome, Progress, RunReport
from shoplake.transaction import LOCK, tell_hooks

OWNER = f"{socket.gethostname()}:{os.getpid()}"


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
        self.contracts: ContractSet = load_contracts(settings.contracts)
        # Checks know every model (one of a model not built is skipped); batches build the selected ones.
        every_model = gold.load_models(settings.models, contracts=self.contracts)
        self.models = select_models(every_model, settings.gold_models)
        self.hooks: list[BatchHook] = [*batch_hooks(settings, contracts=self.contracts, models=every_model),
                                       *(hooks or [])]
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
                moved = transaction.archive(self, batch_id)
                self.ledger.set_batch(batch_id, status=batch["outcome"], finished_at=L.now())
                self.report.recovered.append(f"batch {batch_id} was committed by {batch['owner']}: finished "
                                             f"archiving ({moved} file(s) moved)")
            else:
                error = f"interrupted ({batch['owner']} stopped while it ran); rolled back"
                context = transaction.context(self, batch_id, batch["business_date"], batch["kind"],
                                              BatchOutcome(batch_id, batch["business_date"], L.ROLLED_BACK,
                                                           error=error))
                transaction.roll_back(self, batch_id, error)
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

    # -- the tables and the state store agree ------------------------------------------------------
    def _table_paths(self) -> list[str]:
        feeds = [c.feed for c in self.contracts]
        layered = [f"{self.lake}/{layer}/{feed}" for feed in feeds for layer in ("bronze", "silver", "quarantine")]
        layered += [scd2.observations_path(self.lake, c.feed) for c in self.contracts if c.load.mode is LoadMode.SCD2]
        return [*layered, *(gold.gold_path(self.lake, m.name) for m in self.models)]

    def record_tables(self, paths: Any, batch_id: str | None) -> None:
        """The tables' current versions into the state store, as left by `batch_id` (None: outside a batch)."""
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

    # -- what a session does (each in its own module) ----------------------------------------------
    def scan(self, entries: list[Entry] | None = None, *, complete: bool = True) -> list[L.Waiting]:
        """Note every (given) landed file as waiting (see `shoplake.intake.scan`)."""
        return intake.scan(self, entries, complete=complete)

    def waiting_groups(self) -> list[tuple[tuple[date, str | None], list[L.Waiting]]]:
        """Waiting files by business date (oldest first); files being reprocessed apart from new ones."""
        return intake.waiting_groups(self.ledger)

    def gold_exists(self) -> bool:
        return stages.gold_exists(self)

    def build_gold(self, tag: str | None, *, full: bool = False) -> dict[str, int]:
        """Build the models outside a batch (see `shoplake.stages.build_gold`)."""
        return stages.build_gold(self, tag, full=full)

    def run_batch(self, waiting: list[L.Waiting], *, reason: str = "run", replaces: str | None = None,
                  replay: str | None = None) -> BatchOutcome:
        """Load these waiting files (one business date) as one batch (see `shoplake.transaction`)."""
        return transaction.run_batch(self, waiting, owner=OWNER, reason=reason, replaces=replaces, replay=replay)
