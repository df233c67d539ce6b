"""`shoplake monitor`: freshness, missing files and volume anomalies on generated data, the pipeline's health,
quarantine trend and reachability on hand-made ledgers, the JSON report, exit codes, and the watcher's schedule."""

from __future__ import annotations

import csv
import json
import statistics
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from shoplake.cli import app
from shoplake.config import Monitoring, Settings
from shoplake.contracts import load_contracts
from shoplake.generate import GenerateReport, generate
from shoplake.landing import ledger as store
from shoplake.monitor import MONITOR_CRITICAL, MonitorReport, monitor, write_report
from shoplake.monitor_checks import day_start
from shoplake.monitor_volume import RECENT_DAYS, SAME_WEEKDAY, baseline
from shoplake.notify import Event, Notifiers
from shoplake.pipeline import run
from shoplake.watch import Watcher

runner = CliRunner()
START = date(2026, 1, 5)  # a Monday
DAYS = 5
MISSING = ("inventory", START + timedelta(days=2))  # its file is deleted before the run
SHORT = ("events", START + timedelta(days=4))  # its file keeps half of its rows


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, GenerateReport, int]:
    """Five generated days loaded by the pipeline, one inventory file missing and one events file half-size;
    returns the settings, what the generator wrote and the rows the short file kept."""
    root = tmp_path_factory.mktemp("monitor")
    landing = root / "landing"
    written = generate(landing, days=DAYS, scale=0.002, seed=3, start=START)
    for trigger in landing.glob("trigger_*.json"):
        trigger.unlink()  # the triggers list the files the test removes or cuts; run() batches every date anyway
    (landing / f"{MISSING[0]}_{MISSING[1]:%Y_%m_%d}.csv").unlink()
    short = landing / f"{SHORT[0]}_{SHORT[1]:%Y_%m_%d}.csv"
    with short.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    kept = (len(rows) - 1) // 2
    with short.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows[: kept + 1])
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive")
    result = run(settings)
    assert not result.failed
    return settings, written, kept


def _found(report: MonitorReport) -> set[tuple[str, str | None, date | None]]:
    return {(f.code.value, f.feed, f.business_date) for f in report.findings}


def test_the_missing_file_and_the_short_day_are_found_and_nothing_else(
        generated: tuple[Settings, GenerateReport, int]) -> None:
    settings, written, kept = generated
    report = monitor(settings)
    assert _found(report) == {("missing_file", *MISSING), ("volume_low", *SHORT)}, [f.message for f in report.findings]
    missing = next(f for f in report.findings if f.code == "missing_file")
    assert missing.level == "critical"  # inventory's contract has a freshness SLA
    assert missing.numbers["other_feeds"] == 7
    # The baseline as the README defines it, from what the generator wrote: too few same-weekday days in a
    # five-day lake, so the median of every earlier day.
    earlier = [f.rows for f in written.files if f.feed == SHORT[0] and f.business_date < SHORT[1]]
    median = statistics.median(earlier)
    ratio = kept / median
    short = next(f for f in report.findings if f.code == "volume_low")
    limits = settings.monitor
    assert short.numbers["rows"] == kept and short.numbers["baseline_median"] == median
    assert short.numbers["baseline_basis"] == RECENT_DAYS and short.numbers["baseline_points"] == len(earlier)
    assert short.level == ("critical" if ratio <= limits.volume_critical_low else "warning")
    assert report.exit_code == 1 and report.status == "critical"
    # The normal days were judged, not skipped: every judged date of events has its rows in the report.
    judged_events = report.feeds["events"]["days"]
    assert {START + timedelta(days=d) for d in range(DAYS)} <= set(report.judged_dates)
    assert len(judged_events) == DAYS and judged_events[SHORT[1].isoformat()]["rows_read"] == kept


