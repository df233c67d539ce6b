"""The hook points around a batch's transaction: called in order, an audit that fails rolls every table back,
a warning does not, and a hook that breaks after the decision changes nothing."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.hooks import BatchContext, BatchHook, CheckResult
from shoplake.landing import ledger as L
from shoplake.notify import BATCH_FAILED, Event, Notifiers
from shoplake.pipeline import RunReport, run
from tests.conftest import copy_fixture

ORDERS = ("order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
          "200,1,delivered,1,30.00,USD,2026-01-06 09:00:00,2026-01-06 10:00:00\n")
ITEMS = ("order_item_id,order_id,product_id,status,sale_price,created_at,updated_at\n"
         "2000,200,10,delivered,30.00,2026-01-06 09:00:00,2026-01-06 10:00:00\n")


class Recorder(BatchHook):
    """Notes every call, with what the context held at that moment."""

    def __init__(self, results: list[CheckResult] | None = None, raise_in: str | None = None) -> None:
        self.calls: list[str] = []
        self.results = results or []
        self.raise_in = raise_in
        self.seen: dict[str, dict[str, Any]] = {}
        self.error: str | None = None

    def _note(self, point: str, batch: BatchContext) -> None:
        self.calls.append(point)
        self.seen[point] = {"before": dict(batch.versions_before), "written": dict(batch.versions_written),
                            "seconds": dict(batch.seconds), "checks": list(batch.checks), "kind": batch.kind,
                            "status": batch.ledger.batch(batch.batch_id)}
        if point == self.raise_in:
            raise RuntimeError(f"hook broke in {point} (test)")

    def started(self, batch: BatchContext) -> None:
        self._note("started", batch)

    def written(self, batch: BatchContext) -> None:
        self._note("written", batch)

    def audit(self, batch: BatchContext) -> list[CheckResult]:
        self._note("audit", batch)
        return self.results

    def audited(self, batch: BatchContext, results: list[CheckResult]) -> None:
        self._note("audited", batch)

    def committed(self, batch: BatchContext) -> None:
        self._note("committed", batch)

    def rolled_back(self, batch: BatchContext, error: str) -> None:
        self.error = error
        self._note("rolled_back", batch)


class Events:
    def __init__(self) -> None:
        self.sent: list[Event] = []

    def send(self, event: Event) -> None:
        self.sent.append(event)


@pytest.fixture(autouse=True)
def only_these_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seam is tested with the tests' own hooks alone: the hooks `batch_hooks` lists have their own tests."""
    monkeypatch.setattr("shoplake.session.batch_hooks", lambda settings, **_: [])


def gold_tables(settings: Settings) -> dict[str, Path]:
    return {p.name: p for p in sorted((Path(settings.tables_root) / "gold").iterdir()) if p.is_dir()}


def rows(path: Path, version: int | None = None) -> list[str]:
    table = DeltaTable(str(path), version=version).to_pyarrow_table()
    return sorted(repr(sorted(r.items())) for r in table.to_pylist())


def second_day(settings: Settings) -> None:
    (settings.landing / "orders_2026_01_06.csv").write_text(ORDERS)
    (settings.landing / "order_items_2026_01_06.csv").write_text(ITEMS)


