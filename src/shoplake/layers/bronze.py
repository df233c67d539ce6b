"""Bronze: every row of every landed file, as text, with where it came from.

A file is first sniffed here in plain Python (empty, binary, not UTF-8, no header), so an unreadable
file is rejected with a reason before any engine touches it; then the engine reads it as text and
the rows are added to the batch's bronze table for its feed. A file in another format (NDJSON, JSON,
Parquet, XLSX; see engines/formats.py) has its fields listed instead of a header sniffed, and lines up
with its contract the same way.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlglot import exp

from shoplake.contracts import Contract, DriftPolicy
from shoplake.contracts.expressions import key_sources
from shoplake.contracts.formats import Compression, FileKind, FileRead, file_kind
from shoplake.contracts.model import FileFormat
from shoplake.engines import Engine
from shoplake.engines.formats import fields_of, local_file
from shoplake.errors import EngineError, FileRejected, ShoplakeError
from shoplake.layers.sql import alias, cast, col, lit, select, table

SNIFF_BYTES = 1 << 16
# A header of thousands of columns is read whole up to this width; it stays below the engines' limit on
# a line (2,000,000 bytes), so a header accepted here is one they can read.
MAX_HEADER_BYTES = 1 << 20
MAX_FOUND_SHOWN = 40  # header names listed when a needed one is missing (a wide file has thousands)
META_COLUMNS = ("_rescued", "_source_file", "_row_number", "_batch_id", "_ingested_at")


@dataclass(frozen=True)
class Layout:
    """How a file's header lines up with its contract, position by position.

    Header names never reach SQL: the engine reads the file's columns by position, a matched position
    is named after its contract column, any other one is kept in `_rescued` under its header name.
    """

    targets: list[str]  # per position: the contract column it feeds, or a staging name of its own
    matched: dict[str, int]  # contract column -> position in the file
    extra: list[tuple[int, str]]  # (position, name in _rescued) of columns the contract does not know
    missing: list[str]  # contract columns absent from the file
    absent_needed: str | None = None  # why the file lacks a column its rows need (rejected once it parses)
    read: FileRead | None = None  # how the engine reads a file its CSV reader does not (None: a plain CSV)

    @property
    def drifted(self) -> bool:
        return bool(self.extra or self.missing)

    def describe(self) -> str:
        parts = []
        if self.extra:
            parts.append(f"unexpected column(s) {', '.join(name for _, name in self.extra)}")
        if self.missing:
            parts.append(f"missing column(s) {', '.join(self.missing)}")
        return "; ".join(parts)


def bronze_table(feed: str) -> str:
    return f"bronze__{feed}"


def sniff(path: Path, contract: Contract) -> Layout:
    """Check that a file is a readable CSV with a header (or a readable file of its format), and line its
    header (its fields) up with the contract."""
    size = path.stat().st_size
    if size == 0:
        raise FileRejected(str(path), "file is empty (0 bytes)")
    kind = file_kind(path.name, contract.format)
    if kind.format is not FileFormat.CSV:
        return _sniff_fields(path, contract, kind)
    try:
        with _open_csv(path, kind) as handle:
            head = handle.read(SNIFF_BYTES)
            first_line, newline, _ = head.partition(b"\n")
            if not newline and len(head) == SNIFF_BYTES:  # a wide header runs on past the sniffed bytes
                first_line += handle.readline(MAX_HEADER_BYTES + 1 - len(first_line)).removesuffix(b"\n")
    except (OSError, EOFError, zipfile.BadZipFile) as error:  # gzip.BadGzipFile is an OSError
        raise FileRejected(str(path), f"truncated or corrupt {kind.compression} file ({error})") from None
    except EngineError as error:
        raise FileRejected(str(path), error.message) from None
    if b"\x00" in head or b"\x00" in first_line:
        raise FileRejected(str(path), "binary content (NUL bytes), not a CSV text file")
    first_line = first_line.rstrip(b"\r")
    if len(first_line) > MAX_HEADER_BYTES:
        raise FileRejected(str(path), f"no line break in the first {MAX_HEADER_BYTES:,} bytes: the header row is "
                           "wider than shoplake reads, or the file has no line breaks; export one row per line")
    if head.startswith(b"\xef\xbb\xbf"):
        first_line = first_line[3:]
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileRejected(
            str(path), f"not UTF-8 encoded (byte 0x{first_line[error.start]:02x} at offset {error.start} of the header)"
        ) from None
    if not text.strip():
        raise FileRejected(str(path), "no header row (the first line is blank)")
    try:
        header = [name.strip() for name in next(csv.reader([text]))]
    except csv.Error as error:  # such as a name longer than the csv module reads (128 KB)
        raise FileRejected(str(path), f"the header row cannot be read as CSV: {error}") from None
    read = FileRead(kind, ()) if kind.compression is Compression.ZIP else None
    return _line_up(path, contract, header, f"the first line {text[:120]!r}", read=read)


def _open_csv(path: Path, kind: FileKind) -> io.BufferedIOBase:
    if kind.compression is Compression.GZIP:
        return gzip.open(path, "rb")
    return local_file(path, kind).open("rb")  # a zip's member, extracted once for the engine too


def _sniff_fields(path: Path, contract: Contract, kind: FileKind) -> Layout:
    """A file of another format: its fields (a JSON record's keys, a Parquet file's columns, a sheet's
    first row) stand for a header. A JSON column's `source:` may be a path into nested objects
    (`context.device`): its first key is then read through that path, and not rescued."""
    read = FileRead(kind, (), contract.sheet)
    try:
        header = fields_of(path, read)  # as the file spells them: a JSON key or Parquet column is read by name
    except EngineError as error:
        raise FileRejected(str(path), error.message) from None
    if not header:
        raise FileRejected(str(path), f"no fields: the {kind.describe()} file holds no records, or only empty ones")
    fields: list[tuple[str, ...]] = [(name,) for name in header]
    consumed: set[str] = set()
    if kind.format in (FileFormat.NDJSON, FileFormat.JSON):
        roots = {name.strip().lower(): name for name in header}
        for column in contract.columns:
            first, *rest = column.header.split(".")
            if rest and column.header.lower() not in roots and first.lower() in roots:
                fields.append((roots[first.lower()], *rest))
                consumed.add(first.lower())
    names = [".".join(keys).strip() for keys in fields]
    shown = f"the fields {', '.join(header[:12])[:120]!r}"
    return _line_up(path, contract, names, shown, read=FileRead(kind, tuple(fields), contract.sheet),
                    consumed=consumed)


def _line_up(path: Path, contract: Contract, header: list[str], shown: str, *, read: FileRead | None,
             consumed: set[str] | None = None) -> Layout:
    """Match a file's header names to its contract's columns (see Layout); `consumed`: names read through
    a nested path, neither matched nor rescued."""
    counts = Counter(header)  # counted once: a wide header has thousands of names
    wanted = {c.header.lower(): c.name for c in contract.columns}
    matched: dict[str, int] = {}
    targets: list[str] = []
    extra: list[tuple[int, str]] = []
    for position, name in enumerate(header):
        column = wanted.get(name.lower())
        if column is not None and column not in matched:
            matched[column] = position
            targets.append(column)
        elif consumed and name.lower() in consumed:
            targets.append(f"_extra_{position}")
        else:  # unknown, repeated or empty header names are rescued, under a name of their own
            rescued = name if name and counts[name] == 1 else f"{name or 'column'}_{position + 1}"
            extra.append((position, rescued))
            targets.append(f"_extra_{position}")
    if not matched:
        expected = ", ".join(c.header for c in contract.columns)
        raise FileRejected(
            str(path),
            f"no header row: {shown} names no column of feed {contract.feed} "
            f"(expected {expected})",
        )
    missing = [c.name for c in contract.columns if c.name not in matched]
    layout = Layout(targets=targets, matched=matched, extra=extra, missing=missing,
                    absent_needed=_absent_needed(contract, missing, header), read=read)
    if layout.drifted and contract.schema_drift is DriftPolicy.FAIL:
        raise FileRejected(str(path), f"schema drift ({layout.describe()}) and feed {contract.feed} has "
                           "schema_drift: fail")
    return layout


def _absent_needed(contract: Contract, missing: list[str], header: list[str]) -> str | None:
    """Why a file lacks a column its rows cannot do without (a required or key column, or one a derived
    key is made of), or None: such a file is rejected whole, naming the header, where otherwise every row
    would be quarantined as `required but empty` for a misspelt `source:`. A missing optional column
    follows schema_drift."""
    needed = {c.name for c in contract.columns if c.required} | set(key_sources(contract))
    absent = [contract.column(name).header for name in missing if name in needed]
    if not absent:
        return None
    shown_found = ", ".join(n if len(n) <= 60 else n[:57] + "..." for n in header[:MAX_FOUND_SHOWN]) + (
        f", ... ({len(header) - MAX_FOUND_SHOWN:,} more)" if len(header) > MAX_FOUND_SHOWN else "")
    names = ", ".join(f"`{name}`" for name in absent)
    lowered = {name.lower(): name for name in header}
    guesses = [f"`{lowered[g]}`" for name in absent
               for g in difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)]
    them = "them" if len(absent) > 1 else "it"
    return (f"header{'s' if len(absent) > 1 else ''} {names} missing (found: {shown_found}); feed {contract.feed} "
            f"needs {them} (required or part of the primary key): fix the file's header, or the contract's "
            "`source:` for that column" + (f" (did you mean {', '.join(guesses)}?)" if guesses else ""))


def load_file(
    engine: Engine,
    contract: Contract,
    path: Path,
    layout: Layout,
    *,
    source_file: str,
    batch_id: str,
    ingested_at: datetime,
    staged: str,
) -> tuple[int, exp.Select]:
    """Read one file into the staged table `staged`; returns the rows read and the file's bronze rows
    (contract columns as text, unexpected ones as JSON in `_rescued`, and where each row came from)."""
    kind = layout.read.kind if layout.read else FileKind(FileFormat.CSV)
    try:
        if layout.read is None or kind.format is FileFormat.CSV:  # a CSV, or a zip's CSV member
            source = path if layout.read is None else local_file(path, kind)
            rows = engine.load_csv(str(source), staged, layout.targets)
        else:
            rows = engine.load_file(str(path), staged, layout.targets, layout.read)
    except EngineError as error:
        if path.name.lower().endswith(".gz") and "gzip" in error.message.lower():
            raise FileRejected(str(path), f"truncated or corrupt gzip file ({error.message}): ask the sender "
                               "for the file again") from None
        raise FileRejected(str(path), f"cannot be parsed as {kind.describe()}: {error.message}") from None
    if layout.absent_needed:  # after the parse, so a file that is not CSV says that first
        raise FileRejected(str(path), layout.absent_needed)
    projection: list[exp.Expr] = [
        alias(col(c.name) if c.name in layout.matched else cast(exp.null(), "VARCHAR"), c.name)
        for c in contract.columns
    ]
    rescued = [(name, col(layout.targets[position])) for position, name in layout.extra]
    rescued_json: exp.Expr = exp.func("to_json", exp.Struct(expressions=[
        exp.PropertyEQ(this=exp.to_identifier(k, quoted=True), expression=v) for k, v in rescued
    ])) if rescued else exp.null()
    projection += [
        alias(cast(rescued_json, "VARCHAR"), "_rescued"),
        alias(lit(source_file), "_source_file"),
        alias(col("_row_number"), "_row_number"),
        alias(lit(batch_id), "_batch_id"),
        alias(cast(lit(ingested_at.isoformat(sep=" ")), "TIMESTAMP"), "_ingested_at"),
    ]
    return rows, select(*projection).from_(table(staged))


def define_bronze(engine: Engine, feed: str, files: list[exp.Select]) -> None:
    """The batch's bronze rows of a feed: the union of its files' rows, as a view over the staged files."""
    # Built as a balanced tree of UNION ALLs, without the copies sqlglot's helper makes: a burst of a
    # thousand files of one feed then costs milliseconds, not a minute, and stays shallow to render.
    level: list[exp.Query] = list(files)
    while len(level) > 1:
        paired: list[exp.Query] = [exp.Union(this=a, expression=b, distinct=False)
                                   for a, b in zip(level[::2], level[1::2], strict=False)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    engine.define_view(bronze_table(feed), level[0])


def define_quarantined(engine: Engine, contract: Contract, lake: str) -> None:
    """A quarantine replay's bronze rows: the feed's quarantined rows as they arrived (raw text and lineage),
    with NULL for any column the contract gained since."""
    feed = contract.feed
    path = f"{lake}/quarantine/{feed}"
    present = set(engine.table_columns(path))
    if not present:
        raise ShoplakeError(f"feed {feed} has no quarantine table at {path}: nothing to replay")
    engine.attach_delta(path, "quarantine", feed)
    projection = [
        alias(col(name) if name in present else cast(exp.null(), "VARCHAR"), name)
        for name in (*contract.column_names, *META_COLUMNS)
    ]
    engine.define_view(bronze_table(feed), select(*projection).from_(table(feed, "quarantine")))
