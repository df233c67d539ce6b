"""One run: every waiting file, batch by business date, through bronze, silver and quarantine, then gold."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import groupby
from pathlib import Path

from sqlglot import exp

from shoplake.config import Settings
from shoplake.contracts import ContractSet, load_contracts
from shoplake.engines import Engine, open_engine
from shoplake.errors import BatchFailed, FileRejected, ShoplakeError
from shoplake.landing import ledger as L
from shoplake.landing.archive import archive_file
from shoplake.landing.files import LandedFile, discover
from shoplake.layers import bronze, gold, silver

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


@dataclass
class BatchOutcome:
    batch_id: str
    business_date: date
    status: str
    files: list[FileOutcome] = field(default_factory=list)
    rule_failures: dict[str, dict[str, int]] = field(default_factory=dict)  # feed -> rule -> rows
    error: str | None = None


@dataclass
class RunReport:
    batches: list[BatchOutcome] = field(default_factory=list)
    skipped_duplicates: list[FileOutcome] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    gold: dict[str, int] = field(default_factory=dict)
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
        return any(b.status != "succeeded" for b in self.batches) or any(
            f.status == L.FAILED for b in self.batches for f in b.files)


def run(settings: Settings, progress: Progress | None = None) -> RunReport:
    """Process every waiting file of the landing folder; returns what happened to each."""
    contracts = load_contracts(settings.contracts)
    models = gold.load_models(settings.models)
    settings.lake.mkdir(parents=True, exist_ok=True)
    ledger = L.Ledger(settings.state_db_url)
    engine = open_engine(settings.engine, temp_dir=settings.lake / "_tmp", memory_limit=settings.memory_limit,
                         threads=settings.threads, spark_master=settings.spark_master,
                         spark_conf=settings.spark_conf)
    lake = settings.tables_root
    report = RunReport(lake=lake)
    try:
        with report.timed("detect"):
            found = discover(settings.landing, contracts)
        report.unrecognised = [str(p) for p in found.unrecognised]
        waiting = _skip_duplicates(found.files, ledger, settings, report)
        dates = [(d, list(group)) for d, group in groupby(waiting, key=lambda f: f.business_date)]
        for i, (business_date, files) in enumerate(dates):
            if progress:
                progress(f"batch {business_date}", i, len(dates))
            report.batches.append(_run_batch(engine, contracts, ledger, settings, lake, business_date, files,
                                             progress, report))
        if any(b.status == "succeeded" for b in report.batches) or not _gold_exists(lake):
            available = silver.attach_silver(engine, contracts, lake)
            if progress:
                progress("gold models", len(dates), len(dates))
            with report.timed("gold"):
                report.gold = gold.run_models(engine, models, lake, available)
    finally:
        engine.close()
        ledger.close()
    return report


def _gold_exists(lake: str) -> bool:
    return Path(lake, "gold").is_dir()


def _skip_duplicates(files: list[LandedFile], ledger: L.Ledger, settings: Settings, report: RunReport
                     ) -> list[LandedFile]:
    """Files whose exact content was loaded before (or earlier in this run) are archived, never loaded."""
    seen: dict[str, str] = {}
    waiting = []
    for landed in files:
        if landed.is_trigger or not landed.has_rows:
            waiting.append(landed)
            continue
        earlier = ledger.loaded_file_with_hash(landed.sha256) or seen.get(landed.sha256)
        if earlier is None:
            seen[landed.sha256] = str(landed.path)
            waiting.append(landed)
            continue
        target = archive_file(landed.path, settings.archive_dir, "failed", landed.business_date, None)
        error = f"duplicate: same content (sha256 {landed.sha256[:12]}…) as {earlier}"
        ledger.record_file(path=str(landed.path), archived_path=str(target), size=landed.size, sha256=landed.sha256,
                           feed=landed.feed, business_date=landed.business_date, status=L.DUPLICATE, error=error,
                           processed_at=L.now())
        report.skipped_duplicates.append(FileOutcome(landed.relative, landed.feed, L.DUPLICATE, error=error,
                                                     archived_to=str(target)))
    return waiting


def _run_batch(
    engine: Engine,
    contracts: ContractSet,
    ledger: L.Ledger,
    settings: Settings,
    lake: str,
    business_date: date,
    files: list[LandedFile],
    progress: Progress | None,
    report: RunReport,
) -> BatchOutcome:
    batch_id = f"{business_date:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    started = L.now()
    ledger.start_batch(batch_id, business_date, settings.engine, len(files))
    engine.clear()
    outcome = BatchOutcome(batch_id, business_date, "running")
    ids = {f.path: ledger.record_file(path=str(f.path), size=f.size, sha256=f.sha256, feed=f.feed,
                                      business_date=business_date, status="pending", batch_id=batch_id)
           for f in files}
    by_name: dict[str, FileOutcome] = {}
    loaded: dict[str, list[exp.Select]] = {}  # feed -> bronze rows of each of its readable files
    drifted: dict[str, list[str]] = {}
    steps = len(files) + 2 * len(contracts.contracts)
    done = 0
    # 1. Bronze (staged): read every data file; an unreadable file fails alone.
    for landed in (f for f in files if not f.is_trigger):
        assert landed.feed is not None
        contract = contracts[landed.feed]
        file_outcome = FileOutcome(landed.relative, landed.feed, "pending")
        outcome.files.append(file_outcome)
        by_name[landed.relative] = file_outcome
        try:
            with report.timed("read"):
                layout = bronze.sniff(landed.path, contract)
                staged = f"csv__{landed.feed}__{len(loaded.get(landed.feed, []))}"
                file_outcome.rows_read, rows = bronze.load_file(
                    engine, contract, landed.path, layout, source_file=landed.relative, batch_id=batch_id,
                    ingested_at=started, staged=staged)
        except FileRejected as rejected:
            _fail_file(ledger, settings, ids[landed.path], landed, file_outcome, rejected.reason, batch_id)
            continue
        loaded.setdefault(landed.feed, []).append(rows)
        if layout.drifted and contract.schema_drift.value == "quarantine":
            drifted.setdefault(landed.feed, []).append(landed.relative)
        done += 1
        if progress:
            progress(f"{business_date} bronze {landed.relative}", done, steps)
    try:
        for feed, rows_of_files in loaded.items():
            bronze.define_bronze(engine, feed, rows_of_files)
        # 2. Silver checks for every feed, parents first, before anything is written.
        in_silver = silver.attach_silver(engine, contracts, lake)
        order = contracts.load_order(set(loaded))
        results: dict[str, silver.FeedResult] = {}
        for feed in order:
            with report.timed("check"):
                referenced = any(parent == feed for child in order for _, parent, _ in contracts[child].references)
                results[feed] = silver.check_feed(engine, contracts[feed], contracts, in_silver=in_silver,
                                                  checked_feeds=set(results), drifted_files=drifted.get(feed, []),
                                                  referenced=referenced)
            done += 1
            if progress:
                progress(f"{business_date} check {feed}", done, steps)
        fatal = {f"{feed}.{rule}": n for feed, r in results.items() for rule, n in r.fatal.items()}
        for feed, result in results.items():
            outcome.rule_failures[feed] = result.rule_failures
            severities = {rule: severity.value for rule, severity in result.severities.items()}
            ledger.record_rules(batch_id, feed, result.rule_failures, severities)
        if fatal:
            raise BatchFailed("fail_batch rule(s) failed: " + ", ".join(f"{r} ({n} rows)" for r, n in fatal.items()),
                              hint="fix the data or the contract, then drop the batch's files (now in "
                              "archive/failed/<date>/) into landing again")
        # 3. Write bronze, quarantine and silver of every feed.
        with report.timed("write"):
            jobs = [job for feed in order
                    for job in silver.stage_writes(engine, contracts[feed], lake, in_silver=feed in in_silver)]
            engine.write(jobs)
        for feed in order:
            for name, counts in results[feed].files.items():
                f = by_name[name]
                f.rows_duplicate, f.rows_quarantined = counts.duplicates, counts.quarantined
                f.rows_loaded = counts.loaded
            done += 1
            if progress:
                progress(f"{business_date} write {feed}", done, steps)
    except ShoplakeError as error:
        return _fail_batch(ledger, settings, outcome, files, ids, str(error))
    # 4. Reconcile and archive.
    for landed in files:
        if landed.is_trigger:
            target = archive_file(landed.path, settings.archive_dir, "processed", business_date, batch_id)
            ledger.update_file(ids[landed.path], status=L.LOADED, archived_path=str(target), processed_at=L.now())
            continue
        f = by_name[landed.relative]
        if f.status == L.FAILED:
            continue
        if f.rows_read != f.rows_loaded + f.rows_quarantined + f.rows_duplicate:
            raise ShoplakeError(f"reconciliation broke for {landed.relative}: read {f.rows_read} != loaded "
                                f"{f.rows_loaded} + quarantined {f.rows_quarantined} + duplicates {f.rows_duplicate}")
        target = archive_file(landed.path, settings.archive_dir, "processed", business_date, batch_id)
        f.status, f.archived_to = L.LOADED, str(target)
        ledger.update_file(ids[landed.path], status=L.LOADED, archived_path=str(target), processed_at=L.now(),
                           rows_read=f.rows_read, rows_loaded=f.rows_loaded, rows_quarantined=f.rows_quarantined,
                           rows_duplicate=f.rows_duplicate)
    outcome.status = "succeeded"
    ledger.finish_batch(batch_id, "succeeded", rows_read=sum(f.rows_read for f in outcome.files),
                        rows_loaded=sum(f.rows_loaded for f in outcome.files),
                        rows_quarantined=sum(f.rows_quarantined for f in outcome.files))
    return outcome


def _fail_file(ledger: L.Ledger, settings: Settings, file_id: int, landed: LandedFile, outcome: FileOutcome,
               reason: str, batch_id: str) -> None:
    target = archive_file(landed.path, settings.archive_dir, "failed", landed.business_date, batch_id)
    outcome.status, outcome.error, outcome.archived_to = L.FAILED, reason, str(target)
    ledger.update_file(file_id, status=L.FAILED, error=reason, archived_path=str(target), processed_at=L.now())


def _fail_batch(ledger: L.Ledger, settings: Settings, outcome: BatchOutcome, files: list[LandedFile],
                ids: dict[Path, int], error: str) -> BatchOutcome:
    outcome.status, outcome.error = "failed", error
    by_name = {f.file: f for f in outcome.files}
    for landed in files:
        if not landed.path.exists():
            continue
        target = archive_file(landed.path, settings.archive_dir, "failed", landed.business_date, outcome.batch_id)
        f = by_name.get(landed.relative)
        if f is not None:
            f.status, f.error, f.archived_to = L.FAILED, f.error or error, str(target)
        ledger.update_file(ids[landed.path], status=L.FAILED, error=error, archived_path=str(target),
                           processed_at=L.now())
    ledger.finish_batch(outcome.batch_id, "failed", error=error)
    return outcome
