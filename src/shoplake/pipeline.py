"""Runs: every waiting file of the landing store through bronze, silver and quarantine, then gold, one batch
per business date, exactly once.

The work is split along its seams:
  shoplake.session      a `Session` is one process's hold on a lake: it takes the lake's lock (a lease renewed
                        by a heartbeat thread), finishes or rolls back whatever a dead process left half-done,
                        and refuses a lake whose tables the state store cannot account for
  shoplake.intake       landed files noted in the ledger as waiting (duplicates archived), grouped by business
                        date; trigger files' promised counts; files that changed while a batch read them
  shoplake.stages       a batch's stages: bronze read, silver checks, bronze/quarantine/silver writes, gold
  shoplake.transaction  a batch's transaction: start, note versions, the hooks (shoplake.hooks) in order,
                        commit, fail or roll back, archive

A batch moves running -> committed -> succeeded (or failed):
  running    files are read and checked; the version of every table the batch may write is noted in
             the ledger, then bronze, quarantine, silver and gold are written, each commit tagged with
             the batch id; the hooks see the written versions and audit them. Killed here, the next
             session restores every noted table to its version and the files wait again: as if the batch
             had never started.
  committed  every table is written and every file's counts and archive path are in the ledger; only
             moving files to the archive is left. Killed here, the next session finishes the moves.
A batch that fails (a fail_batch rule, a failed error-level audit check, an unreadable trigger, a write
error) is rolled back the same way and its files go to archive/failed/<date>/.
"""

from __future__ import annotations

from shoplake.config import Settings
from shoplake.hooks import BatchHook
from shoplake.notify import Notifiers
from shoplake.outcomes import BatchOutcome, FileOutcome, Progress, RunReport
from shoplake.session import Session


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


__all__ = ["BatchOutcome", "FileOutcome", "Progress", "RunReport", "Session", "run"]
