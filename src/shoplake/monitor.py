"""`shoplake monitor`: judge whether the lake and its store answer, the pipeline's health, and each feed's
freshness, volume and quarantine rate; a JSON report (schema in the README), findings as alerts.

The monitor only reads: it opens no lease, creates no store, and runs beside a batch or a watcher. The
checks live in monitor_checks (health, freshness, quarantine) and monitor_volume; what they read is
gathered once by monitor_store.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shoplake.config import Settings
from shoplake.contracts import ContractSet, load_contracts
from shoplake.errors import ConfigError
from shoplake.landing import ledger as store
from shoplake.monitor_checks import freshness, pipeline_health, quarantine, usual_lag, usual_spacing
from shoplake.monitor_findings import Check, Finding, Level
from shoplake.monitor_store import Snapshot, describe_url, lake_finding, open_store, read_snapshot
from shoplake.monitor_volume import volume
from shoplake.notify import Event, Notifiers

SCHEMA_VERSION = 1
MONITOR_CRITICAL = "monitor_critical"  # the event kind of a critical finding
MONITOR_WARNING = "monitor_warning"  # the event kind of a warning
OK = "ok"

log = logging.getLogger("shoplake.monitor")


@dataclass
class MonitorReport:
    generated_at: datetime  # the moment judged (naive UTC, like the ledger)
    lake: str
    state_store: str  # its URL without a password
    findings: list[Finding] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)  # check -> ok | warning | critical | skipped
    skipped: dict[str, str] = field(default_factory=dict)  # check -> why it did not run
    judged_dates: list[date] = field(default_factory=list)
    feeds: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def critical(self) -> list[Finding]:
        return [f for f in self.findings if f.level == Level.CRITICAL]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == Level.WARNING]

    @property
    def status(self) -> str:
        return Level.CRITICAL.value if self.critical else Level.WARNING.value if self.findings else OK

    @property
    def exit_code(self) -> int:
        return 1 if self.critical else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "generated_at": self.generated_at.replace(tzinfo=UTC).isoformat(timespec="seconds"),
            "status": self.status,
            "lake": self.lake,
            "state_store": self.state_store,
            "counts": {"critical": len(self.critical), "warning": len(self.warnings)},
            "checks": dict(self.checks),
            "skipped": dict(self.skipped),
            "judged_dates": [d.isoformat() for d in self.judged_dates],
            "findings": [f.as_json() for f in self.findings],
            "feeds": self.feeds,
        }


def monitor(settings: Settings, *, now: datetime | None = None, contracts: ContractSet | None = None) -> MonitorReport:
    """Judge the lake as of `now` (naive or aware UTC; default: this moment); reads only."""
    moment = _naive_utc(now) if now is not None else store.now()
    contracts = contracts if contracts is not None else load_contracts(settings.contracts)
    report = MonitorReport(generated_at=moment, lake=settings.tables_root,
                           state_store=describe_url(settings.state_db_url))
    lake_problem = lake_finding(settings)
    engine, store_problem = open_store(settings)
    report.findings += [f for f in (lake_problem, store_problem) if f is not None]
    judged = [Check.PIPELINE, Check.FRESHNESS, Check.VOLUME, Check.QUARANTINE]
    if engine is None:
        report.skipped = {check.value: "the operational store cannot be read" for check in judged}
    else:
        try:
            snapshot = read_snapshot(engine, settings, moment)
        finally:
            engine.dispose()
        report.findings += pipeline_health(snapshot, settings, moment)
        report.findings += freshness(snapshot, contracts, settings, moment)
        report.findings += volume(snapshot, settings.monitor)
        report.findings += quarantine(snapshot, contracts, settings)
        report.judged_dates = snapshot.judged(settings.monitor.check_days)
        report.feeds = _feeds(snapshot, contracts, settings, moment)
    for check in Check:
        levels = {f.level for f in report.findings if f.check == check}
        report.checks[check.value] = ("skipped" if check.value in report.skipped else
                                      Level.CRITICAL.value if Level.CRITICAL in levels else
                                      Level.WARNING.value if levels else OK)
    report.findings.sort(key=lambda f: (f.level != Level.CRITICAL, list(Check).index(f.check), f.feed or "",
                                        f.business_date or date.min))
    return report


def notify(report: MonitorReport, notifiers: Notifiers) -> None:
    """Every finding as an event: kind monitor_critical or monitor_warning, keyed by what it is about."""
    for finding in report.findings:
        critical = finding.level == Level.CRITICAL
        notifiers.send(Event(MONITOR_CRITICAL if critical else MONITOR_WARNING, finding.message,
                             batch_id=finding.batch_id, details=finding.as_json(),
                             level="critical" if critical else "warning", key=finding.key))


def default_report_path(settings: Settings) -> Path | None:
    """<lake>/monitor/report.json for a local lake, <work_dir>/monitor/report.json for a remote one; None
    when the local lake is missing (writing there would create an empty lake that hides the problem)."""
    if isinstance(settings.lake, Path) and not settings.lake.is_dir():
        return None
    return settings.scratch / "monitor" / "report.json"


def write_report(report: MonitorReport, path: Path) -> None:
    """The report as JSON at `path`, replaced in one step (a reader never sees half a report)."""
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder", hint="name the report's file, e.g. monitor/report.json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        partial.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)
    except OSError as error:
        raise ConfigError(f"the monitor report cannot be written to {path}: {error.strerror or error}",
                          hint="choose another --out") from None


def run_monitor(settings: Settings, *, out: Path | None = None, now: datetime | None = None,
                notifiers: Notifiers | None = None) -> tuple[MonitorReport, Path | None]:
    """Judge, write the report (to `out`, else the default place when there is one) and send the findings;
    returns the report and where it was written."""
    report = monitor(settings, now=now)
    path = out or default_report_path(settings)
    if path is not None:
        write_report(report, path)
    if notifiers is not None:
        notify(report, notifiers)
    return report, path


class MonitorSchedule:
    """The monitor from `shoplake watch`: at the start, then every `monitor_every` seconds, between batches."""

    def __init__(self, settings: Settings, notifiers: Notifiers) -> None:
        self.settings = settings
        self.notifiers = notifiers
        self.due = -float("inf")  # monotonic clock; the first tick runs at once

    def tick(self, clock: float) -> MonitorReport | None:
        """Run the monitor if it is due; a monitor that fails is logged and never stops the watcher."""
        every = self.settings.monitor_every
        if every <= 0 or clock < self.due:
            return None
        self.due = clock + every
        try:
            return run_monitor(self.settings, notifiers=self.notifiers)[0]
        except Exception:
            log.exception("the monitor failed; watching goes on")
            return None


def _feeds(snapshot: Snapshot, contracts: ContractSet, settings: Settings, now: datetime) -> dict[str, dict[str, Any]]:
    """Per feed: its SLA, newest files and the judged dates' rows (the report's `feeds`)."""
    tz = ZoneInfo(settings.timezone)
    judged = snapshot.judged(settings.monitor.check_days)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(snapshot.feeds) | {c.feed for c in contracts}):
        contract = contracts.contracts.get(name)
        feed = snapshot.feeds.get(name)
        lag = usual_lag(feed, tz) if feed is not None else None
        seen = feed.last_loaded_at if feed is not None else None
        out[name] = {
            "max_age_hours": contract.freshness.max_age_hours if contract and contract.freshness else None,
            "max_quarantine_rate": contract.max_quarantine_rate if contract else None,
            "newest_business_date": _iso_date(feed.newest_date if feed else None),
            "last_loaded_business_date": _iso_date(feed.last_loaded_date if feed else None),
            "last_arrival_at": seen.replace(tzinfo=UTC).isoformat(timespec="seconds") if seen else None,
            "age_hours": round((now - seen).total_seconds() / 3600, 1) if seen else None,
            "usual_spacing_days": usual_spacing(feed.arrived) if feed is not None else None,
            "usual_delay_hours": round(lag.total_seconds() / 3600, 1) if lag is not None else None,
            "days": {day.isoformat(): {"rows_read": rows.rows_read, "rows_quarantined": rows.rows_quarantined,
                                       "files": rows.files}
                     for day in judged if feed is not None and (rows := feed.loaded.get(day)) is not None},
        }
    return out


def _iso_date(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
