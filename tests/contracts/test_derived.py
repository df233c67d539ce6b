"""Derived columns take a type, may use the derived columns declared before them, and may be keys."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.errors import ContractError
from shoplake.pipeline import run
from shoplake.tables import query_table
from tests.conftest import copy_fixture

# A foreign export with no line id of its own: the key is made from the order and the line number.
LINES = """
feed: invoice_lines
files: ["invoice_lines_*.csv"]
primary_key: [line_id]
load: {mode: upsert}
columns:
  invoice: {type: string, required: true}
  line_no: {type: integer, required: true}
  quantity: {type: decimal, required: true}
  unit_price: {type: decimal, required: true}
  discount: {type: decimal}
derived:
  line_id: {expr: "invoice || '-' || cast(line_no as varchar)", type: string, description: the export's key}
  gross: {expr: quantity * unit_price, type: decimal}
  net: {expr: "gross - coalesce(discount, 0)", type: decimal}
  big: net > 100
rules:
  - {name: net_not_negative, expr: net >= 0}
"""


def contracts_with(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "contracts"
    folder.mkdir(exist_ok=True)
    (folder / "invoice_lines.yml").write_text(text)
    return folder


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ContractError) as caught:
        load_contracts([contracts_with(tmp_path, text)])
    return str(caught.value)


def test_typed_chained_derived_columns_and_a_derived_key_load_and_merge(workspace: Settings, tmp_path: Path) -> None:
    workspace.contracts = [contracts_with(tmp_path, LINES)]
    (workspace.landing / "invoice_lines_2026_01_05.csv").write_text(
        "invoice,line_no,quantity,unit_price,discount\n"
        "INV1,1,3,0.35,\n"  # 1.05
        "INV1,2,1.5,80.33,0.5\n"  # 120.495 -> 120.50 - 0.50
        "INV2,1,1,5.00,9.00\n"  # negative net: quarantined by the rule over a chained column
        ",1,1,1.00,\n"  # no invoice: the derived key is empty
    )
    report = run(workspace)
    assert not report.failed
    (workspace.landing / "invoice_lines_2026_01_06.csv").write_text(
        "invoice,line_no,quantity,unit_price,discount\nINV1,1,4,0.35,\n")  # replaces INV1-1 by its derived key
    assert not run(workspace).failed

    columns = load_contracts(workspace.contracts)["invoice_lines"]
    names = [*columns.column_names, *columns.derived]
    rows = {r[names.index("line_id")]: dict(zip(names, r, strict=False))
            for r in query_table(workspace, "silver", "invoice_lines")}
    assert sorted(rows) == ["INV1-1", "INV1-2"]
    assert rows["INV1-1"]["gross"] == Decimal("1.40") and rows["INV1-1"]["net"] == Decimal("1.40")
    assert rows["INV1-2"]["gross"] == Decimal("120.50") and rows["INV1-2"]["net"] == Decimal("120.00")
    assert isinstance(rows["INV1-2"]["net"], Decimal), "a product of decimals cast to decimal stays a decimal"
    assert rows["INV1-2"]["big"] is True

    quarantined = {(r[0], r[1]): r[-2] for r in query_table(workspace, "quarantine", "invoice_lines")}
    assert quarantined[("INV2", "1")] == ["net_not_negative"]
    assert quarantined[(None, "1")] == ["invoice.required", "line_id.required"]


def test_a_derived_column_may_only_use_the_ones_before_it(tmp_path: Path) -> None:
    text = LINES.replace('  gross: {expr: quantity * unit_price, type: decimal}\n', "").replace(
        "  big: net > 100\n", "  big: net > 100\n  gross: {expr: quantity * unit_price, type: decimal}\n")
    message = refused(tmp_path, text)
    assert "derived.net" in message and "uses derived column(s) gross declared after it" in message


def test_a_derived_key_needs_a_type(tmp_path: Path) -> None:
    message = refused(tmp_path, LINES.replace(", type: string, description: the export's key", ""))
    assert "primary_key names derived column 'line_id', which has no type" in message


def test_a_typed_derived_column_of_text_asks_for_try_cast(tmp_path: Path) -> None:
    message = refused(tmp_path, LINES.replace("  big: net > 100\n", "  code: {expr: lower(invoice), type: integer}\n"))
    assert "derived.code" in message and "try_cast(... AS BIGINT)" in message


def test_a_derived_type_is_one_of_the_column_types(tmp_path: Path) -> None:
    message = refused(tmp_path, LINES.replace("type: decimal}\n  net", "type: money}\n  net"))
    assert "derived.gross.type" in message and "unknown type 'money'" in message


def test_the_readmes_worked_overlay_loads_and_computes_its_sale_price(workspace: Settings, tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    overlay = readme.split("# contracts/order_items.yml\n", 1)[1].split("```", 1)[0]
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "order_items.yml").write_text(overlay)
    items = load_contracts([folder])["order_items"]
    assert items.primary_key == ("order_item_id",) and "sale_price" in items.derived
    workspace.contracts = [folder]
    copy_fixture("mini", workspace.landing)  # orders 100 and product 10 for the lines to reference
    for name in ("shipping_2026_01_05.csv", "order_items_2026_01_05.csv"):
        (workspace.landing / name).unlink()
    (workspace.landing / "order_details_2026_01_05.csv").write_text(
        "OrderID,ProductID,UnitPrice,Quantity,Discount\n100,10,14.00,12,0\n100,12,9.80,10,0.15\n")
    run(workspace)
    names = [*items.column_names, *items.derived]
    rows = {r[names.index("order_item_id")]: dict(zip(names, r, strict=False))
            for r in query_table(workspace, "silver", "order_items")}
    assert rows[100010]["sale_price"] == Decimal("168.00") and rows[100010]["status"] == "delivered"
    assert rows[100012]["gross_price"] == Decimal("98.00") and rows[100012]["sale_price"] == Decimal("83.30")
