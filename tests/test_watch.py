"""`shoplake watch`: the batching policy, trigger files, files still being written, and a real watcher."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from shoplake.config import Batching, Settings
from shoplake.landing.ledger import Waiting
from shoplake.landing.policy import ready_batches, why_ready
from shoplake.landing.storage import Entry
from shoplake.landing.triggers import is_whole
from shoplake.pipeline import BatchOutcome, run
from shoplake.tables import query_table
from shoplake.watch import Stability, Watcher
from tests.conftest import copy_fixture

T0 = datetime(2026, 1, 5, 8, 0)
DAY = date(2026, 1, 5)


def waiting(feed: str | None, minutes: float = 0, day: date = DAY, replaces: str | None = None) -> Waiting:
    name = f"{feed}_{day:%Y_%m_%d}.csv" if feed else f"trigger_{day:%Y_%m_%d}.json"
    return Waiting(file_id=0, relative=f"{minutes}/{name}", path=name, feed=feed, business_date=day, size=1,
                   sha256="x", mtime=0.0, detected_at=T0 + timedelta(minutes=minutes), replaces=replaces)


POLICY = Batching(max_files=4, max_wait_minutes=20, required=["orders", "order_items", "products"])
REQUIRED = [waiting("orders", 0), waiting("order_items", 1), waiting("products", 5)]


def test_a_trigger_file_starts_the_batch_at_once() -> None:
    assert why_ready([waiting("events"), waiting(None)], POLICY, T0, late=False) == "trigger"


def test_max_files_needs_every_required_feed() -> None:
    assert why_ready([*REQUIRED, waiting("events", 6)], POLICY, T0 + timedelta(minutes=6), late=False) == "max_files"
    four_without_products = [waiting("orders"), waiting("order_items"), waiting("events"), waiting("customers")]
    assert why_ready(four_without_products, POLICY, T0 + timedelta(hours=5), late=False) is None


def test_max_wait_counts_from_the_last_required_feed() -> None:
    assert why_ready(REQUIRED, POLICY, T0 + timedelta(minutes=24), late=False) is None
    assert why_ready(REQUIRED, POLICY, T0 + timedelta(minutes=25), late=False) == "max_wait"


def test_late_files_for_an_earlier_date_run_after_max_wait() -> None:
    late = [waiting("shipping", 0)]
    assert why_ready(late, POLICY, T0 + timedelta(minutes=19), late=True) is None
    assert why_ready(late, POLICY, T0 + timedelta(minutes=20), late=True) == "late"
    assert why_ready(late, POLICY, T0 + timedelta(days=3), late=False) is None


def test_older_dates_come_first_and_reprocessing_is_always_ready() -> None:
    later = [waiting(None, day=date(2026, 1, 7))]
    earlier = [waiting(None, day=date(2026, 1, 6))]
    redo = [waiting("orders", day=date(2026, 1, 4), replaces="20260104-aaaa")]
    ready = ready_batches([*later, *redo, *earlier], POLICY, T0, None)
    assert [(r.business_date.day, r.reason) for r in ready] == [(4, "reprocess"), (6, "trigger"), (7, "trigger")]


def test_a_file_is_read_once_it_stops_changing() -> None:
    settle = Stability(settle=2.0)
    growing = Entry("orders_2026_01_05.csv", 100, 1.0)
    assert settle.stable([growing], clock=0.0) == []
    assert settle.stable([Entry("orders_2026_01_05.csv", 200, 2.0)], clock=1.5) == [], "it grew: the clock restarts"
    assert settle.stable([Entry("orders_2026_01_05.csv", 200, 2.0)], clock=3.0) == []
    assert settle.stable([Entry("orders_2026_01_05.csv", 200, 2.0)], clock=3.5) == [
        Entry("orders_2026_01_05.csv", 200, 2.0)]
    assert settle.stable([Entry(".orders_2026_01_06.csv", 5, 1.0), Entry("x/a.csv.part", 5, 1.0)], clock=99) == []


def test_a_whole_trigger_needs_no_settling_once_every_other_file_has_settled() -> None:
    contents = {"trigger_2026_01_05.json": b'{"files": ["orders_2026_01_05.csv"]}',
                "trigger_2026_01_06.json": b'{"files": ["orders_2026_01_06.csv"',  # still being written
                "trigger_2026_01_07.json": b""}  # just created: `run the date`, or the start of a listing
    def whole(entry: Entry) -> bool:
        return entry.relative in contents and is_whole(contents[entry.relative])

    settle = Stability(settle=2.0)
    data, trigger = Entry("orders_2026_01_05.csv", 100, 1.0), Entry("trigger_2026_01_05.json", 37, 1.0)
    assert settle.stable([data, trigger], clock=0.0, whole=whole) == [], "its data file has not settled yet"
    assert settle.stable([data, trigger], clock=1.0, whole=whole) == []
    assert settle.stable([data, trigger], clock=2.0, whole=whole) == [data, trigger]
    late = Entry("trigger_2026_01_05.json", 37, 9.0)  # dropped once its file had settled
    assert settle.stable([data, late], clock=2.1, whole=whole) == [data, late], "read at once"
    assert not settle.settling
    for name in ("trigger_2026_01_06.json", "trigger_2026_01_07.json"):
        fresh = Stability(settle=2.0)
        assert fresh.stable([data], clock=0.0) == []
        unfinished = Entry(name, len(contents[name]), 5.0)
        assert fresh.stable([data, unfinished], clock=2.0, whole=whole) == [data], f"{name} settles as any file"
        assert fresh.settling
        assert fresh.stable([data, unfinished], clock=4.0, whole=whole) == [data, unfinished]


def test_only_a_whole_json_object_is_a_whole_trigger() -> None:
    assert is_whole(b"{}") and is_whole(b'\xef\xbb\xbf{"files": {"a.csv": 3}}\n')
    assert not is_whole(b"") and not is_whole(b'{"files": {"a.csv": 3}') and not is_whole(b"[]")
    assert not is_whole(b"{" + b" " * (1 << 20) + b"}"), "past the size a trigger may have: it settles"


def row_count(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def drop_trigger(landing: Path, day: str, files: dict[str, int]) -> None:
    """Write the trigger under a temporary name and rename it into place, as a sender should."""
    partial = landing / f".trigger_{day}.json.tmp"
    partial.write_text(json.dumps({"files": [{"name": n, "rows": r} for n, r in files.items()]}))
    partial.rename(landing / f"trigger_{day}.json")


def test_a_trigger_listing_a_missing_file_fails_the_batch(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    drop_trigger(workspace.landing, "2026_01_05", {"orders_2026_01_05.csv": 6, "returns_2026_01_05.csv": 3})
    batch = run(workspace).batches[0]
    assert batch.status == "failed"
    assert "trigger_2026_01_05.json lists 1 file(s) that have not arrived: returns_2026_01_05.csv" in str(batch.error)


def test_a_file_shorter_than_its_trigger_says_fails_the_batch(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    drop_trigger(workspace.landing, "2026_01_05", {"orders_2026_01_05.csv": 7, "products_2026_01_05.csv": 3})
    batch = run(workspace).batches[0]
    assert batch.status == "failed"
    assert "orders_2026_01_05.csv has 6 rows, the trigger file lists 7" in str(batch.error)
    for layer in ("bronze", "silver", "quarantine"):
        assert query_table(workspace, layer, "orders") == [], f"the failed batch left rows in {layer}.orders"
    # Products, whose counts were right, was read and written before orders (its child) came up short:
    # the rollback takes it back too.
    for layer in ("bronze", "silver"):
        assert query_table(workspace, layer, "products") == [], f"the rollback left rows in {layer}.products"


def test_a_trigger_with_matching_counts_loads(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    drop_trigger(workspace.landing, "2026_01_05", {"orders_2026_01_05.csv": 6, "products_2026_01_05.csv": 3})
    batch = run(workspace).batches[0]
    assert batch.status == "succeeded", batch.error
    assert (workspace.archive_dir / "processed" / "2026-01-05" / "trigger_2026_01_05.json").exists()


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def ledger_rows(state: Path | str, sql: str) -> list[tuple[object, ...]]:
    """Rows of the state store at `state`: a SQLite file, or a store's URL (SQLite or PostgreSQL)."""
    if isinstance(state, str):
        import sqlalchemy as sa

        from shoplake.landing.ledger import database_url

        engine = sa.create_engine(database_url(state), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(sa.text(sql))]
        except sa.exc.DBAPIError:
            return []  # the store or its tables not created yet
        finally:
            engine.dispose()
    if not state.exists():
        return []
    with sqlite3.connect(state) as conn:
        try:
            return conn.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []  # tables not created yet


