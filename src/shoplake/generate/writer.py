"""Writing feed CSV files and trigger files, each appearing in the landing folder all at once."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

# Every value is already text without commas, quotes or line breaks, so nothing needs quoting;
# pyarrow would otherwise quote every text value. It raises if one ever does need quotes.
_CSV_OPTIONS = pcsv.WriteOptions(include_header=False, quoting_style="none", batch_size=65_536)


def write_feed_csv(path: Path, table: pa.Table, *, cut_last_line: bool = False) -> None:
    """Write ``table`` as CSV with an unquoted header; optionally end it in the middle of a line.

    The file is written under a hidden name and renamed at the end, so a watcher never picks up
    a half-written file (the truncated last line is the only kind of cut file it should see).
    """
    partial = path.with_name(f".{path.name}.partial")
    with pa.OSFile(str(partial), "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode("utf-8"))
        pcsv.write_csv(table, sink, _CSV_OPTIONS)
    if cut_last_line:
        _cut_last_line(partial)
    os.replace(partial, path)


def write_trigger(path: Path, business_date: date, files: Sequence[tuple[str, int]]) -> None:
    """Announce a business day's files and their data-row counts, as the source system would."""
    document = {
        "business_date": business_date.isoformat(),
        "files": [{"name": name, "rows": rows} for name, rows in files],
    }
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _cut_last_line(path: Path) -> None:
    """Drop the second half of the file's last line, including its line break."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        tail_size = min(size, 1 << 16)
        handle.seek(size - tail_size)
        tail = handle.read()
        body = tail[:-1] if tail.endswith(b"\n") else tail
        line_start = body.rfind(b"\n") + 1
        keep = max(1, (len(body) - line_start) // 2)
        handle.truncate(size - tail_size + line_start + keep)
