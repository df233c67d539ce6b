"""What a generator run wrote: files, their row counts and the defects injected into each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class WrittenFile:
    """One feed CSV file; ``rows`` counts data rows (no header), as its trigger file does."""

    name: str
    feed: str
    business_date: date
    rows: int


@dataclass
class GenerateReport:
    """Everything :func:`shoplake.generate.generate` wrote.

    ``defects`` maps every feed file name to ``{defect kind: rows carrying it}``; a clean file maps
    to an empty dict. File-level kinds count the rows they touch: every row of the file for
    ``extra_column`` and ``missing_column``, one row for ``truncated_last_line``.
    """

    out: Path
    files: list[WrittenFile] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    defects: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rows(self) -> dict[str, int]:
        """Data rows per feed file name."""
        return {f.name: f.rows for f in self.files}

    def injected(self, kind: str, feed: str | None = None) -> int:
        """Rows carrying ``kind`` over all files, or over one feed's files."""
        return sum(
            self.defects.get(f.name, {}).get(kind, 0)
            for f in self.files
            if feed is None or f.feed == feed
        )