def test_the_newest_file_older_than_the_sla_is_stale(generated: tuple[Settings, GenerateReport, int]) -> None:
    settings, _, _ = generated
    contracts = load_contracts(settings.contracts)
    arrived = max(monitor(settings).feeds[c.feed]["last_arrival_at"] for c in contracts)
    later = datetime.fromisoformat(arrived) + timedelta(hours=30)
    report = monitor(settings, now=later)
    stale = {f.feed for f in report.findings if f.code == "stale"}
    assert stale == {c.feed for c in contracts if c.freshness and c.freshness.max_age_hours < 30}
    assert all(f.level == "critical" for f in report.findings if f.code == "stale")
    assert stale and "customers" not in stale  # customers allow 36 h


DOCUMENTED_REPORT = {"schema_version", "generated_at", "status", "lake", "state_store", "counts", "checks", "skipped",
                     "judged_dates", "findings", "feeds"}
DOCUMENTED_FINDING = {"check", "code", "level", "feed", "business_date", "batch_id", "message", "numbers", "key"}
DOCUMENTED_FEED = {"max_age_hours", "max_quarantine_rate", "newest_business_date", "last_loaded_business_date",
                   "last_arrival_at", "age_hours", "usual_spacing_days", "usual_delay_hours", "days"}


def test_the_json_report_has_every_documented_field(generated: tuple[Settings, GenerateReport, int],
                                                    tmp_path: Path) -> None:
    settings, _, _ = generated
    write_report(monitor(settings), tmp_path / "report.json")
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert set(data) == DOCUMENTED_REPORT
    assert data["schema_version"] == 1 and data["status"] == "critical"
    assert data["counts"] == {"critical": sum(f["level"] == "critical" for f in data["findings"]),
                              "warning": sum(f["level"] == "warning" for f in data["findings"])}
    assert set(data["checks"]) == {"reachability", "pipeline", "freshness", "volume", "quarantine"}
    assert data["checks"]["freshness"] == "critical" and data["checks"]["pipeline"] == "ok"
    assert all(set(f) == DOCUMENTED_FINDING for f in data["findings"])
    assert all(set(feed) == DOCUMENTED_FEED for feed in data["feeds"].values())
    assert set(data["feeds"]["orders"]["days"][START.isoformat()]) == {"rows_read", "rows_quarantined", "files"}
    assert datetime.fromisoformat(data["generated_at"]).tzinfo is not None


def test_cli_exit_codes_and_report_file(generated: tuple[Settings, GenerateReport, int], tmp_path: Path) -> None:
    settings, _, _ = generated
    result = runner.invoke(app, ["monitor", "--lake", str(settings.lake), "--no-notify"])
    assert result.exit_code == 1, result.output
    assert f"inventory: no file arrived for {MISSING[1]}" in result.output
    default = Path(settings.lake) / "monitor" / "report.json"
    assert json.loads(default.read_text(encoding="utf-8"))["status"] == "critical"
    result = runner.invoke(app, ["monitor", "--lake", str(settings.lake), "--no-notify", "--out", "-"])
    printed = json.loads(result.stdout)
    assert result.exit_code == 1 and printed["counts"]["critical"] == len(monitor(settings).critical) >= 1
    assert {f["code"] for f in printed["findings"]} == {"missing_file", "volume_low"}
    assert runner.invoke(app, ["monitor", "--lake", str(settings.lake), "--at", "yesterday"]).exit_code == 2
    assert runner.invoke(app, ["monitor", "--config", str(tmp_path / "none.yml")]).exit_code == 2
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert runner.invoke(app, ["monitor", "--lake", str(settings.lake), "--out", str(folder)]).exit_code == 2


# -- hand-made ledgers ---------------------------------------------------------------------------------

def _store(tmp_path: Path, **settings: object) -> tuple[Settings, store.Ledger]:
    config = Settings(landing=tmp_path / "landing", lake=tmp_path / "lake", **settings)
    return config, store.Ledger(config.state_db_url)


