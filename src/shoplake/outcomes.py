"""What a run did: per file, per batch, and in all (the run summary the CLI and the API report)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

from shoplake.landing import ledger as L

Progress = Callable[[str, int, int], None]  # (step description, done, total)


@dataclass
class FileOutcome:
    file: str
    feed: str | None
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    error: str | None = None
    archived_to: str | None = None
    max_quarantine_rate: float | None = None  # its feed's limit; None: not judged (a replay, a failed file)

    @property
    def too_quarantined(self) -> bool:
        """More of its rows quarantined than its contract's max_quarantine_rate allows: the run fails (exit 1)."""
        limit = self.max_quarantine_rate
        return limit is not None and self.rows_read > 0 and self.rows_quarantined / self.rows_read > limit


@dataclass
class BatchOutcome:
    batch_id: str
    business_date: date
    status: str
    files: list[FileOutcome] = field(default_factory=list)
    rule_failures: dict[str, dict[str, int]] = field(default_factory=dict)  # feed -> rule -> rows
    error: str | None = None
    reason: str = ""  # why the batch ran (run, trigger, max_files, max_wait, reprocess, replay)
    seconds: float = 0.0


@dataclass
class RunReport:
    batches: list[BatchOutcome] = field(default_factory=list)
    skipped_duplicates: list[FileOutcome] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # entries of landing not read (links, pipes, ...)
    recovered: list[str] = field(default_factory=list)  # what was finished or rolled back first
    gold: dict[str, int] = field(default_factory=dict)
    gold_skipped: dict[str, str] = field(default_factory=dict)  # model -> why it was not built
    lake: str = ""
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage, summed over batches

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started

    @property
    def failed(self) -> bool:
        return any(b.status != L.SUCCEEDED for b in self.batches) or any(
            f.status == L.FAILED or f.too_quarantined for b in self.batches for f in b.files)
