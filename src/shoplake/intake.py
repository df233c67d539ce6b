"""Finding a batch's files: landed files noted in the ledger as waiting (duplicates archived), grouped by
business date, the files and row counts trigger files promise, and files that changed while a batch read them."""

from __future__ import annotations

from datetime import date
from itertools import groupby
from typing import TYPE_CHECKING, Any

from shoplake.errors import BatchFailed
from shoplake.landing import ledger as L
from shoplake.landing.archive import FAILED_FOLDER, archive_target, finish_move
from shoplake.landing.files import classify, in_progress, landed_file
from shoplake.landing.storage import Entry
from shoplake.landing.triggers import read_trigger
from shoplake.notify import FILE_DUPLICATE, Event
from shoplake.outcomes import FileOutcome

if TYPE_CHECKING:
    from shoplake.session import Session


def scan(session: Session, entries: list[Entry] | None = None, *, complete: bool = True) -> list[L.Waiting]:
    """Note every (given) landed file in the ledger as waiting; duplicates of loaded files are archived.

    `complete`: the entries are the whole listing, so waiting files no longer there are forgotten.
    """
    s, report = session, session.report
    listing = s.landing.list() if entries is None else entries
    report.refused = [r.message for r in s.landing.refused]
    known = {w.relative: w for w in s.ledger.waiting()}
    seen = set()
    fresh: list[dict[str, Any]] = []
    here: dict[str, str] = {}  # sha256 -> file noted in this scan
    for entry in listing:
        if in_progress(entry.relative):
            continue
        recognised, feed = classify(entry.relative, s.contracts)
        if not recognised:
            where = s.landing.describe(entry.relative)
            if where not in report.unrecognised:
                report.unrecognised.append(where)
            continue
        seen.add(entry.relative)
        noted = known.get(entry.relative)
        if noted is not None and noted.size == entry.size and noted.mtime == entry.mtime:
            continue
        try:
            landed = landed_file(s.landing, entry, feed, s.cache, timezone=s.settings.timezone,
                                 arrived_at=noted.detected_at if noted else None)
        except FileNotFoundError:
            continue
        where = s.landing.describe(entry.relative)
        if landed.has_rows and not landed.is_trigger and (noted is None or noted.replaces is None):
            earlier = here.get(landed.sha256) or s.ledger.known_file_with_hash(
                landed.sha256, excluding=noted.file_id if noted else None)
            if earlier is not None:
                archive_duplicate(s, entry.relative, where, landed.feed, landed.business_date, landed.size,
                                  landed.sha256, earlier)
                continue
            here[landed.sha256] = where
        fresh.append(dict(relative=entry.relative, path=where, feed=feed, business_date=landed.business_date,
                          size=landed.size, sha256=landed.sha256, mtime=entry.mtime,
                          replaces=noted.replaces if noted else None))
    s.ledger.note_waiting(fresh)
    if complete:
        for relative, noted in known.items():
            if relative not in seen and noted.replaces is None and not s.landing.exists(relative):
                s.ledger.forget_waiting(relative)
    return s.ledger.waiting()


def archive_duplicate(session: Session, relative: str, where: str, feed: str | None, business_date: date,
                      size: int, digest: str, earlier: str) -> None:
    """A file with the same content as one already loaded goes to archive/failed/ without a batch."""
    s = session
    s.prove_lease()
    target = archive_target(s.archive, FAILED_FOLDER, business_date, relative, None)
    error = f"duplicate: same content (sha256 {digest[:12]}…) as {earlier}"
    s.ledger.record_file(path=where, relative=relative, archived_path=s.archive.describe(target),
                         archive_key=target, size=size, sha256=digest, feed=feed,
                         business_date=business_date, status=L.DUPLICATE, error=error, processed_at=L.now())
    finish_move(s.landing, relative, s.archive, target)
    s.report.skipped_duplicates.append(FileOutcome(relative, feed, L.DUPLICATE, error=error,
                                                   archived_to=s.archive.describe(target)))
    s.notifiers.send(Event(FILE_DUPLICATE, error, file=where))


def waiting_groups(ledger: L.Ledger) -> list[tuple[tuple[date, str | None], list[L.Waiting]]]:
    """Waiting files by business date (oldest first); files being reprocessed apart from new ones."""
    def key(w: L.Waiting) -> tuple[date, str]:
        return (w.business_date, w.replaces or "")

    ordered = sorted(ledger.waiting(), key=lambda w: (*key(w), w.feed or "~", w.relative))
    return [((d, r or None), list(group)) for (d, r), group in groupby(ordered, key=key)]


def promised_counts(session: Session, waiting: list[L.Waiting]) -> dict[str, int | None]:
    """Files (by name) and row counts that the batch's trigger files promise; a missing one fails."""
    expected: dict[str, int | None] = {}
    names = {w.relative for w in waiting} | {w.relative.rsplit("/", 1)[-1] for w in waiting}
    for w in waiting:
        if w.feed is not None:
            continue
        path = session.landing.local_copy(w.relative, session.cache, reuse=True)
        listed = read_trigger(path, w.path)
        missing = [name for name in listed if name not in names]
        if missing:
            raise BatchFailed(f"{w.path} lists {len(missing)} file(s) that have not arrived: "
                              + ", ".join(sorted(missing)[:10]),
                              hint="drop the missing files, then `shoplake reprocess --failed`")
        expected.update(listed)
    return expected


def count_mismatches(files: list[FileOutcome], expected: dict[str, int | None]) -> list[str]:
    """The files that do not have the rows a trigger file promises, each said in a phrase."""
    wrong = []
    for f in files:
        rows = expected.get(f.file, expected.get(f.file.rsplit("/", 1)[-1]))
        if rows is not None and f.rows_read != rows:
            wrong.append(f"{f.file} has {f.rows_read} rows, the trigger file lists {rows}")
        elif rows is not None and f.status == L.FAILED:
            wrong.append(f"{f.file} could not be read ({f.error})")
    return wrong


def verify_counts(files: list[FileOutcome], expected: dict[str, int | None]) -> None:
    """Every file a trigger file counts has the rows it promises, else the batch fails."""
    wrong = count_mismatches(files, expected)
    if wrong:
        raise BatchFailed("row counts do not match the trigger file: " + "; ".join(wrong),
                          hint="a short file is usually an incomplete upload: drop it again, then "
                          "`shoplake reprocess --failed`")


def changed_since_hashed(session: Session, w: L.Waiting, waiting: list[L.Waiting],
                         by_relative: dict[str, FileOutcome]) -> bool:
    """Whether a file is no longer the one its ledger hash was taken of (its sender is still writing it,
    or sent it again). Then it leaves the batch (`waiting`, `by_relative`) and waits to settle: the next
    scan hashes the new bytes, so the ledger's hash is always the hash of the bytes loaded."""
    entry = session.landing.stat(w.relative)
    if entry is None:
        raise FileNotFoundError(w.relative)
    if w.mtime is None or (entry.size, entry.mtime) == (w.size, w.mtime):
        return False
    waiting.remove(w)
    f = by_relative.pop(w.relative)
    f.rows_read = 0
    f.status, f.error = L.WAITING, f"{w.path} changed while the batch read it; it waits to settle and loads later"
    session.ledger.update_file(w.file_id, status=L.WAITING, batch_id=None, mtime=None)
    return True
