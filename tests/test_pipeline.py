"""End-to-end behaviour of one run on small hand-made files whose every outcome is known."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.landing.ledger import Ledger
from shoplake.pipeline import RunReport, run
from shoplake.tables import query_table
from tests.conftest import FIXTURES, copy_fixture


def files_of(report: RunReport) -> dict[str, dict[str, object]]:
    return {f.file: vars(f) for b in report.batches for f in b.files}


def table(settings: Settings, layer: str, name: str) -> list[tuple[object, ...]]:
    return query_table(settings, layer, name)


def named_rows(settings: Settings, layer: str, name: str) -> list[dict[str, Any]]:
    """Rows by column name: a partitioned gold table's columns need not come back in the model's order."""
    table = DeltaTable(str(Path(settings.tables_root) / layer / name)).to_pyarrow_table()
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


@pytest.mark.builds_gold
def test_mini_batch_counts_reasons_and_kpis(on_engine: Settings) -> None:
    workspace = on_engine
    workspace.gold_models = ["agg_daily_sales"]  # the KPIs checked, and the models they read
    copy_fixture("mini", workspace.landing)
    report = run(workspace)
    files = files_of(report)
    expected = {  # read, loaded, quarantined, duplicates
        "customers_2026_01_05.csv": (3, 2, 1, 0),
        "products_2026_01_05.csv": (3, 2, 1, 0),
        "orders_2026_01_05.csv": (6, 2, 3, 1),
        "order_items_2026_01_05.csv": (5, 3, 2, 0),
    }
    for name, (read, loaded, quarantined, duplicates) in expected.items():
        f = files[name]
        assert (f["rows_read"], f["rows_loaded"], f["rows_quarantined"], f["rows_duplicate"]) == (
            read, loaded, quarantined, duplicates), name
        assert f["status"] == "loaded"
        assert Path(str(f["archived_to"])).parent == workspace.archive_dir / "processed" / "2026-01-05"
    assert files["shipping_2026_01_05.csv"]["status"] == "failed"
    assert "binary" in str(files["shipping_2026_01_05.csv"]["error"])
    assert not any(workspace.landing.iterdir()), "every file leaves the landing folder"

    # Every failed rule of a row is kept, with the raw values, file and row number.
    quarantine = {(r[0], r[-5]): r for r in table(workspace, "quarantine", "orders")}
    order_104 = quarantine[("104", 6)]
    assert order_104[-2] == ["status.accepted_values", "created_not_in_future"]
    assert "status 'teleported' is not one of" in order_104[-1][0]
    assert order_104[2] == "teleported" and order_104[6] == "2099-01-05 11:00:00"
    items = {r[0]: r for r in table(workspace, "quarantine", "order_items")}
    assert items["1004"][-2] == ["order_id.references", "sale_price_positive"]
    assert items["1002"][-2] == ["order_id.references"], "an item of a quarantined order is an orphan too"
    customers = {r[0]: r for r in table(workspace, "quarantine", "customers")}
    assert customers["2"][-2] == ["email.format", "phone.format"]

    # Normalisation: "3.0" is customer 3, "Returned" is returned, "usd" is USD.
    silver_orders = {r[0]: r for r in table(workspace, "silver", "orders")}
    assert silver_orders[103][2] == "returned" and silver_orders[103][5] == "USD"
    assert sorted(r[0] for r in table(workspace, "silver", "customers")) == [1, 3]

    daily = named_rows(workspace, "gold", "agg_daily_sales")
    assert len(daily) == 1
    orders, items_n, gross, returned, net, margin, aov, return_rate = (daily[0][c] for c in (
        "orders", "items", "gross_revenue", "returned_revenue", "net_revenue", "margin", "average_order_value",
        "return_rate"))
    assert (orders, items_n) == (2, 3)
    assert (gross, returned, net, margin) == (Decimal("55.00"), Decimal("15.00"), Decimal("40.00"), Decimal("25.00"))
    assert aov == pytest.approx(27.5) and return_rate == pytest.approx(0.5)


def test_a_file_loaded_before_is_skipped_and_reported(on_engine: Settings) -> None:
    workspace = on_engine
    copy_fixture("mini", workspace.landing)
    run(workspace)
    before = len(table(workspace, "silver", "orders"))
    (workspace.landing / "orders_again_2026_01_05.csv").write_bytes(
        (FIXTURES / "mini" / "orders_2026_01_05.csv").read_bytes())
    report = run(workspace)
    assert [f.status for f in report.skipped_duplicates] == ["duplicate"]
    assert "same content" in str(report.skipped_duplicates[0].error)
    assert len(table(workspace, "silver", "orders")) == before
    assert len(table(workspace, "bronze", "orders")) == 6, "bronze did not take the copy either"
    ledger = Ledger(workspace.state_db_url)
    statuses = sorted(f.status for f in ledger.file_rows() if f.feed == "orders")
    ledger.close()
    assert statuses == ["duplicate", "loaded"]


# Each a file no engine can read, and the reason its error gives.
UNPARSEABLE = {
    "empty": (b"", "empty"),
    "binary": (b"\x00\x01\x02PK binary", "binary"),
    "latin1-header": ("order_id,customer_id\n1,Müller\n".encode("latin-1").replace(b"order_id", b"\xff\xfeorder_id"),
                      "UTF-8"),
    "no-header": (b"100,1,delivered,2,40.00,USD,2026-01-05 09:00:00,2026-01-05 10:00:00\n", "no header"),
    "ragged": (b"order_id,customer_id,status\n1,2,created\n3,4,created,extra,fields\n", "cannot be parsed"),
    "latin1-body": (b"order_id,customer_id,status\n1,2,created\n3,4,M\xfcller\n", "cannot be parsed"),
}


def test_each_unparseable_file_fails_alone(on_engine: Settings) -> None:
    """Every kind in one batch (one pipeline run per engine, not one per kind): each file fails with its
    own reason and goes to failed/ as it came, and the rest of the batch still loads."""
    workspace = on_engine
    copy_fixture("mini", workspace.landing)
    (workspace.landing / "shipping_2026_01_05.csv").unlink()
    (workspace.landing / "orders_2026_01_05.csv").unlink()
    for kind, (content, _) in UNPARSEABLE.items():
        (workspace.landing / f"orders_{kind}_2026_01_05.csv").write_bytes(content)
    report = run(workspace)
    files = files_of(report)
    for kind, (content, reason) in UNPARSEABLE.items():
        name = f"orders_{kind}_2026_01_05.csv"
        assert files[name]["status"] == "failed", kind
        assert reason in str(files[name]["error"]), (kind, files[name]["error"])
        assert (workspace.archive_dir / "failed" / "2026-01-05" / name).read_bytes() == content, kind
    assert files["customers_2026_01_05.csv"]["status"] == "loaded", "the rest of the batch still loads"
    assert len(report.batches) == 1 and report.batches[0].status == "succeeded"


def test_extra_columns_are_rescued_and_missing_ones_read_as_null(workspace: Settings) -> None:
    (workspace.landing / "products_2026_01_05.csv").write_text(
        "product_id,sku,name,brand,department,category,cost,retail_price,updated_at,loyalty_points\n"
        "10,ab-1,Shirt,Acme,Men,Tops,10.00,25.00,2026-01-05 00:00:00,7\n"
    )
    run(workspace)
    bronze = table(workspace, "bronze", "products")
    assert json.loads(str(bronze[0][10])) == {"loyalty_points": "7"}
    assert bronze[0][6] is None, "subcategory is absent from the file"
    assert len(table(workspace, "silver", "products")) == 1


def test_upsert_keeps_the_latest_version_and_scd2_keeps_history(on_engine: Settings) -> None:
    workspace = on_engine
    copy_fixture("mini", workspace.landing)
    (workspace.landing / "shipping_2026_01_05.csv").unlink()
    run(workspace)
    (workspace.landing / "customers_2026_01_06.csv").write_text(
        "customer_id,first_name,last_name,email,phone,birth_date,city,country,segment,lifecycle_stage,"
        "created_at,updated_at\n"
        "1,Ann,Lee,ann@example.com,+14155550123,1990-01-01,Lyon,FR,consumer,active,2026-01-01 10:00:00,"
        "2026-01-06 10:00:00\n"
        "3,Cy,Li,cy@example.com,,2001-05-05,Oslo,NO,home_office,active,2026-01-01 10:00:00,2026-01-06 10:00:00\n"
    )
    (workspace.landing / "orders_2026_01_06.csv").write_text(
        "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
        "100,1,returned,2,40.00,USD,2026-01-05 09:00:00,2026-01-06 10:00:00\n"
        "103,3,delivered,1,15.00,USD,2026-01-05 11:00:00,2026-01-04 12:00:00\n"
    )
    report = run(workspace)
    assert [b.status for b in report.batches] == ["succeeded"]
    orders = {r[0]: r[2] for r in table(workspace, "silver", "orders")}
    assert orders[100] == "returned", "a newer update wins"
    assert orders[103] == "returned", "an older update does not overwrite a newer row"
    history = sorted((r[0], r[6], r[-1]) for r in table(workspace, "silver", "customers"))
    assert history == [(1, "Lyon", True), (1, "Paris", False), (3, "Oslo", True)], \
        "a change opens a new version, an unchanged row adds none"


def test_a_fail_batch_rule_fails_the_batch_and_leaves_no_row_in_any_table(workspace: Settings, tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    pack = Path(__file__).parents[1] / "src/shoplake/contracts/pack/orders.yml"
    (contracts / "orders.yml").write_text(pack.read_text().replace(
        "    message: created_at lies in the future", "    message: created_at lies in the future\n"
        "    severity: fail_batch"))
    workspace.contracts = [contracts]
    copy_fixture("mini", workspace.landing)
    report = run(workspace)
    batch = report.batches[0]
    assert batch.status == "failed"
    assert "orders.created_not_in_future (1 rows)" in str(batch.error)
    assert table(workspace, "silver", "orders") == []
    # Customers are checked and written before orders: the rollback takes them out again.
    assert table(workspace, "silver", "customers") == []
    assert table(workspace, "bronze", "customers") == []
    assert sorted(p.name for p in (workspace.archive_dir / "failed" / "2026-01-05").iterdir()) == sorted(
        p.name for p in (FIXTURES / "mini").iterdir())


def test_awkward_headers_and_quoted_line_breaks_load(workspace: Settings) -> None:
    (workspace.landing / "customers_2026_01_05.csv").write_text(
        'customer_id,first_name,first_name,"city",email,created_at,updated_at,\n'
        '1,Ann,Anne,"Paris\nRive Gauche",ann@example.com,2026-01-01 10:00:00,2026-01-05 10:00:00,\n'
        '2,Bo,Bob,Rome,bo@example.com,2026-01-01 10:00:00,2026-01-05 10:00:00,x\n'
    )
    report = run(workspace)
    f = files_of(report)["customers_2026_01_05.csv"]
    assert (f["status"], f["rows_read"], f["rows_loaded"]) == ("loaded", 2, 2), f["error"]
    bronze = {r[0]: r for r in table(workspace, "bronze", "customers")}
    assert bronze["1"][6] == "Paris\nRive Gauche"
    assert json.loads(str(bronze["1"][12])) == {"first_name_3": "Anne", "column_8": None}
    assert json.loads(str(bronze["2"][12])) == {"first_name_3": "Bob", "column_8": "x"}


def test_values_are_read_strictly_and_timestamps_kept_in_utc(workspace: Settings) -> None:
    for feed in ("customers", "products"):
        name = f"{feed}_2026_01_05.csv"
        (workspace.landing / name).write_bytes((FIXTURES / "mini" / name).read_bytes())
    (workspace.landing / "inventory_2026_01_05.csv").write_text(
        "snapshot_date,warehouse_id,product_id,quantity_on_hand,quantity_reserved\n"
        "2026-01-05,WH01,   ,5,\n"  # a blank-only key is empty: required, not a bad integer
        "2026-01-05,WH02,1.23457E+15,5,1\n"  # a spreadsheet's rounding of a long id
        "2026-01-05,WH03,10.5,5,1\n"  # not an integer, although a cast would round it
        "2026-01-05,WH04, 12.0 ,7,  \n"  # product 12, and no reserved quantity
    )
    (workspace.landing / "orders_2026_01_05.csv").write_text(
        "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
        "1,1,created,1,5.00,USD,2026-01-05T21:30:00-05:00,2026-01-05 10:00:00 Europe/Paris\n"
    )
    run(workspace)
    rules = {r[1]: r[-2] for r in table(workspace, "quarantine", "inventory")}
    assert rules == {"WH01": ["product_id.required"], "WH02": ["product_id.type"], "WH03": ["product_id.type"]}
    stock = table(workspace, "silver", "inventory")
    assert [(r[1], r[2], r[3], r[4]) for r in stock] == [("WH04", 12, 7, None)]
    order = table(workspace, "silver", "orders")[0]
    assert (order[6], order[7]) == (datetime(2026, 1, 6, 2, 30), datetime(2026, 1, 5, 9, 0))
    assert table(workspace, "gold", "fact_sales") == []  # no items; but the day would be 2026-01-06


def test_a_partial_date_is_no_date_on_any_engine(on_engine: Settings) -> None:
    """Spark alone would read "2026-01" as 1 January; both engines reject it."""
    (on_engine.landing / "inventory_2026_01_05.csv").write_text(
        "snapshot_date,warehouse_id,product_id,quantity_on_hand,quantity_reserved\n"
        "2026-01,WH01,1,5,1\n"
        " 2026-01-05 ,WH02,1,5,1\n")
    (on_engine.landing / "orders_2026_01_05.csv").write_text(
        "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
        "1,1,created,1,5.00,USD,2026-01,2026-01-05\n")
    run(on_engine)
    assert {r[1]: r[-2] for r in table(on_engine, "quarantine", "inventory")} == {
        "WH01": ["product_id.references", "snapshot_date.type"], "WH02": ["product_id.references"]}
    assert "created_at.type" in table(on_engine, "quarantine", "orders")[0][-2]


PRODUCTS_HEADER = "product_id,sku,name,brand,department,category,subcategory,cost,retail_price,updated_at\n"


def test_scd2_keeps_every_version_of_a_batch_in_order(on_engine: Settings) -> None:
    workspace = on_engine
    (workspace.landing / "products_2026_01_05.csv").write_text(
        PRODUCTS_HEADER
        + "10,A-1,Shirt,Acme,Men,Tops,Shirts,10.00,25.00,2026-01-05 06:00:00\n"
        + "10,A-1,Shirt,Bolt,Men,Tops,Shirts,10.00,25.00,2026-01-05 12:00:00\n"  # file order is not time order
        + "10,A-1,Shirt,Acme,Men,Tops,Shirts,10.00,30.00,2026-01-05 08:00:00\n"
        + "10,A-1,Shirt,Acme,Men,Tops,Shirts,10.00,30.00,2026-01-05 09:00:00\n"  # no change: no new version
    )
    run(workspace)
    (workspace.landing / "products_2026_01_06.csv").write_text(
        PRODUCTS_HEADER
        + "10,A-1,Shirt,Acme,Men,Tops,Shirts,10.00,99.00,2026-01-05 10:00:00\n"  # late: splits 08:00-12:00
        + "10,A-1,Shirt,Bolt,Men,Tops,Shirts,10.00,25.00,2026-01-06 07:00:00\n"  # same as current
        + "10,A-1,Shirt,Bolt,Men,Tops,Shirts,11.00,26.00,2026-01-06 09:00:00\n"
    )
    run(workspace)
    history = sorted((r[-3], r[-2], r[-1], r[3], r[8]) for r in table(workspace, "silver", "products"))
    assert history == [
        (datetime(2026, 1, 5, 6), datetime(2026, 1, 5, 8), False, "Acme", Decimal("25.00")),
        (datetime(2026, 1, 5, 8), datetime(2026, 1, 5, 10), False, "Acme", Decimal("30.00")),
        (datetime(2026, 1, 5, 10), datetime(2026, 1, 5, 12), False, "Acme", Decimal("99.00")),
        (datetime(2026, 1, 5, 12), datetime(2026, 1, 6, 9), False, "Bolt", Decimal("25.00")),
        (datetime(2026, 1, 6, 9), None, True, "Bolt", Decimal("26.00")),
    ]


def test_an_upsert_without_a_sequence_value_is_the_latest_arrival(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    (workspace.landing / "shipping_2026_01_05.csv").unlink()
    run(workspace)
    (workspace.landing / "order_items_2026_01_06.csv").write_text(
        "order_item_id,order_id,product_id,status,sale_price,created_at,updated_at\n"
        "1000,100,10,returned,25.00,2026-01-05 09:00:00,\n"
    )
    run(workspace)
    items = {r[0]: r[3] for r in table(workspace, "silver", "order_items")}
    assert items[1000] == "returned"
    daily = named_rows(workspace, "gold", "agg_daily_sales")[0]
    assert daily["return_rate"] == pytest.approx(1.0), "both orders now have a returned item"
