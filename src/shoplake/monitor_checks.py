"""The monitor's judgements of pipeline health, freshness and quarantine rate, each from a store snapshot.

Freshness is judged from what the ledger records per file: its business date (from its name, or the day it
landed) and when it was detected. Three things are measurable from those alone:
- stale: the newest loaded file of a feed was detected longer ago than the contract's max_age_hours;
- missing_file: a business date for which other feeds delivered files and this daily feed did not (a feed
  is daily when its delivered dates are usually one day apart; a weekly feed is never "missing" a day);
- overdue: the date after the feed's newest (newest + its usual spacing) has not arrived although its usual
  delay has passed: the median, over the feed's newest files, of detected_at minus the start of the
  business date in the shop's time zone, plus `arrival_grace_hours`. A feed whose files are loaded long
  after their date (a backfill) has a long usual delay, so a lake of past dates is not overdue.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shoplake.config import Settings
from shoplake.contracts import ContractSet
from shoplake.landing import ledger as store
from shoplake.monitor_findings import Check, Code, Finding, Level
from shoplake.monitor_store import FeedHistory, Snapshot

MIN_HISTORY = 3  # dates (or files) a feed needs before its spacing or usual delay is trusted


def pipeline_health(snapshot: Snapshot, settings: Settings, now: datetime) -> list[Finding]:
    """Failed or rolled-back batches not yet made good, and batches running without a live lease or too long.

    A failure is made good by a later successful batch of the same business date (a rerun, a reprocess); one
    is reported while it is recent: started after the newest success, or of a date the monitor judges.
    """
    findings: list[Finding] = []
    batches = snapshot.batches
    succeeded = [b for b in batches if b["status"] == store.SUCCEEDED]
    newest_success = max((b["started_at"] for b in succeeded), default=None)
    made_good: dict[date, datetime] = {}
    for b in succeeded:
        made_good[b["business_date"]] = max(b["started_at"], made_good.get(b["business_date"], b["started_at"]))
    judged = set(snapshot.judged(settings.monitor.check_days))
    for b in batches:
        if b["status"] not in (store.FAILED, store.ROLLED_BACK):
            continue
        good = made_good.get(b["business_date"])
        if good is not None and good > b["started_at"]:
            continue
        if newest_success is not None and b["started_at"] < newest_success and b["business_date"] not in judged:
            continue
        numbers = _batch_numbers(b)
        if b["status"] == store.FAILED:
            findings.append(Finding(Check.PIPELINE, Code.BATCH_FAILED, Level.CRITICAL,
                                    f"batch {b['batch_id']} of {b['business_date']} failed: "
                                    f"{_short(b['error'] or 'no error recorded')}; fix the cause, then "
                                    "`shoplake reprocess --failed`",
                                    business_date=b["business_date"], batch_id=b["batch_id"], numbers=numbers))
        else:
            findings.append(Finding(Check.PIPELINE, Code.BATCH_ROLLED_BACK, Level.WARNING,
                                    f"batch {b['batch_id']} of {b['business_date']} was rolled back and no batch "
                                    "of that date has succeeded since; its files wait for the next run",
                                    business_date=b["business_date"], batch_id=b["batch_id"], numbers=numbers))
    stuck_after = timedelta(minutes=settings.monitor.stuck_minutes)
    for b in batches:
        if b["status"] not in (store.RUNNING, store.COMMITTED):
            continue
        numbers = {**_batch_numbers(b), "running_minutes": round((now - b["started_at"]).total_seconds() / 60, 1)}
        if not _lease_alive(snapshot, b["owner"], now):
            findings.append(Finding(Check.PIPELINE, Code.BATCH_STUCK, Level.CRITICAL,
                                    f"batch {b['batch_id']} of {b['business_date']} is {b['status']} since "
                                    f"{_at(b['started_at'])} and its process holds no live lease: it stopped; the "
                                    "next `shoplake run` or watch finishes or rolls it back",
                                    business_date=b["business_date"], batch_id=b["batch_id"], numbers=numbers))
        elif now - b["started_at"] > stuck_after:
            findings.append(Finding(Check.PIPELINE, Code.BATCH_SLOW, Level.WARNING,
                                    f"batch {b['batch_id']} of {b['business_date']} has been running since "
                                    f"{_at(b['started_at'])}, longer than {settings.monitor.stuck_minutes:g} min",
                                    business_date=b["business_date"], batch_id=b["batch_id"], numbers=numbers))
    return findings


def freshness(snapshot: Snapshot, contracts: ContractSet, settings: Settings, now: datetime) -> list[Finding]:
    """Stale, missing and overdue files per feed (see the module's docstring); critical for a feed whose
    contract has a freshness SLA, a warning for one without."""
    findings: list[Finding] = []
    tz = ZoneInfo(settings.timezone)
    judged = snapshot.judged(settings.monitor.check_days)
    for name in sorted(set(snapshot.feeds) | {c.feed for c in contracts}):
        contract = contracts.contracts.get(name)
        sla = contract.freshness.max_age_hours if contract is not None and contract.freshness else None
        level = Level.CRITICAL if sla is not None else Level.WARNING
        feed = snapshot.feeds.get(name)
        if feed is None or feed.newest_date is None:
            if sla is not None and snapshot.newest_date is not None:
                findings.append(Finding(Check.FRESHNESS, Code.NEVER_ARRIVED, Level.WARNING,
                                        f"{name}: no file has ever arrived, though its contract expects one every "
                                        f"{sla:g} h (drop its files, or remove freshness from its contract)",
                                        feed=name, numbers={"max_age_hours": sla}))
            continue
        if sla is not None and feed.last_loaded_at is not None and now - feed.last_loaded_at > timedelta(hours=sla):
            age = (now - feed.last_loaded_at).total_seconds() / 3600
            findings.append(Finding(Check.FRESHNESS, Code.STALE, Level.CRITICAL,
                                    f"{name}: the newest loaded file (of {feed.last_loaded_date}) arrived "
                                    f"{_at(feed.last_loaded_at)}, more than the contract's {sla:g} h ago",
                                    feed=name, business_date=feed.last_loaded_date,
                                    numbers={"age_hours": round(age, 1), "max_age_hours": sla,
                                             "last_arrival_at": _iso(feed.last_loaded_at)}))
        spacing = usual_spacing(feed.arrived)
        if spacing == 1:
            findings += _missing(snapshot, feed, judged, level)
        lag = usual_lag(feed, tz)
        if spacing is not None and lag is not None:
            expected = feed.newest_date + timedelta(days=spacing)
            due = day_start(expected, tz) + lag + timedelta(hours=settings.monitor.arrival_grace_hours)
            if now > due:
                findings.append(Finding(Check.FRESHNESS, Code.OVERDUE, level,
                                        f"{name}: the file for {expected} has not arrived; it was due by {_at(due)} "
                                        f"(its usual delay of {_hours(lag):g} h after the day starts, plus "
                                        f"{settings.monitor.arrival_grace_hours:g} h)",
                                        feed=name, business_date=expected,
                                        numbers={"newest_business_date": feed.newest_date.isoformat(),
                                                 "usual_delay_hours": _hours(lag), "due_at": _iso(due),
                                                 "hours_late": round((now - due).total_seconds() / 3600, 1)}))
    return findings


def _missing(snapshot: Snapshot, feed: FeedHistory, judged: list[date], level: Level) -> list[Finding]:
    findings = []
    first = min(feed.arrived)
    for day in judged:
        if day <= first or day in feed.arrived:
            continue
        others = sorted(f.feed for f in snapshot.feeds.values() if f.feed != feed.feed and day in f.arrived)
        if not others:
            continue  # nobody delivered that date: a day without business, or the whole drop is late (overdue)
        failed = feed.failed.get(day)
        why = f"its file failed: {_short(failed)}" if failed else "no file arrived"
        findings.append(Finding(Check.FRESHNESS, Code.MISSING_FILE, level,
                                f"{feed.feed}: {why} for {day}, which {len(others)} other feed(s) delivered",
                                feed=feed.feed, business_date=day,
                                numbers={"other_feeds": len(others), "failed_file": failed is not None}))
    return findings


def quarantine(snapshot: Snapshot, contracts: ContractSet, settings: Settings) -> list[Finding]:
    """Per feed: the newest judged date's quarantine rate above the contract's max_quarantine_rate (critical),
    else a rate rising across the judged dates by `quarantine_rise` or more (least-squares line; warning)."""
    findings: list[Finding] = []
    judged = snapshot.judged(settings.monitor.check_days)
    for name, feed in sorted(snapshot.feeds.items()):
        series = [(day, feed.loaded[day].rows_quarantined / feed.loaded[day].rows_read)
                  for day in judged if day in feed.loaded and feed.loaded[day].rows_read > 0]
        if not series:
            continue
        contract = contracts.contracts.get(name)
        last_day, last_rate = series[-1]
        numbers: dict[str, int | float | str | None] = {
            "rate": round(last_rate, 4), "rows_read": feed.loaded[last_day].rows_read,
            "rows_quarantined": feed.loaded[last_day].rows_quarantined}
        if contract is not None and last_rate > contract.max_quarantine_rate:
            findings.append(Finding(Check.QUARANTINE, Code.QUARANTINE_ABOVE_LIMIT, Level.CRITICAL,
                                    f"{name} {last_day}: {last_rate:.1%} of rows quarantined, above the contract's "
                                    f"{contract.max_quarantine_rate:.0%}; `shoplake quarantine show {name}` shows why",
                                    feed=name, business_date=last_day,
                                    numbers={**numbers, "max_quarantine_rate": contract.max_quarantine_rate}))
            continue
        rise = _rise(series)
        if len(series) >= MIN_HISTORY and rise >= settings.monitor.quarantine_rise and last_rate > series[0][1]:
            findings.append(Finding(Check.QUARANTINE, Code.QUARANTINE_RISING, Level.WARNING,
                                    f"{name}: quarantine rate rising, {series[0][1]:.1%} on {series[0][0]} to "
                                    f"{last_rate:.1%} on {last_day}",
                                    feed=name, business_date=last_day,
                                    numbers={**numbers, "first_rate": round(series[0][1], 4),
                                             "rise": round(rise, 4), "days": len(series)}))
    return findings


def usual_spacing(dates: Iterable[date]) -> int | None:
    """The median number of days between a feed's consecutive delivered dates; None with too few dates."""
    ordered = sorted(set(dates))
    if len(ordered) < MIN_HISTORY:
        return None
    return max(1, round(statistics.median((b - a).days for a, b in itertools.pairwise(ordered))))


def usual_lag(feed: FeedHistory, tz: ZoneInfo) -> timedelta | None:
    """The median delay from the start of a file's business date (shop time) to its detection."""
    if len(feed.arrivals) < MIN_HISTORY:
        return None
    seconds = statistics.median((seen - day_start(day, tz)).total_seconds() for day, seen in feed.arrivals)
    return timedelta(seconds=seconds)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """Midnight of a business date in the shop's time zone, as the ledger's naive UTC."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def _rise(series: list[tuple[date, float]]) -> float:
    """How much the least-squares line through (day, rate) climbs from the first day to the last."""
    if len(series) < 2:
        return 0.0
    xs = [(day - series[0][0]).days for day, _ in series]
    ys = [rate for _, rate in series]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0
    return slope * (xs[-1] - xs[0])


def _lease_alive(snapshot: Snapshot, owner: str | None, now: datetime) -> bool:
    """Whether the batch's process (host:pid) still holds a lease: lock holders are host:pid#session."""
    return owner is not None and any(
        lock["owner"] and lock["owner"].partition("#")[0] == owner and lock["expires_at"] > now
        for lock in snapshot.locks)


def _batch_numbers(batch: dict[str, Any]) -> dict[str, int | float | str | None]:
    return {"status": batch["status"], "kind": batch["kind"], "files": batch["files"],
            "started_at": _iso(batch["started_at"])}


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _iso(moment: datetime) -> str:
    """A ledger time (naive UTC) as ISO 8601 with its zone, for the JSON report."""
    return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 1)


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 200 else line[:199] + "…"
