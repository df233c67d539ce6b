"""The ``generate`` entry point: simulate business days and land their feed and trigger files."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

from shoplake.generate import drift
from shoplake.generate.defects import DefectInjector
from shoplake.generate.feeds import FEEDS, file_name, trigger_name
from shoplake.generate.report import GenerateReport, WrittenFile
from shoplake.generate.sampling import stream
from shoplake.generate.shop import Shop
from shoplake.generate.writer import write_feed_csv, write_trigger

Progress = Callable[[str, int, int], None]


def generate(
    out: Path,
    *,
    days: int = 2,
    scale: float = 0.01,
    defect_rate: float = 0.0,
    seed: int = 42,
    start: date = date(2026, 1, 5),
    progress: Progress | None = None,
) -> GenerateReport:
    """Write ``days`` business days of e-commerce feed files, starting at ``start``, into ``out``.

    Per day: one CSV per feed (``<feed>_<YYYY_MM_DD>.csv``) and then ``trigger_<YYYY_MM_DD>.json``
    listing them. ``scale`` 1 means about a million orders a day. With ``defect_rate`` > 0, about
    that share of each file's rows carry a defect and every kind that applies to a file appears
    in it at least once; the report counts them per file. The same arguments always produce
    byte-identical files. ``progress(step, done, total)`` is called as files are written.
    """
    _check(days=days, scale=scale, defect_rate=defect_rate, seed=seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = GenerateReport(out=out)
    shop = Shop(seed, scale)
    injector = DefectInjector(defect_rate) if defect_rate > 0 else None
    total = days * (len(FEEDS) + 1)
    done = 0
    if progress is not None:
        progress("start", done, total)

    for day_index in range(days):
        business_date = start + timedelta(days=day_index)
        tables = shop.open_day(day_index, business_date)
        plan = drift.plan_for(day_index) if injector is not None else None
        announced: list[tuple[str, int]] = []
        for feed in FEEDS:
            name = file_name(feed, business_date)
            table, defects = _spoil(
                feed, tables[feed](), plan=plan, injector=injector, seed=seed, day_index=day_index
            )
            write_feed_csv(
                out / name, table,
                cut_last_line=plan is not None and plan.truncated_last_line == feed,
            )
            report.files.append(WrittenFile(name, feed, business_date, table.num_rows))
            report.defects[name] = defects
            announced.append((name, table.num_rows))
            done += 1
            if progress is not None:
                progress(f"{business_date} {feed}", done, total)
        trigger = trigger_name(business_date)
        write_trigger(out / trigger, business_date, announced)
        report.triggers.append(trigger)
        done += 1
        if progress is not None:
            progress(f"{business_date} trigger", done, total)
    return report


def _spoil(
    feed: str,
    table: pa.Table,
    *,
    plan: drift.DriftPlan | None,
    injector: DefectInjector | None,
    seed: int,
    day_index: int,
) -> tuple[pa.Table, dict[str, int]]:
    """Apply the day's defects to one feed table; without an injector the table stays clean."""
    if plan is None or injector is None:
        return table, {}
    # Columns change first so that defect copies and duplicates carry the same layout.
    if plan.extra_column == feed:
        table = drift.add_extra_column(feed, table, stream(seed, day_index, f"drift:{feed}"))
    if plan.missing_column == feed:
        table = drift.drop_column(feed, table)
    table, defects = injector.inject(feed, table, stream(seed, day_index, f"defects:{feed}"))
    if plan.extra_column == feed:
        defects["extra_column"] = table.num_rows
    if plan.missing_column == feed:
        defects["missing_column"] = table.num_rows
    if plan.truncated_last_line == feed:
        defects["truncated_last_line"] = 1
    return table, defects


def _check(*, days: int, scale: float, defect_rate: float, seed: int) -> None:
    """Reject arguments the simulation cannot honour, saying which and why."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if not scale > 0:
        raise ValueError(f"scale must be > 0 (1 is about a million orders a day), got {scale}")
    if not 0 <= defect_rate < 1:
        raise ValueError(f"defect_rate is a share of rows in [0, 1), got {defect_rate}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
