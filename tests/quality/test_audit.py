"""Write-audit-publish: every batch is audited before it commits; a failing error check fails the batch and
leaves gold at its previous versions and rows, with the failing rows stored and reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.landing.ledger import Ledger
from shoplake.pipeline import RunReport, run
from shoplake.quality.history import StoredResult, report_key, results_history
from tests.conftest import ENGINES, copy_fixture

ORDERS = ("order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
          "200,1,delivered,1,30.00,USD,2026-01-06 09:00:00,2026-01-06 10:00:00\n")
ITEMS = ("order_item_id,order_id,product_id,status,sale_price,created_at,updated_at\n"
         "2000,200,10,delivered,30.00,2026-01-06 09:00:00,2026-01-06 10:00:00\n")
# Fails as soon as a sale of 30 or more reaches gold: day 2's only sale.
NO_BIG_SALES = """\
-- name: no_big_sales
-- severity: error
-- description: no sale of 30 or more (a test's rule)
select order_item_id, sale_price
from gold.fact_sales
where sale_price >= 30
"""
YAML_CHECKS = """\
- name: every_order_has_a_customer
  severity: error
  description: orders of silver all name a customer
  sql: select order_id from silver.orders where customer_id is null
- name: returned_orders
  severity: warn
  description: returned orders (a warning only)
  sql: |
    select order_id, status
    from silver.orders
    where status = 'returned'
"""


def stored(settings: Settings) -> list[StoredResult]:
    ledger = Ledger(settings.state_db_url)
    try:
        return results_history(ledger, batches=10)
    finally:
        ledger.close()


def report_of(settings: Settings, batch_id: str) -> dict[str, Any]:
    return dict(json.loads((Path(settings.archive_dir) / report_key(batch_id)).read_text()))


def gold_tables(settings: Settings) -> dict[str, tuple[int, list[dict[str, Any]]]]:
    """Every gold table's version and rows (sorted, as text), read by delta-rs."""
    tables = {}
    for path in sorted((Path(settings.lake) / "gold").iterdir()):
        table = DeltaTable(str(path))
        rows = table.to_pyarrow_table().to_pylist()
        tables[path.name] = (table.version(), sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True)))
    return tables


def with_checks(workspace: Settings, tmp_path: Path, files: dict[str, str]) -> Settings:
    folder = tmp_path / "checks"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    workspace.checks = [folder]
    return workspace


def test_user_checks_in_sql_and_yaml_run_and_are_stored(workspace: Settings, tmp_path: Path) -> None:
    assert isinstance(workspace.landing, Path)
    copy_fixture("mini", workspace.landing)
    settings = with_checks(workspace, tmp_path, {"no_big_sales.sql": NO_BIG_SALES, "orders.yml": YAML_CHECKS})
    report = run(settings)
    [batch] = report.batches
    assert batch.status == "succeeded"  # the only failing check is a warning
    results = {r.check_name: r for r in stored(settings)}
    assert results["no_big_sales"].passed and results["every_order_has_a_customer"].passed
    returned = results["returned_orders"]
    assert (returned.severity, returned.passed, returned.failing_rows) == ("warn", False, 1)
    assert returned.samples == [{"order_id": "103", "status": "returned"}]
    written = report_of(settings, batch.batch_id)
    assert written["status"] == "passed"
    assert {c["name"]: c["passed"] for c in written["checks"]}["returned_orders"] is False
    # the built-in checks ran on the same batch and all passed on the mini fixture
    assert [n for n, r in results.items() if not r.passed] == ["returned_orders"]
    assert {"fact_sales_key_unique", "files_reconcile", "sales_reconcile_with_silver"} <= set(results)


@pytest.fixture(params=ENGINES)
def failed_day(request: pytest.FixtureRequest, workspace: Settings,
               tmp_path: Path) -> tuple[Settings, RunReport, dict[str, tuple[int, list[dict[str, Any]]]]]:
    """Day 1 loads; then an error check that day 2 breaks is added and day 2 runs."""
    workspace.engine = request.param
    assert isinstance(workspace.landing, Path)
    copy_fixture("mini", workspace.landing)
    assert [b.status for b in run(workspace).batches] == ["succeeded"]
    before = gold_tables(workspace)
    (workspace.landing / "orders_2026_01_06.csv").write_text(ORDERS)
    (workspace.landing / "order_items_2026_01_06.csv").write_text(ITEMS)
    settings = with_checks(workspace, tmp_path, {"no_big_sales.sql": NO_BIG_SALES})
    return settings, run(settings), before


def test_a_failing_error_check_fails_the_batch_and_gold_stays(
        failed_day: tuple[Settings, RunReport, dict[str, tuple[int, list[dict[str, Any]]]]]) -> None:
    settings, report, before = failed_day
    [batch] = report.batches
    assert batch.status == "failed"
    assert batch.error is not None and "no_big_sales (1 rows)" in batch.error
    after = gold_tables(settings)
    assert set(after) == set(before)
    for name, (version, rows) in before.items():
        # a restore is a new commit: the version number moves on, the rows are the previous version's
        assert after[name][1] == rows, name
        assert after[name][0] >= version
    assert all(r["order_item_id"] != 2000 for r in after["fact_sales"][1])
    mine = [r for r in stored(settings) if r.batch_id == batch.batch_id]
    [failing] = [r for r in mine if not r.passed]
    assert (failing.check_name, failing.severity, failing.failing_rows) == ("no_big_sales", "error", 1)
    assert failing.samples == [{"order_item_id": "2000", "sale_price": "30.00"}]
    written = report_of(settings, batch.batch_id)
    assert (written["status"], written["failed_errors"], written["business_date"]) == (
        "failed", ["no_big_sales"], "2026-01-06")
    [check] = [c for c in written["checks"] if c["name"] == "no_big_sales"]
    assert check["samples"] == [{"order_item_id": "2000", "sale_price": "30.00"}]