def _file(ledger: store.Ledger, feed: str, day: date, rows: int, detected_at: datetime, *,
          status: str = store.LOADED, quarantined: int = 0) -> None:
    ledger.record_file(path=f"/landing/{feed}_{day:%Y_%m_%d}.csv", relative=f"{feed}_{day:%Y_%m_%d}.csv", size=1,
                       sha256=uuid.uuid4().hex, feed=feed, business_date=day, status=status, rows_read=rows,
                       rows_loaded=rows - quarantined, rows_quarantined=quarantined, rows_duplicate=0,
                       detected_at=detected_at)


def _daily(ledger: store.Ledger, feed: str, days: int, rows: int = 100, delay: timedelta = timedelta(hours=26)) -> date:
    """`days` daily files of `feed` from START, each detected `delay` after its day began (UTC); the last date."""
    for n in range(days):
        day = START + timedelta(days=n)
        _file(ledger, feed, day, rows, datetime.combine(day, datetime.min.time()) + delay)
    return START + timedelta(days=days - 1)


def _codes(report: MonitorReport, feed: str | None = None) -> set[str]:
    return {f.code.value for f in report.findings if feed is None or f.feed == feed}


def test_a_late_feed_is_stale_and_its_next_file_overdue_only_after_its_usual_delay(tmp_path: Path) -> None:
    settings, ledger = _store(tmp_path)
    last = _daily(ledger, "orders", 10)  # orders: max_age_hours 26; each file arrives 26 h after its day began
    ledger.close()
    last_arrival = day_start(last, ZoneInfo(settings.timezone)) + timedelta(hours=26)
    on_time = monitor(settings, now=last_arrival + timedelta(hours=20))
    assert not {"stale", "overdue"} & _codes(on_time, "orders"), [f.message for f in on_time.findings]
    # The next date's file is due 26 h after that date began, plus the 3 h grace: 27 h after the last arrival.
    late = monitor(settings, now=last_arrival + timedelta(hours=28))
    found = {f.code.value: f for f in late.findings if f.feed == "orders"}
    assert set(found) >= {"stale", "overdue"} and found["overdue"].business_date == last + timedelta(days=1)
    assert found["overdue"].numbers["usual_delay_hours"] == 26.0 and found["stale"].level == "critical"
    assert found["stale"].numbers["age_hours"] == 28.0


def test_an_unchanged_file_sent_again_keeps_the_feed_fresh(tmp_path: Path) -> None:
    settings, ledger = _store(tmp_path)
    last = _daily(ledger, "products", 10)  # products: max_age_hours 36
    again = datetime.combine(last + timedelta(days=1), datetime.min.time()) + timedelta(hours=26)
    _file(ledger, "products", last + timedelta(days=1), 40, again, status=store.DUPLICATE)
    ledger.close()
    report = monitor(settings, now=again + timedelta(hours=20))  # 44 h after the last loaded file
    assert not {"stale", "overdue"} & _codes(report, "products"), [f.message for f in report.findings]
    assert "stale" in _codes(monitor(settings, now=again + timedelta(hours=37)), "products")


def test_a_backfilled_lake_of_past_dates_is_not_overdue(tmp_path: Path) -> None:
    settings, ledger = _store(tmp_path)
    _daily(ledger, "orders", 10, delay=timedelta(days=300))  # loaded long after their dates
    ledger.close()
    report = monitor(settings, now=datetime.combine(START, datetime.min.time()) + timedelta(days=310))
    assert "overdue" not in _codes(report, "orders")


def test_only_a_daily_feed_misses_a_day(tmp_path: Path) -> None:
    settings, ledger = _store(tmp_path)
    _daily(ledger, "orders", 15)
    for week in range(3):  # a weekly feed: one file every Monday
        day = START + timedelta(days=7 * week)
        _file(ledger, "inventory", day, 50, datetime.combine(day, datetime.min.time()) + timedelta(hours=26))
    gap = START + timedelta(days=10)
    for n in (*range(10), *range(11, 15)):  # products: daily, but nothing for `gap`
        day = START + timedelta(days=n)
        _file(ledger, "products", day, 40, datetime.combine(day, datetime.min.time()) + timedelta(hours=26))
    ledger.close()
    report = monitor(settings, now=datetime.combine(START + timedelta(days=15), datetime.min.time()))
    missing = {(f.feed, f.business_date) for f in report.findings if f.code == "missing_file"}
    assert missing == {("products", gap)}


