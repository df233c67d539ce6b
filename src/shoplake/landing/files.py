"""Finding landed files: which feed each belongs to, its business date and its content hash.

A feed's `files` patterns name files at landing's top level (`orders_*.csv`) or in a feed folder
(`orders/*.csv`). A folder pattern matches that folder anywhere under landing, and folder names compare
with case, `-` and `_` alike: a drop laid out as `raw-data/order-items/part-0000.csv` is order_items.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from shoplake.contracts import ContractSet
from shoplake.contracts.formats import Compression, file_kind, same_feed_name
from shoplake.contracts.model import FileFormat
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


def landed_file(store: Store, entry: Entry, feed: str | None, cache: Path, *, arrived_at: datetime | None = None,
                timezone: str = "UTC") -> LandedFile:
    """Hash and date one file of the landing store (downloaded to `cache` first when remote).

    `arrived_at`: when shoplake first saw the file (default now); it dates a file without a date in its name."""
    path = store.local_copy(entry.relative, cache)
    return LandedFile(
        path=path, relative=entry.relative, feed=feed,
        business_date=business_date(entry.relative, arrived_at or datetime.now(UTC), timezone),
        size=entry.size, sha256=sha256(path), has_rows=has_rows(path), mtime=entry.mtime,
    )


def match_feed(relative: str, contracts: ContractSet) -> str | None:
    """The feed whose file patterns match; the most specific pattern wins (order_items_* over orders_*)."""
    best: tuple[int, str] | None = None
    for contract in contracts:
        for pattern in contract.files:
            if _feed_match(relative, pattern, contract.format) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), contract.feed)
    return best[1] if best else None


def _feed_match(relative: str, pattern: str, declared: FileFormat | None) -> bool:
    """The pattern as written, or as it stands for the feed's files in another format (`orders_*.csv`
    matches `orders_2026_01_05.parquet` and `orders_2026_01_05.csv.gz`: see contracts/formats.py)."""
    if _glob_match(relative, pattern):
        return True
    stems = same_feed_name(relative, pattern, declared)
    return stems is not None and _glob_match(*stems)


def _glob_match(relative: str, pattern: str) -> bool:
    """Glob matching where `*` stays within one folder: `orders/*.csv` does not match `orders/a/b.csv`.

    A pattern with folders matches the path's last folders (any folders may lead, as in `raw-data/`),
    their names compared by `folder_key`; a pattern without one matches top-level files only."""
    parts, wanted = relative.split("/"), pattern.split("/")
    if len(wanted) == 1:
        return len(parts) == 1 and fnmatch.fnmatchcase(parts[0], wanted[0])
    if len(parts) < len(wanted):
        return False
    tail = parts[len(parts) - len(wanted):]
    folders_match = all(fnmatch.fnmatchcase(folder_key(p), folder_key(w))
                        for p, w in zip(tail[:-1], wanted[:-1], strict=True))
    return folders_match and fnmatch.fnmatchcase(tail[-1], wanted[-1])


def folder_key(name: str) -> str:
    """A folder name as feeds compare it: exports spell `order_items` as `order-items` or `Order_Items`."""
    return name.lower().replace("-", "_")


def business_date(relative: str, arrived_at: datetime, timezone: str = "UTC") -> date:
    """The date in the file name (YYYY_MM_DD), else the shop-local day (`timezone`) the file arrived.

    Not its modification time: a copy or a sync tool sets that to anything, and an export's
    modification day is not the day it was delivered."""
    match = _DATE_IN_NAME.search(relative.rsplit("/", 1)[-1])
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    if arrived_at.tzinfo is None:  # the state store keeps UTC without a zone
        arrived_at = arrived_at.replace(tzinfo=UTC)
    return arrived_at.astimezone(ZoneInfo(timezone)).date()


def has_rows(path: Path) -> bool:
    """Whether a file holds anything after its first line (a compressed one: once uncompressed).

    A Parquet, XLSX or JSON file is taken to have rows: telling would mean reading it, and the worst a
    rowless one does is be archived as the duplicate of an identical rowless file."""
    kind = file_kind(path.name, None)
    if kind.format is not FileFormat.CSV:
        return True
    try:
        with _open_uncompressed(path, kind.compression) as handle:
            handle.readline()
            return bool(handle.read(1 << 12).strip())
    except (OSError, EOFError, zipfile.BadZipFile):  # a corrupt archive is rejected, by name, when it is read
        return True


def _open_uncompressed(path: Path, compression: Compression | None) -> io.BufferedIOBase:
    if compression is Compression.GZIP:
        return gzip.open(path, "rb")
    if compression is Compression.ZIP:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                return io.BytesIO(b"\n-")  # rejected when read; counts as having rows meanwhile
            with archive.open(members[0]) as member:
                return io.BytesIO(member.read(1 << 16))
    return path.open("rb")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
