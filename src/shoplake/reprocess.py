"""Running archived files again, and re-checking quarantined rows, after a contract or data fix.

`reprocess` moves archived files back into landing and loads them as new batches. A file that was
loaded before replaces its earlier rows: the new batch deletes what the old batch loaded from that file
(bronze, quarantine, silver: rows carry `_batch_id` and `_source_file`) in the same run, with the same
rollback protection as any batch. Files of failed batches and rejected files have no rows to replace.

The intent is written to the ledger before a file moves; if the process dies in between, the next
session finishes the move (see `Session.recover`).

`replay_quarantine` re-validates a feed's quarantined rows against the current contract: rows that
pass now move to silver, the rest stay in quarantine with their new reasons.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

from shoplake.config import Settings
from shoplake.errors import ConfigError, ShoplakeError
from shoplake.landing import ledger as L
from shoplake.notify import Notifiers
from shoplake.pipeline import Progress, RunReport, Session

SUPERSEDED = L.REPROCESSED  # ledger status of a file row whose file was sent through again


def reprocess(settings: Settings, *, batch: str | None = None, file: str | None = None, failed: bool = False,
              notifiers: Notifiers | None = None, progress: Progress | None = None) -> RunReport:
    """Load archived files again: every file of a batch, one file, or every failed file."""
    if (batch is not None) + (file is not None) + failed != 1:
        raise ConfigError("choose exactly one of --batch ID, --file PATH, --failed")
    with Session(settings, notifiers=notifiers, progress=progress) as session:
        ledger = session.ledger
        c = L.files.c
        final = c.status.in_([L.LOADED, L.FAILED])
        if batch is not None:
            if ledger.batch(batch) is None:
                raise ConfigError(f"no batch {batch} in the ledger", hint="`shoplake status` lists batches")
            rows = ledger.files_where(c.batch_id == batch, final)
        elif file is not None:
            name = Path(file).name
            rows = [r for r in ledger.files_where(final) if file in (r["path"], r["archived_path"], r["relative"])
                    or Path(r["relative"]).name == name]
            rows = rows[-1:]  # the latest file of that name
        else:
            rows = ledger.files_where(c.status == L.FAILED)
        gone = [r for r in rows if not r["archive_key"] and r["archive_deleted_at"] is not None]
        rows = [r for r in rows if r["archive_key"]]
        if not rows and gone:
            raise ShoplakeError(
                f"cannot reprocess {gone[-1]['archived_path']}: `shoplake maintain` deleted it on "
                f"{gone[-1]['archive_deleted_at']:%Y-%m-%d}, past maintenance.archive_retention_days",
                hint="the ledger still records what it loaded (`shoplake status`) and its rows stay in the lake; "
                "to load it anew, drop a corrected export (a byte-identical copy is refused as a duplicate)")
        if not rows:
            raise ShoplakeError("nothing to reprocess: no archived file matches",
                                hint="`shoplake status` shows the file ledger")
        mine = []
        for row in rows:
            if session.landing.exists(row["relative"]):
                where = session.landing.describe(row["relative"])
                raise ShoplakeError(f"cannot move {row['archived_path']} back: {where} is in landing already",
                                    hint="load or remove that file first")
            # Rows the file loaded before are replaced; a failed file's batch left none, and deleting
            # nothing costs nothing, so files of one earlier batch stay together in one new batch.
            mine.append(ledger.requeue(row["file_id"], superseded=SUPERSEDED, replaces=row["batch_id"]))
        session.move_back()
        groups = [w for w in ledger.waiting() if w.file_id in mine]
        for (_, replaces), group in groupby(sorted(groups, key=lambda w: (w.business_date, w.replaces or "")),
                                            key=lambda w: (w.business_date, w.replaces or "")):
            session.run_batch(list(group), reason="reprocess", replaces=replaces or None)
        return session.report


def replay_quarantine(settings: Settings, feed: str, *, notifiers: Notifiers | None = None,
                      progress: Progress | None = None) -> RunReport:
    """Check a feed's quarantined rows again; the ones that pass now go to silver."""
    with Session(settings, notifiers=notifiers, progress=progress) as session:
        if feed not in {c.feed for c in session.contracts}:
            raise ConfigError(f"unknown feed {feed!r}", hint="feeds: " + ", ".join(c.feed for c in session.contracts))
        session.run_batch([], reason="replay", replay=feed)
        return session.report


__all__ = ["SUPERSEDED", "replay_quarantine", "reprocess"]
