"""What a file's name says about how to read it: its format (by extension, unless its contract declares
one) and its compression (`.gz`, `.zip`, for the text formats only)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shoplake.contracts.model import FileFormat

EXTENSIONS = {
    ".csv": FileFormat.CSV,
    ".ndjson": FileFormat.NDJSON,
    ".jsonl": FileFormat.NDJSON,
    ".json": FileFormat.JSON,
    ".parquet": FileFormat.PARQUET,
    ".xlsx": FileFormat.XLSX,
}
TEXT_FORMATS = frozenset({FileFormat.CSV, FileFormat.NDJSON, FileFormat.JSON})  # the ones that come compressed


class Compression(StrEnum):
    GZIP = "gzip"
    ZIP = "zip"  # an archive holding one file


COMPRESSIONS = {".gz": Compression.GZIP, ".zip": Compression.ZIP}


@dataclass(frozen=True)
class FileKind:
    format: FileFormat
    compression: Compression | None = None

    def describe(self) -> str:
        return self.format.value + (f" ({self.compression.value})" if self.compression else "")


@dataclass(frozen=True)
class FileRead:
    """How an engine reads one file that its CSV reader does not: its kind, the field each staged column
    reads (by position; a JSON field is a path of keys, `("context", "device")`) and, for a workbook, the
    sheet (None: the first)."""

    kind: FileKind
    fields: tuple[tuple[str, ...], ...]
    sheet: str | None = None


def split_name(name: str) -> tuple[str, FileFormat | None, Compression | None]:
    """(the name without its format and compression suffixes, the format, the compression) as the suffixes
    say; a suffix shoplake does not know is left in the name (format None)."""
    stem, compression = name, None
    for suffix, kind in COMPRESSIONS.items():
        if stem.lower().endswith(suffix):
            stem, compression = stem[: -len(suffix)], kind
            break
    for suffix, file_format in EXTENSIONS.items():
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)], file_format, compression
    return name, None, None


def file_kind(name: str, declared: FileFormat | None) -> FileKind:
    """How to read a file: the contract's `format:` when it declares one, else the extension's; a name
    with neither reads as CSV (what shoplake read before it knew other formats)."""
    _, by_name, compression = split_name(name)
    if compression is None:  # `orders.log.gz` with `format: ndjson` is still gzip
        lowered = name.lower()
        compression = next((kind for suffix, kind in COMPRESSIONS.items() if lowered.endswith(suffix)), None)
    file_format = declared or by_name or FileFormat.CSV
    if file_format not in TEXT_FORMATS:
        compression = None  # a Parquet or XLSX file is compressed inside; `.zip` is read by its own reader
    return FileKind(file_format, compression)


def same_feed_name(name: str, pattern: str, declared: FileFormat | None) -> tuple[str, str] | None:
    """A pattern names its feed's files in every format shoplake reads: `orders_*.csv` stands for
    `orders_*.parquet`, `orders_*.csv.gz`, `orders_*.ndjson`... too (only the declared format's files when
    the contract has a `format:`). Returns (name, pattern) without their suffixes, to be globbed, or None
    when the pair is not of that kind."""
    stem, file_format, compression = split_name(name)
    pattern_stem, pattern_format, pattern_compression = split_name(pattern)
    if file_format is None or pattern_format is None or pattern_compression is not None:
        return None
    if declared is not None and file_format is not declared:
        return None
    if compression is not None and file_format not in TEXT_FORMATS:
        return None
    return stem, pattern_stem
