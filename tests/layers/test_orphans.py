"""An orphan whose parent is in quarantine says where the parent is and why, not `not found`."""

from __future__ import annotations

from pathlib import Path

from shoplake.config import Settings
from shoplake.pipeline import run
from shoplake.tables import query_table
from tests.conftest import copy_fixture

ORDERS = "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
ITEMS = "order_item_id,order_id,product_id,status,sale_price,created_at,updated_at\n"


def reasons(settings: Settings, feed: str) -> dict[str, list[str]]:
    """Quarantined rows by their first column (raw text), with every reason."""
    return {str(r[0]): list(r[-1]) for r in query_table(settings, "quarantine", feed)}


def test_an_item_of_an_order_quarantined_in_the_same_batch(workspace: Settings) -> None:
    copy_fixture("mini", workspace.landing)
    (workspace.landing / "shipping_2026_01_05.csv").unlink()
    run(workspace)
    # Order 101 (row 2) is quarantined because its customer 2 is: the item says so, with the chain of reasons.
    (reason,) = reasons(workspace, "order_items")["1002"]
    assert reason.startswith("order_id.references: order_id 101 is in quarantine (orders): orders_2026_01_05.csv "
                             "row 2, customer_id.references: customer_id 2 is in quarantine (customers): "
                             "customers_2026_01_05.csv row 2, email.format: ")
    # An order that exists nowhere is still `not found`.
    assert reasons(workspace, "order_items")["1004"][0] == (
        "order_id.references: order_id 555 not found in orders.order_id")


def test_an_item_of_an_order_quarantined_in_earlier_batches(on_engine: Settings, tmp_path: Path) -> None:
    copy_fixture("mini", on_engine.landing)
    (on_engine.landing / "shipping_2026_01_05.csv").unlink()
    run(on_engine)
    # Order 11008 fails on two days (its raw key written two ways); its item arrives on the third day.
    for day, key, row in (("06", "11008", 2), ("07", " 11008.0 ", 1)):
        lines = [] if row == 1 else ["100,1,delivered,2,40.00,USD,2026-01-05 09:00:00,2026-01-05 10:00:00\n"]
        lines.append(f"{key},1,lost,1,10.00,USD,2026-01-{day} 09:00:00,2026-01-{day} 10:00:00\n")
        (on_engine.landing / f"orders_2026_01_{day}.csv").write_text(ORDERS + "".join(lines))
        run(on_engine)
    (on_engine.landing / "order_items_2026_01_08.csv").write_text(
        ITEMS + "5000,11008,10,placed,10.00,2026-01-08 09:00:00,2026-01-08 09:00:00\n")
    report = run(on_engine)

    (outcome,) = [f for b in report.batches for f in b.files if f.feed == "order_items"]
    assert (outcome.rows_read, outcome.rows_quarantined) == (1, 1), "one item, not one per quarantined order row"
    (reason,) = reasons(on_engine, "order_items")["5000"]
    assert reason == ("order_id.references: order_id 11008 is in quarantine (orders): orders_2026_01_07.csv row 1, "
                      "status.accepted_values: status 'lost' is not one of created, processing, shipped, delivered, "
                      "cancelled, returned")
