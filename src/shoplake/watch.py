"""`shoplake watch`: run batches as files arrive, until stopped.

The watcher learns of files from filesystem events (watchdog) on a local landing folder and from a
full listing every `scan_seconds` (the safety net for missed events, and the only source on object
storage). A file is read only once it is complete: its size and modification time have not changed
for `settle_seconds`, and its name is not hidden (`.name`) or temporary (`.tmp`, `.part`, ...) — a
writer that uploads under such a name and renames into place is never read half-written. A trigger file
that is one whole JSON object is read at once, when every other file has settled: the batch it starts
does not wait out the settle interval a second time.

Stopping: the first SIGINT/SIGTERM lets the batch in flight finish, then the watcher exits; a second
one abandons that batch, which is rolled back (its files wait for the next start).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shoplake.config import Settings
from shoplake.errors import ShoplakeError
from shoplake.landing import ledger as L
from shoplake.landing.files import classify, in_progress
from shoplake.landing.policy import ready_batches
from shoplake.landing.storage import Entry, LocalStore
from shoplake.landing.triggers import MAX_TRIGGER_BYTES, is_whole
from shoplake.monitor import MonitorSchedule
from shoplake.notify import Notifiers
from shoplake.pipeline import BatchOutcome, Session


@dataclass
class Stability:
    """Which listed files have stopped changing: (size, mtime) unchanged for `settle` seconds."""

    settle: float
    seen: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # relative -> size, mtime, since
    settling: bool = False  # some listed file has not settled yet: look again soon

    def stable(self, listing: list[Entry], clock: float,
               whole: Callable[[Entry], bool] | None = None) -> list[Entry]:
        """The listed files that have settled. `whole`: whether a file is a trigger file that is complete
        as it stands (`triggers.is_whole`); once every other file has settled, such a trigger is ready
        without its own wait: it is the sender saying the date is complete, written after its files."""
        ready: list[Entry] = []
        unsettled: list[Entry] = []
        current = {}
        for entry in listing:
            if in_progress(entry.relative):
                continue
            size, mtime, since = self.seen.get(entry.relative, (-1, -1.0, clock))
            if (size, mtime) != (entry.size, entry.mtime):
                since = clock
            current[entry.relative] = (entry.size, entry.mtime, since)
            (ready if clock - since >= self.settle else unsettled).append(entry)
        if whole is not None and unsettled and all(whole(entry) for entry in unsettled):
            ready.extend(unsettled)
        self.seen = current
        self.settling = len(ready) < len(current)
        return ready


class Watcher:
    def __init__(self, settings: Settings, *, notifiers: Notifiers | None = None,
                 on_batch: Callable[[BatchOutcome], None] | None = None,
                 on_idle: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.notifiers = notifiers
        self.on_batch = on_batch
        self.on_idle = on_idle
        self.stop = threading.Event()  # set: finish the batch in flight, then return
        self._dirty = threading.Event()

    def run(self) -> list[BatchOutcome]:
        """Watch until `stop` is set; returns the batches run."""
        s = self.settings
        done: list[BatchOutcome] = []
        with Session(s, notifiers=self.notifiers) as session:
            observer = self._observe(session)
            stability = Stability(s.settle_seconds)
            last_scan = -float("inf")
            tick = min(max(s.settle_seconds / 4, 0.05), 1.0)
            checkup = MonitorSchedule(s, session.notifiers)  # every monitor_every seconds, between batches
            try:
                while not self.stop.is_set():
                    clock = time.monotonic()
                    if self._dirty.is_set() or stability.settling or clock - last_scan >= s.scan_seconds:
                        self._dirty.clear()
                        full = clock - last_scan >= s.scan_seconds
                        listing = session.landing.list()
                        last_scan = clock if full else last_scan
                        stable = stability.stable(listing, clock, whole=lambda e: self._whole_trigger(session, e))
                        if stable or full:
                            session.scan(stable, complete=False)
                    for ready in ready_batches(session.ledger.waiting(), s.batching, L.now(),
                                               session.ledger.latest_loaded_date()):
                        if self.stop.is_set():
                            break
                        if ready.reason == "max_files" and stability.settling:
                            continue  # a burst is still landing: take it whole once it settles

                        outcome = session.run_batch(ready.files, reason=ready.reason, replaces=ready.replaces)
                        done.append(outcome)
                        if self.on_batch:
                            self.on_batch(outcome)
                    if session.lock_lost.is_set():
                        break
                    checkup.tick(time.monotonic())
                    self._dirty.wait(tick)
            finally:
                if observer is not None:
                    observer.stop()
                    observer.join()
        return done

    @staticmethod
    def _whole_trigger(session: Session, entry: Entry) -> bool:
        """Whether `entry` is a trigger file whose content is complete as it stands (`triggers.is_whole`)."""
        recognised, feed = classify(entry.relative, session.contracts)
        if not recognised or feed is not None or not 0 < entry.size <= MAX_TRIGGER_BYTES:
            return False
        try:
            with session.landing.local_copy(entry.relative, session.cache).open("rb") as handle:
                return is_whole(handle.read(MAX_TRIGGER_BYTES + 1))
        except (OSError, ShoplakeError):  # gone or replaced meanwhile: it settles as any file
            return False

    def _observe(self, session: Session) -> Any:
        """Filesystem events for a local landing folder; None on object storage (listing only)."""
        if not isinstance(session.landing, LocalStore):
            return None
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        dirty = self._dirty

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if not event.is_directory:
                    dirty.set()

        observer = Observer()
        observer.schedule(Wake(), str(session.landing.root), recursive=True)
        observer.start()
        return observer
