"""Moving handled files out of the landing store: <archive>/processed/<date>/ or <archive>/failed/<date>/.

A file keeps its name and its own folder (the feed folder; folders above it are not kept):
`raw-data/order-items/part-0000.csv` of 2026-01-05 goes to `processed/2026-01-05/order-items/part-0000.csv`,
so the files of feed folders do not collide on their shared names. A path already taken in the archive
(the same name landed again on that date, in an earlier batch or in another folder of this one) is never
overwritten: that file gets the batch id in its name (`part-0000.<batch>.csv`, then `.<batch>.1.csv`).

The target is chosen (and written to the ledger) before the file moves, so a process killed mid-move
is finished by the next one: `finish_move` moves a file that is still in landing to its recorded target.
"""

from __future__ import annotations

from datetime import date

from shoplake.landing.storage import Store

# The archive's two folders (not file statuses, which are ledger.LOADED and ledger.FAILED).
PROCESSED_FOLDER = "processed"
FAILED_FOLDER = "failed"


def archive_target(archive: Store, outcome: str, business_date: date, relative: str, batch_id: str | None,
                   taken: set[str] | None = None) -> str:
    """A free path in the archive for a file, never overwriting an earlier file of the same path."""
    parent, _, name = relative.rpartition("/")
    parent = parent.rpartition("/")[2]  # the feed folder only: `raw-data/` above it says nothing
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = f".{suffix}" if suffix else ""
    folder = "/".join(p for p in (outcome, business_date.isoformat(), parent) if p)
    taken = taken if taken is not None else set()
    candidate = f"{folder}/{name}"
    n = 0
    while candidate in taken or archive.exists(candidate):
        n += 1
        tag = batch_id or "dup"
        candidate = f"{folder}/{stem}.{tag}{suffix}" if n == 1 else f"{folder}/{stem}.{tag}.{n - 1}{suffix}"
    taken.add(candidate)
    return candidate


def finish_move(landing: Store, relative: str, archive: Store, target: str) -> bool:
    """Move a file from landing to its recorded archive path; False when it is no longer in landing
    (the move happened already)."""
    if not landing.exists(relative):
        return False
    landing.move(relative, archive, target)
    return True
