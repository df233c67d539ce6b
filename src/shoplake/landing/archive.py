"""Moving handled files out of the landing store: <archive>/processed/<date>/ or <archive>/failed/<date>/.

The target is chosen (and written to the ledger) before the file moves, so a process killed mid-move
is finished by the next one: `finish_move` moves a file that is still in landing to its recorded target.
"""

from __future__ import annotations

from datetime import date

from shoplake.landing.storage import Store

PROCESSED = "processed"
FAILED = "failed"


def archive_target(archive: Store, outcome: str, business_date: date, relative: str, batch_id: str | None,
                   taken: set[str] | None = None) -> str:
    """A free path in the archive for a file, never overwriting an earlier file of the same name."""
    name = relative.rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    suffix = f".{suffix}" if suffix else ""
    folder = f"{outcome}/{business_date.isoformat()}"
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