def test_volume_baseline_knows_weekdays() -> None:
    """Weekends are quiet: a Saturday is judged against Saturdays, not against the busy week before it."""
    history = {START + timedelta(days=n): (30 if (START + timedelta(days=n)).weekday() >= 5 else 100)
               for n in range(35)}
    saturday = START + timedelta(days=33)
    assert saturday.weekday() == 5
    weekday = baseline(history, saturday, Monitoring())
    assert weekday is not None and weekday.basis == SAME_WEEKDAY and weekday.median == 30 and weekday.points == 4
    young = baseline({d: r for d, r in history.items() if d < START + timedelta(days=9)},
                     START + timedelta(days=9), Monitoring())
    assert young is not None and young.basis == RECENT_DAYS and young.median == 100
    assert baseline(history, START + timedelta(days=2), Monitoring()) is None  # two earlier days: no judgement


def test_quiet_weekends_are_no_anomaly_but_a_quiet_weekday_is(tmp_path: Path) -> None:
    settings, ledger = _store(tmp_path)
    for n in range(35):
        day = START + timedelta(days=n)
        rows = 30 if day.weekday() >= 5 else 100
        rows = 35 if n == 32 else rows  # Friday of the last week: a weekend's volume
        _file(ledger, "events", day, rows, datetime.combine(day, datetime.min.time()) + timedelta(hours=26))
    ledger.close()
    report = monitor(settings, now=datetime.combine(START + timedelta(days=35), datetime.min.time()))
    volume = {(f.business_date, f.level.value) for f in report.findings if f.check == "volume"}
    assert volume == {(START + timedelta(days=32), "critical")}


def test_quarantine_above_the_contract_limit_and_rising(tmp_path: Path) -> None:
    settings, ledger = _store(tmp_path)
    for n, rate in enumerate((0.0, 0.02, 0.04, 0.06, 0.08, 0.10, 0.12)):  # orders: rising, under the 50 % limit
        day = START + timedelta(days=n)
        _file(ledger, "orders", day, 1000, datetime.combine(day, datetime.min.time()), quarantined=int(rate * 1000))
    for n, rate in enumerate((0.01, 0.0, 0.02, 0.01, 0.0, 0.01, 0.6)):  # customers: the last day above 50 %
        day = START + timedelta(days=n)
        _file(ledger, "customers", day, 1000, datetime.combine(day, datetime.min.time()), quarantined=int(rate * 1000))
    for n in range(7):  # products: steady at 1 %
        day = START + timedelta(days=n)
        _file(ledger, "products", day, 1000, datetime.combine(day, datetime.min.time()), quarantined=10)
    ledger.close()
    report = monitor(settings, now=datetime.combine(START + timedelta(days=7), datetime.min.time()))
    quarantine = {f.feed: f for f in report.findings if f.check == "quarantine"}
    assert set(quarantine) == {"orders", "customers"}
    assert quarantine["orders"].code == "quarantine_rising" and quarantine["orders"].level == "warning"
    assert quarantine["orders"].numbers["rise"] == pytest.approx(0.12)
    assert quarantine["customers"].code == "quarantine_above_limit" and quarantine["customers"].level == "critical"


