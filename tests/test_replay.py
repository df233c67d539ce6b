"""Quarantine replay and rule counts: rows are known by (batch, file, row), and counts go with their batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.landing.ledger import Ledger, rule_results
from shoplake.pipeline import run
from shoplake.reprocess import replay_quarantine
from tests.conftest import FIXTURES
from tests.test_pipeline import table

ORDERS_HEADER = (FIXTURES / "mini" / "orders_2026_01_05.csv").read_text().splitlines()[0]
CUSTOMERS_HEADER = (FIXTURES / "mini" / "customers_2026_01_05.csv").read_text().splitlines()[0]


def orders(*rows: tuple[int, int]) -> str:
    """Order rows (order_id, customer_id) that pass every check but their customer reference."""
    return ORDERS_HEADER + "\n" + "".join(
        f"{order},{customer},delivered,1,{order - 490}.00,USD,2026-01-05 09:00:00,2026-01-05 10:00:00\n"
        for order, customer in rows)


def table_dicts(settings: Settings, layer: str, name: str) -> list[dict[str, object]]:
    return DeltaTable(f"{settings.lake}/{layer}/{name}").to_pyarrow_table().to_pylist()


def quarantine_lineage(settings: Settings) -> Counter[tuple[object, ...]]:
    """(order_id as landed, row number, file, batch) of every quarantined order row."""
    names = ("order_id", "_row_number", "_source_file", "_batch_id")
    return Counter(tuple(row[n] for n in names) for row in table_dicts(settings, "quarantine", "orders"))


def test_replay_of_a_file_name_that_recurs_across_days_keeps_each_row_once(workspace: Settings) -> None:
    export = workspace.landing / "orders" / "export.csv"
    export.parent.mkdir()
    export.write_text(orders((500, 7), (501, 8)))  # day one: customers 7 and 8 are unknown
    first = run(workspace).batches[0]
    export.write_text(orders((502, 8), (503, 7), (504, 9)))  # day two, same name, same row numbers
    second = run(workspace).batches[0]
    assert [first.status, second.status] == ["succeeded", "succeeded"]
    f, b1, b2 = "orders/export.csv", first.batch_id, second.batch_id
    assert quarantine_lineage(workspace) == Counter({
        ("500", 1, f, b1): 1, ("501", 2, f, b1): 1, ("502", 1, f, b2): 1, ("503", 2, f, b2): 1, ("504", 3, f, b2): 1})

    # Customer 7 arrives: its orders of both days pass now; the rest stay, each once, as it landed.
    (workspace.landing / "customers_2026_01_06.csv").write_text(
        CUSTOMERS_HEADER + "\n7,Ana,Sol,ana@example.com,,1990-01-01,Lima,PE,consumer,new,"
        "2026-01-06 08:00:00,2026-01-06 08:00:00\n")
    assert run(workspace).batches[0].status == "succeeded"
    replayed = replay_quarantine(workspace, "orders").batches[0]
    assert replayed.status == "succeeded"
    assert [(x.file, x.rows_read, x.rows_loaded, x.rows_quarantined) for x in replayed.files] == [(f, 5, 2, 3)]
    assert quarantine_lineage(workspace) == Counter({("501", 2, f, b1): 1, ("502", 1, f, b2): 1, ("504", 3, f, b2): 1})
    by_order = {r["order_id"]: r for r in table_dicts(workspace, "quarantine", "orders")}
    assert {k: r["customer_id"] for k, r in by_order.items()} == {"501": "8", "502": "8", "504": "9"}, \
        "each quarantined row keeps its own raw values"
    assert sorted((r[0], r[1]) for r in table(workspace, "silver", "orders")) == [(500, 7), (503, 7)]


def rule_rows(settings: Settings) -> list[tuple[str, str, str, int]]:
    ledger = Ledger(settings.state_db_url)
    try:
        with ledger.engine.connect() as conn:
            rows = conn.execute(rule_results.select()).all()
        return sorted((r.batch_id, r.feed, r.rule, r.failed_rows) for r in rows)
    finally:
        ledger.close()


@pytest.mark.integration
def test_rule_counts_of_a_killed_batch_roll_back_with_it(workspace: Settings) -> None:
    for path in (FIXTURES / "mini").iterdir():
        (workspace.landing / path.name).write_bytes(path.read_bytes())
    env = {**os.environ, "SHOPLAKE_CRASH_AT": "after_bronze"}
    killed = subprocess.run(
        [sys.executable, "-m", "shoplake", "run", "--landing", str(workspace.landing), "--lake", str(workspace.lake),
         "--archive", str(workspace.archive_dir)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert {r[0] for r in rule_rows(workspace)}, "the killed batch had recorded its rule counts"

    report = run(workspace)
    assert any("rolled back" in line for line in report.recovered), report.recovered
    batch = report.batches[0]
    assert batch.status == "succeeded"
    expected = sorted((batch.batch_id, feed, rule, n) for feed, rules in batch.rule_failures.items()
                      for rule, n in rules.items())
    assert expected, "the mini fixture fails rules"
    assert rule_rows(workspace) == expected, "only the batch that stands is counted"
