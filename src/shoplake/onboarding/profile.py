"""Profiling a foreign export: the header and a sample of rows of each CSV, and what the values look like.

Only the first `SAMPLE_ROWS` rows of a file are read (with the csv module), so a large export is
profiled in moments; every finding is about the sample and says so where it is shown.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shoplake.contracts.model import ColumnType
from shoplake.layers.checks import FORMATS

SAMPLE_ROWS = 1000
# Text an export writes for a missing value; "NA" is left out because it is also a country code (Namibia).
NULL_MARKERS = ("", "NULL", "null", "Null", "None", "\\N")
_DATE_IN_NAME = re.compile(r"[_-]?\d{4}[_-]?\d{2}[_-]?\d{2}")
_INTEGER = re.compile(r"^[+-]?[0-9]+(\.0*)?$")
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# What silver's timestamp cast reads: a whole date, a time, optional fraction and an optional zone.
_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*(Z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)?$")
_BOOLEAN = {"true", "false"}  # not t/f: a gender column holds F and M
_EMAIL = re.compile(FORMATS["email"])


@dataclass
class ColumnProfile:
    header: str
    position: int
    values: list[str] = field(default_factory=list)  # non-null sample values, stripped
    nulls: Counter[str] = field(default_factory=Counter)  # null marker -> times seen

    @property
    def distinct(self) -> int:
        return len(set(self.values))

    @property
    def unique(self) -> bool:
        """Every sample row has a value and no value repeats."""
        return bool(self.values) and not self.nulls and self.distinct == len(self.values)

    @property
    def inferred(self) -> ColumnType:
        return infer_type(self.values)

    @property
    def looks_like_email(self) -> bool:
        return bool(self.values) and sum(bool(_EMAIL.match(v)) for v in self.values) >= 0.9 * len(self.values)


@dataclass
class FileProfile:
    relative: str  # path inside the export folder, with forward slashes
    stem: str  # the file name without extension and date, normalised (see `normalise`)
    columns: list[ColumnProfile]
    rows: int  # sample rows read (at most SAMPLE_ROWS)
    complete: bool  # the whole file was read

    def column(self, header: str) -> ColumnProfile:
        return next(c for c in self.columns if c.header == header)

    @property
    def null_markers(self) -> list[str]:
        seen: Counter[str] = Counter()
        for column in self.columns:
            seen.update(column.nulls)
        return [m for m in NULL_MARKERS if m in seen]


class Unreadable(Exception):
    """A file of the export that cannot be profiled; the message says why."""


def normalise(name: str) -> str:
    """A header or file name as a contract name: lower case, runs of other characters as one `_`."""
    text = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    return f"c_{text}" if text[:1].isdigit() else text


def stem_of(relative: str) -> str:
    name = relative.rsplit("/", 1)[-1]
    name = name[: -len(".csv")] if name.lower().endswith(".csv") else name
    return normalise(_DATE_IN_NAME.sub("", name)) or normalise(name)


def profile_file(path: Path, relative: str, *, sample_rows: int = SAMPLE_ROWS) -> FileProfile:
    """Header and the first `sample_rows` rows of one CSV file."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise Unreadable(f"{relative}: no header row (the file is empty or its first line is blank)")
            columns = [ColumnProfile(h.strip(), i) for i, h in enumerate(header)]
            rows = 0
            complete = True
            for row in reader:
                if rows >= sample_rows:
                    complete = False
                    break
                rows += 1
                for column, value in zip(columns, row, strict=False):
                    text = value.strip()
                    if text in NULL_MARKERS:
                        column.nulls[text] += 1
                    else:
                        column.values.append(text)
    except UnicodeDecodeError as error:
        raise Unreadable(f"{relative}: not UTF-8 encoded ({error.reason} at byte {error.start}); "
                         "export it as UTF-8") from None
    except csv.Error as error:
        raise Unreadable(f"{relative}: cannot be read as CSV ({error})") from None
    return FileProfile(relative=relative, stem=stem_of(relative), columns=columns, rows=rows, complete=complete)


def infer_type(values: list[str]) -> ColumnType:
    """The narrowest contract type every sample value converts to (string when none fits)."""
    if not values:
        return ColumnType.STRING
    if all(_INTEGER.match(v) for v in values):
        # Leading zeros (postal codes, 007) are text that would lose them; ids past 64 bits are text too.
        if any(len(v.lstrip("+-")) > 1 and v.lstrip("+-").startswith("0") and "." not in v for v in values):
            return ColumnType.STRING
        if any(len(v.lstrip("+-").split(".")[0]) > 18 for v in values):
            return ColumnType.STRING
        return ColumnType.INTEGER
    if all(_NUMBER.match(v) for v in values):
        places = max(len(v.partition(".")[2]) if "e" not in v.lower() else 99 for v in values)
        return ColumnType.DECIMAL if places <= 2 else ColumnType.DOUBLE
    if all(v.lower() in _BOOLEAN for v in values):
        return ColumnType.BOOLEAN
    if all(_DATE.match(v) for v in values):
        return ColumnType.DATE
    if all(_DATE.match(v) or _TIMESTAMP.match(v) for v in values):
        return ColumnType.TIMESTAMP
    return ColumnType.STRING
