"""Upkeep of a lake: compact small files, vacuum old table versions, delete archived files past retention.

`maintain` holds the lake's lease like a batch (a `Session`), so it never runs beside one; it first
finishes or rolls back whatever a dead batch left (rolling back needs the old versions' files, which a
vacuum would delete). Every Delta commit it makes draws a fence, so a maintain that stalled past its
lease is refused by the tables a later holder wrote.

An archived file past `maintenance.archive_retention_days` is deleted from the archive; its ledger row
keeps what it loaded (counts, hash: a copy dropped again is still a duplicate) and records when the file
went (`archive_deleted_at`), so `reprocess` says the file is gone instead of looking for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shoplake.config import Settings
from shoplake.landing import ledger as L
from shoplake.landing.archive import FAILED_FOLDER, PROCESSED_FOLDER
from shoplake.layers import gold
from shoplake.outcomes import Progress
from shoplake.pipeline import Session

LAYERS = ("bronze", "silver", "quarantine")
# Ledger statuses of a file that is in the archive for good (a waiting or archiving row is on its way).
_ARCHIVED = (L.LOADED, L.FAILED, L.DUPLICATE)


@dataclass
class TableUpkeep:
    """What maintain did (or, in a dry run, would do) to one Delta table."""

    table: str  # layer/name
    files_compacted: int = 0  # small files replaced (0 in a dry run: compaction is not simulated)
    files_written: int = 0  # the files that replaced them
    files_vacuumed: list[str] = field(default_factory=list)  # data files deleted (dry run: that would be)
    bytes_vacuumed: int | None = 0  # None: the store cannot tell without reading every object


@dataclass(frozen=True)
class ArchivedFile:
    """An archived landing file past its retention: deleted (dry run: would be)."""

    path: str
    feed: str | None
    business_date: str
    archived_at: datetime
    size: int


@dataclass
class MaintainReport:
    dry_run: bool
    vacuum_retention_hours: int
    archive_retention_days: float | None
    tables: list[TableUpkeep] = field(default_factory=list)
    archived: list[ArchivedFile] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bytes_freed(self) -> int:
        """Bytes of vacuumed table files (where the store told) and of deleted archived files."""
        return sum(t.bytes_vacuumed or 0 for t in self.tables) + sum(a.size for a in self.archived)


def maintain(settings: Settings, *, dry_run: bool = False, progress: Progress | None = None) -> MaintainReport:
    """Compact and vacuum every lake table, then delete archived files past their retention."""
    started = time.perf_counter()
    upkeep = settings.maintenance
    report = MaintainReport(dry_run=dry_run, vacuum_retention_hours=upkeep.vacuum_retention_hours,
                            archive_retention_days=upkeep.archive_retention_days)
    with Session(settings, progress=progress) as session:
        report.recovered = list(session.report.recovered)
        engine = session.engine
        paths = [p for p in _lake_tables(session) if engine.table_version(p) is not None]
        for i, path in enumerate(paths):
            name = path.removeprefix(session.lake + "/")
            if progress:
                progress(f"maintaining {name}", i, len(paths))
            done = TableUpkeep(table=name)
            if not dry_run:
                session.prove_lease()
                compacted = engine.compact(path, target_size=upkeep.compact_target_size)
                done.files_compacted, done.files_written = compacted.files_removed, compacted.files_added
            vacuumed = engine.vacuum(path, retention_hours=upkeep.vacuum_retention_hours, dry_run=dry_run)
            done.files_vacuumed, done.bytes_vacuumed = vacuumed.files, vacuumed.bytes
            report.tables.append(done)
        if not dry_run:
            # The tables' new versions are the ones the next session expects (see Session.verify_tables).
            session.ledger.record_table_states({p: engine.table_version(p) for p in paths}, None)
        if upkeep.archive_retention_days is not None:
            for row in _archived_past(session.ledger, upkeep.archive_retention_days):
                report.archived.append(ArchivedFile(
                    path=session.archive.describe(row["archive_key"]), feed=row["feed"],
                    business_date=str(row["business_date"]), archived_at=row["processed_at"], size=row["size"]))
                if not dry_run:
                    session.prove_lease()
                    session.archive.delete(row["archive_key"])
                    session.ledger.archive_deleted(row["archive_key"])
    report.seconds = time.perf_counter() - started
    return report


def _lake_tables(session: Session) -> list[str]:
    """Every table the contracts and models in force can write."""
    feeds = [c.feed for c in session.contracts]
    return [*(f"{session.lake}/{layer}/{feed}" for feed in feeds for layer in LAYERS),
            *(gold.gold_path(session.lake, m.name) for m in session.models)]


def _archived_past(ledger: L.Ledger, days: float) -> list[dict[str, Any]]:
    """Ledger rows of archived files (processed/ or failed/) archived more than `days` ago.

    An archive path can be named by several rows (a file reprocessed and archived to the same path
    again); only its newest row says when the file there was archived."""
    cutoff = L.now() - timedelta(days=days)
    newest: dict[str, dict[str, Any]] = {}
    for row in ledger.files_where(L.files.c.archive_key.is_not(None)):
        newest[row["archive_key"]] = row  # rows come in file_id order: the last one wins
    return [row for key, row in newest.items()
            if key.startswith((f"{PROCESSED_FOLDER}/", f"{FAILED_FOLDER}/")) and row["status"] in _ARCHIVED
            and row["processed_at"] is not None and row["processed_at"] < cutoff]


__all__ = ["ArchivedFile", "MaintainReport", "TableUpkeep", "maintain"]
