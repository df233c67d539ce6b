"""A header the contract needs and the file lacks rejects the file, naming the header; a missing
optional column follows the contract's schema_drift as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.pipeline import FileOutcome, RunReport, run
from shoplake.tables import query_table

PACK = Path(__file__).parents[2] / "src/shoplake/contracts/pack"
CUSTOMERS = (
    "customer_id,email,phone,first_name,last_name,birth_date,city,country,segment,lifecycle_stage,"
    "created_at,updated_at\n"
    "1,a@example.com,+1 555 0100,Ann,Lee,1990-01-01,Paris,FR,consumer,new,2026-01-01 00:00:00,2026-01-01 00:00:00\n"
)
ORDERS_HEADER = "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at"
ORDERS = ORDERS_HEADER + "\n" + "".join(
    f"{100 + i},1,delivered,1,10.00,USD,2026-01-05 09:00:00,2026-01-05 10:00:00\n" for i in range(5))


def overlay(settings: Settings, tmp_path: Path, old: str, new: str) -> None:
    """The built-in orders contract with one edit, as a user's overlay."""
    text = (PACK / "orders.yml").read_text()
    assert old in text
    folder = tmp_path / "contracts"
    folder.mkdir(exist_ok=True)
    (folder / "orders.yml").write_text(text.replace(old, new))
    settings.contracts = [folder]


def orders_outcome(report: RunReport) -> FileOutcome:
    (outcome,) = [f for b in report.batches for f in b.files if f.feed == "orders"]
    return outcome


def land(settings: Settings, customers: str, orders: str) -> None:
    (settings.landing / "customers_2026_01_05.csv").write_text(customers)
    (settings.landing / "orders_2026_01_05.csv").write_text(orders)


def test_a_misspelt_source_rejects_the_file_naming_the_header(workspace: Settings, tmp_path: Path) -> None:
    overlay(workspace, tmp_path, "customer_id: {type: integer, required: true,",
            "customer_id: {type: integer, required: true, source: custmer_id,")
    land(workspace, CUSTOMERS, ORDERS)
    report = run(workspace)
    outcome = orders_outcome(report)
    assert outcome.status == "failed"
    assert f"header `custmer_id` missing (found: {ORDERS_HEADER.replace(',', ', ')})" in str(outcome.error)
    assert "(did you mean `customer_id`?)" in str(outcome.error)
    assert report.failed
    assert query_table(workspace, "quarantine", "orders") == [], "no row is quarantined as required but empty"


def test_a_missing_key_column_rejects_the_file(workspace: Settings, tmp_path: Path) -> None:
    overlay(workspace, tmp_path, "  order_id: {type: integer, required: true}",
            "  order_id: {type: integer, source: order_number}")  # not required, but the primary key
    land(workspace, CUSTOMERS, ORDERS)
    outcome = orders_outcome(run(workspace))
    assert outcome.status == "failed" and "header `order_number` missing" in str(outcome.error)


@pytest.mark.parametrize(("drift", "loaded", "quarantined"), [("rescue", 5, 0), ("quarantine", 0, 5)])
def test_a_missing_optional_column_follows_schema_drift(
    workspace: Settings, tmp_path: Path, drift: str, loaded: int, quarantined: int
) -> None:
    overlay(workspace, tmp_path, "schema_drift: rescue", f"schema_drift: {drift}")
    without_currency = "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != 5)
                                 for line in ORDERS.splitlines()) + "\n"
    land(workspace, CUSTOMERS, without_currency)
    outcome = orders_outcome(run(workspace))
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("loaded", loaded, quarantined)


def test_a_missing_optional_column_with_schema_drift_fail_rejects_the_file(workspace: Settings, tmp_path: Path) -> None:
    overlay(workspace, tmp_path, "schema_drift: rescue", "schema_drift: fail")
    without_currency = "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != 5)
                                 for line in ORDERS.splitlines()) + "\n"
    land(workspace, CUSTOMERS, without_currency)
    outcome = orders_outcome(run(workspace))
    assert outcome.status == "failed" and "missing column(s) currency" in str(outcome.error)
