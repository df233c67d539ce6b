"""Finding landed files: which feed each belongs to, its business date and its content hash."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from shoplake.contracts import ContractSet

_DATE_IN_NAME = re.compile(r"(\d{4})[_-](\d{2})[_-](\d{2})")
TRIGGER_PATTERN = "trigger_*.json"


@dataclass(frozen=True)
class LandedFile:
    path: Path
    relative: str  # path inside the landing folder, as the patterns see it
    feed: str | None  # None for trigger files
    business_date: date
    size: int
    sha256: str
    has_rows: bool  # False for a header-only file: two of those are alike without being the same data

    @property
    def is_trigger(self) -> bool:
        return self.feed is None


@dataclass(frozen=True)
class Discovery:
    files: list[LandedFile]
    unrecognised: list[Path]  # files that match no contract; left where they are


def discover(landing: Path, contracts: ContractSet) -> Discovery:
    """Every waiting file of the landing folder (and its feed sub-folders), sorted by business date."""
    if not landing.is_dir():
        from shoplake.errors import ConfigError

        raise ConfigError(f"landing folder {landing} does not exist", hint="create it or set landing in shoplake.yml")
    found: list[LandedFile] = []
    unrecognised: list[Path] = []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        relative = path.relative_to(landing).as_posix()
        if path.name.startswith("."):
            continue  # by convention, an upload in progress
        feed = match_feed(relative, contracts)
        if feed is None and not _glob_match(relative, TRIGGER_PATTERN):
            unrecognised.append(path)
            continue
        found.append(LandedFile(
            path=path, relative=relative, feed=feed, business_date=business_date(path),
            size=path.stat().st_size, sha256=sha256(path), has_rows=has_rows(path),
        ))
    found.sort(key=lambda f: (f.business_date, f.feed or "~", f.relative))
    return Discovery(found, unrecognised)


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


def business_date(path: Path) -> date:
    """The date in the file name (YYYY_MM_DD), else the day the file was last modified (UTC)."""
    match = _DATE_IN_NAME.search(path.name)
    if match:
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            pass
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date()


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
