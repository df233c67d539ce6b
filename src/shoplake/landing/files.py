"""Finding landed files: which feed each belongs to, its business date and its content hash."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from shoplake.contracts import ContractSet
from shoplake.landing.storage import Entry, Store

_DATE_IN_NAME = re.compile(r"(\d{4})[_-](\d{2})[_-](\d{2})")
TRIGGER_PATTERN = "trigger_*.json"


IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


@dataclass(frozen=True)
class LandedFile:
    path: Path  # a local readable copy (the file itself in a local landing folder)
    relative: str  # path inside the landing store, as the patterns see it
    feed: str | None  # None for trigger files
    business_date: date
    size: int
    sha256: str
    has_rows: bool  # False for a header-only file: two of those are alike without being the same data
    mtime: float = 0.0

    @property
    def is_trigger(self) -> bool:
        return self.feed is None


def in_progress(relative: str) -> bool:
    """By convention a file still being written is hidden (.name) or has a temporary suffix; the writer
    renames it into place when complete."""
    name = relative.rsplit("/", 1)[-1]
    return name.startswith(".") or name.lower().endswith(IN_PROGRESS_SUFFIXES)


def classify(relative: str, contracts: ContractSet) -> tuple[bool, str | None]:
    """(recognised, feed): a feed's data file, a trigger file (feed None), or neither."""
    feed = match_feed(relative, contracts)
    return (feed is not None or _glob_match(relative, TRIGGER_PATTERN)), feed


def landed_file(store: Store, entry: Entry, feed: str | None, cache: Path) -> LandedFile:
    """Hash and date one file of the landing store (downloaded to `cache` first when remote)."""
    path = store.local_copy(entry.relative, cache)
    return LandedFile(
        path=path, relative=entry.relative, feed=feed, business_date=business_date(entry.relative, entry.mtime),
        size=entry.size, sha256=sha256(path), has_rows=has_rows(path), mtime=entry.mtime,
    )


def match_feed(relative: str, contracts: ContractSet) -> str | None:
    """The feed whose file patterns match; the most specific pattern wins (order_items_* over orders_*)."""
    best: tuple[int, str] | None = None
    for contract in contracts:
        for pattern in contract.files:
            if _glob_match(relative, pattern) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), contract.feed)
    return best[1] if best else None


def _glob_match(relative: str, pattern: str) -> bool:
    """Glob matching where `*` stays within one folder: `orders/*.csv` does not match `orders/a/b.csv`."""
    parts, wanted = relative.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted, strict=True))


def business_date(relative: str, mtime: float) -> date:
    """The date in the file name (YYYY_MM_DD), else the day the file was last modified (UTC)."""
    match = _DATE_IN_NAME.search(relative.rsplit("/", 1)[-1])
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    return datetime.fromtimestamp(mtime, tz=UTC).date()


def has_rows(path: Path) -> bool:
    """Whether a file holds anything after its first line."""
    with path.open("rb") as handle:
        handle.readline()
        return bool(handle.read(1 << 12).strip())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