def test_a_good_batch_calls_every_hook_in_order(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    hook = Recorder([CheckResult("all_fine", "error", True, 0)])
    report = run(workspace, hooks=[hook])
    assert [b.status for b in report.batches] == [L.SUCCEEDED]
    assert hook.calls == ["started", "written", "audit", "audited", "committed"]
    assert hook.seen["started"]["status"]["status"] == L.RUNNING
    assert hook.seen["started"]["before"] == {}, "nothing is noted before the batch starts writing"
    written = hook.seen["written"]
    assert written["status"]["status"] == L.RUNNING, "written comes before the ledger commit"
    gold_paths = [p for p in written["before"] if "/gold/" in p]
    assert gold_paths and all(written["before"][p] is None for p in gold_paths), "a first batch creates gold"
    built = [p for p in gold_paths if (Path(p) / "_delta_log").is_dir()]
    assert built and all(written["written"][p] == DeltaTable(p).version() for p in built)
    assert all(written["written"][p] is None for p in gold_paths if p not in built)
    assert {"read", "check", "write", "gold"} <= set(written["seconds"]) and "audit" not in written["seconds"]
    assert "audit" in hook.seen["audited"]["seconds"]
    assert hook.seen["audited"]["checks"] == [CheckResult("all_fine", "error", True, 0)]
    assert hook.seen["committed"]["status"]["status"] == L.SUCCEEDED
    assert hook.error is None


def test_a_failed_audit_leaves_every_gold_table_where_it_was(workspace: Settings) -> None:
    # DuckDB only: tests/quality/test_audit.py fails a batch by a real check on both engines.
    copy_fixture("mini", workspace.landing)
    first = run(workspace)
    assert [b.status for b in first.batches] == [L.SUCCEEDED]
    tables = gold_tables(workspace)
    before = {name: (DeltaTable(str(p)).version(), rows(p)) for name, p in tables.items()}
    second_day(workspace)
    failing = CheckResult("orders_have_items", "error", False, 3, "every order has an item")
    hook, events = Recorder([CheckResult("fine", "error", True, 0), failing]), Events()
    report = run(workspace, hooks=[hook], notifiers=Notifiers([events]))
    batch = report.batches[0]
    assert batch.status == L.FAILED
    assert "orders_have_items (3 rows)" in str(batch.error) and "fine (" not in str(batch.error)
    assert hook.calls == ["started", "written", "audit", "audited", "rolled_back"]
    assert hook.error == batch.error
    assert {"read", "check", "write", "gold", "audit"} <= set(hook.seen["rolled_back"]["seconds"])
    written, noted = hook.seen["written"]["written"], hook.seen["written"]["before"]
    changed = [p for p in noted if "/gold/" in p and written[p] != noted[p]]
    assert changed, "the second batch wrote gold before the audit failed"
    for name, path in tables.items():
        version, content = before[name]
        assert noted[str(path)] == version, name
        assert rows(path) == content, f"gold {name} is back at its rows of version {version}"
        assert rows(path) == rows(path, version)
    for path, version in noted.items():  # silver, bronze, quarantine too
        if version is not None:
            assert rows(Path(path)) == rows(Path(path), version), path
    failed_folder = workspace.archive_dir / "failed" / "2026-01-06"
    assert sorted(p.name for p in failed_folder.iterdir()) == ["order_items_2026_01_06.csv", "orders_2026_01_06.csv"]
    assert [e.kind for e in events.sent if e.batch_id == batch.batch_id] == [BATCH_FAILED]
    ledger = L.Ledger(workspace.state_db_url)
    try:
        assert (ledger.batch(batch.batch_id) or {})["status"] == L.FAILED
    finally:
        ledger.close()


def test_a_failed_warning_does_not_fail_the_batch(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    hook = Recorder([CheckResult("few_orders", "warn", False, 2)])
    report = run(workspace, hooks=[hook])
    assert [b.status for b in report.batches] == [L.SUCCEEDED]
    assert hook.calls[-1] == "committed" and "rolled_back" not in hook.calls


def test_a_hook_raising_after_the_commit_changes_nothing(workspace: Settings,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    copy_fixture("mini", workspace.landing)
    broken, after = Recorder(raise_in="committed"), Recorder()
    with caplog.at_level(logging.ERROR, logger="shoplake.hooks"):
        report = run(workspace, hooks=[broken, after])
    assert [b.status for b in report.batches] == [L.SUCCEEDED]
    assert after.calls[-1] == "committed", "the next hook is still told"
    assert any("Recorder" in r.getMessage() and "committed" in r.getMessage() for r in caplog.records)


def test_a_hook_raising_before_the_decision_fails_the_batch(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    hook = Recorder(raise_in="written")
    report: RunReport = run(workspace, hooks=[hook])
    batch = report.batches[0]
    assert batch.status == L.FAILED
    assert "Recorder failed in written" in str(batch.error)
    assert hook.calls == ["started", "written", "rolled_back"]
    tables = gold_tables(workspace)
    assert tables and all(rows(p) == [] for p in tables.values()), "a first batch's gold is emptied again"


def test_a_killed_batch_is_told_rolled_back_by_the_next_session(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    env = {**os.environ, "SHOPLAKE_CRASH_AT": "after_silver"}
    killed = subprocess.run(
        [sys.executable, "-m", "shoplake", "run", "--landing", str(workspace.landing), "--lake",
         str(workspace.lake), "--archive", str(workspace.archive)], env=env, capture_output=True, text=True,
        timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    hook = Recorder()
    report = run(workspace, hooks=[hook])
    assert hook.calls[0] == "rolled_back", "the killed batch is rolled back before the next one starts"
    assert hook.error is not None and "interrupted" in hook.error
    assert any("/silver/" in p for p in hook.seen["rolled_back"]["before"]), "its noted versions are in the context"
    assert hook.calls[1:] == ["started", "written", "audit", "audited", "committed"]
    assert [b.status for b in report.batches] == [L.SUCCEEDED]


def test_the_settings_hooks_run_before_the_callers(workspace: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []

    class Named(BatchHook):
        def __init__(self, name: str) -> None:
            self.name = name

        def started(self, batch: BatchContext) -> None:
            order.append(self.name)

    monkeypatch.setattr("shoplake.session.batch_hooks", lambda settings, **_: [Named("from settings")])
    copy_fixture("mini", workspace.landing)
    run(workspace, hooks=[Named("caller's")])
    assert order == ["from settings", "caller's"]