@pytest.mark.integration
def test_a_running_watcher_picks_up_a_trigger_file(tmp_path: Path, state_url: str) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (tmp_path / "shoplake.yml").write_text(yaml.safe_dump({
        "landing": "landing", "lake": "lake", "archive": "archive", "settle_seconds": 0.3, "scan_seconds": 2,
        "batching": {"max_files": 100, "max_wait_minutes": 60}, "state_url": state_url,
    }))
    state = state_url
    watcher = subprocess.Popen([sys.executable, "-m", "shoplake", "watch"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        copy_fixture("mini", landing)
        wait_for(lambda: len(ledger_rows(state, "SELECT 1 FROM files WHERE status = 'waiting'")) == 5, 60,
                 "the five files to be noted as waiting")
        time.sleep(1.5)
        assert ledger_rows(state, "SELECT * FROM batches") == [], "no trigger, not enough files: nothing runs"
        drop_trigger(landing, "2026_01_05", {"orders_2026_01_05.csv": 6})
        wait_for(lambda: ledger_rows(state, "SELECT 1 FROM batches WHERE status = 'succeeded'"), 120,
                 "the triggered batch to succeed")
        assert not any(landing.iterdir()), "every file left landing"
        assert (tmp_path / "archive" / "processed" / "2026-01-05" / "orders_2026_01_05.csv").exists()
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, _ = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, out
    assert "(trigger): succeeded" in out and "stopped after 1 batch(es)" in out, out


def test_a_whole_trigger_starts_its_batch_without_waiting_to_settle(workspace: Settings) -> None:
    workspace.settle_seconds, workspace.scan_seconds, workspace.monitor_every = 3.0, 60, 0  # nothing between
    ended: list[tuple[float, BatchOutcome]] = []
    watcher = Watcher(workspace, on_batch=lambda b: ended.append((time.perf_counter(), b)))
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        copy_fixture("mini", workspace.landing)
        wait_for(lambda: len(ledger_rows(workspace.state_db_url, "SELECT 1 FROM files WHERE status = 'waiting'")) == 5,
                 30, "the five files to settle and be noted as waiting")
        arrived = time.perf_counter()
        drop_trigger(workspace.landing, "2026_01_05", {"orders_2026_01_05.csv": 6})
        wait_for(lambda: ended, 60, "the triggered batch")
    finally:
        watcher.stop.set()
        thread.join(timeout=60)
    [(end, batch)] = ended
    assert batch.status == "succeeded" and batch.reason == "trigger", batch.error
    assert end - batch.seconds - arrived < workspace.settle_seconds / 2, "the batch started before the trigger settled"


def split_day(source: Path, target: Path, pieces: int) -> dict[str, int]:
    """Cut each feed file of a generated day into parts (same header), `pieces` files in all."""
    files = sorted(p for p in source.iterdir() if p.suffix == ".csv")
    per_file = pieces // len(files)
    extra = pieces - per_file * len(files)
    rows: dict[str, int] = {}
    for i, path in enumerate(files):
        parts = per_file + (1 if i < extra else 0)
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
        header, body = lines[0], lines[1:]
        stem, day = path.stem.rsplit("_", 3)[0], "_".join(path.stem.rsplit("_", 3)[1:])
        for n in range(parts):
            chunk = body[n::parts]
            name = f"{stem}_part{n:04d}_{day}.csv"
            with (target / name).open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows([header, *chunk])
            rows[name] = len(chunk)
    return rows


@pytest.mark.integration
def test_a_burst_of_a_thousand_files_is_loaded_exactly_once(tmp_path: Path) -> None:
    from shoplake.generate import generate

    generate(tmp_path / "day", days=1, scale=0.002, defect_rate=0.0, seed=5)
    staged = tmp_path / "staged"
    staged.mkdir()
    rows = split_day(tmp_path / "day", staged, 1000)
    assert len(rows) == 1000
    landing = tmp_path / "landing"
    landing.mkdir()
    settings = Settings(landing=landing, lake=tmp_path / "lake", archive=tmp_path / "archive", settle_seconds=0.3,
                        scan_seconds=1.0)
    batches = []
    watcher = Watcher(settings, on_batch=batches.append)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        for name in rows:  # all at once, as fast as the disk takes them
            os.link(staged / name, landing / name)
        wait_for(lambda: not any(landing.iterdir()) and batches, 600, "landing to empty")
    finally:
        watcher.stop.set()
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert all(b.status == "succeeded" for b in batches), [b.error for b in batches]
    outcomes = [f for b in batches for f in b.files]
    assert sorted(f.file for f in outcomes) == sorted(rows), "every file in exactly one batch"
    assert all(f.status == "loaded" for f in outcomes)
    assert {f.file: f.rows_read for f in outcomes} == rows
    assert all(f.rows_read == f.rows_loaded + f.rows_quarantined + f.rows_duplicate for f in outcomes)
    state = settings.lake / "_state" / "shoplake.db"
    assert ledger_rows(state, "SELECT count(*), count(DISTINCT relative) FROM files WHERE status = 'loaded'") == [
        (1000, 1000)]
    from deltalake import DeltaTable

    for feed in {name.split("_part")[0] for name in rows}:
        bronze = DeltaTable(str(settings.lake / "bronze" / feed)).to_pyarrow_table().num_rows
        assert bronze == sum(n for name, n in rows.items() if name.startswith(feed + "_part")), feed
    assert len(list((tmp_path / "archive" / "processed").rglob("*.csv"))) == 1000
    assert len(batches) >= 1


def test_stopping_an_idle_watcher_returns_promptly(workspace: Settings) -> None:
    workspace.settle_seconds, workspace.scan_seconds = 0.1, 0.2
    watcher = Watcher(workspace)
    ran: list[list[BatchOutcome]] = []
    thread = threading.Thread(target=lambda: ran.append(watcher.run()))
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "an idle watcher keeps watching until it is stopped"
    stopped = time.monotonic()
    watcher.stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - stopped < 2.0, "stopped within a few scan intervals, not after a sleep"
    assert ran == [[]], "it returned normally, having run no batch"


def start_watcher(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    (tmp_path / "landing").mkdir(exist_ok=True)
    (tmp_path / "shoplake.yml").write_text(yaml.safe_dump({
        "landing": "landing", "lake": "lake", "archive": "archive", "settle_seconds": 0.2, "scan_seconds": 1}))
    return subprocess.Popen([sys.executable, "-m", "shoplake", "watch"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200", **env})


@pytest.mark.integration
@pytest.mark.parametrize("signals", [1, 2], ids=["finish", "abandon"])
def test_a_signal_finishes_or_abandons_the_batch_in_flight(tmp_path: Path, signals: int) -> None:
    """One SIGTERM: the batch in flight (paused after bronze) finishes, then the watcher exits 0.
    Two: the batch is abandoned, rolled back, and its files wait in landing for the next start."""
    watcher = start_watcher(tmp_path, SHOPLAKE_PAUSE_AT="after_bronze:4")
    state = tmp_path / "lake" / "_state" / "shoplake.db"
    try:
        copy_fixture("mini", tmp_path / "landing")
        drop_trigger(tmp_path / "landing", "2026_01_05", {})
        wait_for(lambda: ledger_rows(state, "SELECT 1 FROM batches WHERE status = 'running'"), 60, "a running batch")
        first_commit = tmp_path / "lake" / "bronze" / "orders" / "_delta_log" / f"{0:020d}.json"
        wait_for(first_commit.is_file, 60, "bronze to be written (the batch then pauses)")
        time.sleep(0.5)
        for _ in range(signals):
            watcher.send_signal(signal.SIGTERM)
            time.sleep(0.3)
        out, _ = watcher.communicate(timeout=120)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    statuses = ledger_rows(state, "SELECT status FROM batches")
    waiting = ledger_rows(state, "SELECT relative FROM files WHERE status = 'waiting'")
    if signals == 1:
        assert watcher.returncode == 0, out
        assert statuses == [("succeeded",)], out
        assert waiting == [] and not any((tmp_path / "landing").iterdir())
    else:
        assert watcher.returncode == 130, out
        assert statuses == [("rolled_back",)], out
        assert len(waiting) == 6 and len(list((tmp_path / "landing").iterdir())) == 6, "the files wait again"
        lake = Settings(landing=tmp_path / "landing", lake=tmp_path / "lake", archive=tmp_path / "archive")
        assert query_table(lake, "silver", "orders") == [], "the abandoned batch paused before silver"
        from deltalake import DeltaTable

        bronze = str(tmp_path / "lake" / "bronze" / "orders")
        assert DeltaTable(bronze, version=0).to_pyarrow_table().num_rows == 6, "bronze was written before the pause"
        assert DeltaTable(bronze).to_pyarrow_table().num_rows == 0, "and rolled back when the batch was abandoned"


def test_waiting_files_and_their_clock_survive_a_restart(workspace: Settings, state_url: str) -> None:
    from shoplake.pipeline import Session

    workspace.state_url = state_url
    copy_fixture("mini", workspace.landing)
    with Session(workspace) as session:
        first = session.scan()
    time.sleep(0.05)
    with Session(workspace) as session:
        second = session.scan()
        assert [(w.relative, w.detected_at) for w in second] == [(w.relative, w.detected_at) for w in first]
        (workspace.landing / "customers_2026_01_05.csv").unlink()  # the sender took it back
        third = session.scan()
    assert len(first) == 5 and sorted(w.relative for w in third) == sorted(
        w.relative for w in first if not w.relative.startswith("customers"))
    policy = Batching(max_files=100, max_wait_minutes=60)
    later = max(w.detected_at for w in second) + timedelta(minutes=60)
    assert why_ready(second, policy, later, late=False) == "max_wait", "the clock started at the first sighting"