def test_failed_stuck_and_slow_batches(tmp_path: Path) -> None:
    settings, ledger = _store(tmp_path, monitor={"stuck_minutes": 30})
    now = store.now()

    def batch(batch_id: str, day: date, status: str, minutes_ago: float, owner: str = "elsewhere:1") -> None:
        ledger.start_batch(batch_id, day, "duckdb", 1, owner=owner)
        ledger.set_batch(batch_id, status=status, started_at=now - timedelta(minutes=minutes_ago), error="boom")

    batch("made-good", START, store.FAILED, 300)
    batch("rerun", START, store.SUCCEEDED, 200)
    batch("still-failed", START + timedelta(days=1), store.FAILED, 100)
    batch("rolled", START + timedelta(days=2), store.ROLLED_BACK, 90)
    batch("orphan", START + timedelta(days=3), store.RUNNING, 5, owner="gone:7")
    batch("slow", START + timedelta(days=4), store.COMMITTED, 45, owner="busy:8")
    ledger.acquire_lock("lake", "busy:8#session", 600, dead=lambda owner: False)
    ledger.close()
    report = monitor(settings)
    health = {f.batch_id: (f.code.value, f.level.value) for f in report.findings if f.check == "pipeline"}
    assert health == {"still-failed": ("batch_failed", "critical"), "rolled": ("batch_rolled_back", "warning"),
                      "orphan": ("batch_stuck", "critical"), "slow": ("batch_slow", "warning")}


# -- reachability ----------------------------------------------------------------------------------------

def test_a_missing_lake_is_critical_and_writes_no_lake(tmp_path: Path) -> None:
    settings = Settings(landing=tmp_path / "landing", lake=tmp_path / "no-lake")
    report = monitor(settings)
    assert _codes(report) == {"lake_unreachable", "store_unreachable"}
    assert report.exit_code == 1 and set(report.skipped) == {"pipeline", "freshness", "volume", "quarantine"}
    result = runner.invoke(app, ["monitor", "--lake", str(tmp_path / "no-lake"), "--no-notify"])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not (tmp_path / "no-lake").exists(), "the monitor never creates the lake it reports missing"


@pytest.mark.parametrize("state", ["missing", "not-a-database"])
def test_a_bad_state_store_is_critical(tmp_path: Path, state: str) -> None:
    (tmp_path / "lake").mkdir()
    database = tmp_path / f"{state}.db"
    if state == "not-a-database":
        database.write_text("these are not the tables you are looking for\n" * 100)
    settings = Settings(landing=tmp_path / "landing", lake=tmp_path / "lake", state_url=f"sqlite:///{database}")
    report = monitor(settings)
    assert _codes(report) == {"store_unreachable"} and report.critical and report.exit_code == 1
    if state == "missing":
        assert not database.exists(), "a missing store is reported, not created"


def test_a_state_url_that_is_not_a_url_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    result = runner.invoke(app, ["monitor", "--lake", str(tmp_path / "lake")], env={"SHOPLAKE_STATE_URL": "nonsense"})
    assert result.exit_code == 2, result.output


# -- watch -------------------------------------------------------------------------------------------------

class Collected:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def send(self, event: Event) -> None:
        self.events.append(event)


def test_watch_runs_the_monitor_on_its_schedule(workspace: Settings) -> None:
    ledger = store.Ledger(workspace.state_db_url)
    ledger.start_batch("broken", START, "duckdb", 1, owner="elsewhere:1")
    ledger.set_batch("broken", status=store.FAILED, error="a rule failed")
    ledger.close()
    workspace.settle_seconds, workspace.scan_seconds, workspace.monitor_every = 0.1, 0.2, 0.3
    collected = Collected()
    watcher = Watcher(workspace, notifiers=Notifiers([collected]))
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while sum(e.kind == MONITOR_CRITICAL for e in collected.events) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop.set()
        thread.join(timeout=30)
    sent = [e for e in collected.events if e.kind == MONITOR_CRITICAL]
    assert len(sent) >= 2, "the monitor ran at the start and again monitor_every later"
    assert sent[0].batch_id == "broken" and sent[0].key == sent[1].key == "pipeline:batch_failed::broken"
    report = json.loads((Path(workspace.lake) / "monitor" / "report.json").read_text(encoding="utf-8"))
    assert report["checks"]["pipeline"] == "critical"
