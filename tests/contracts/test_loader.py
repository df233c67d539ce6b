from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.contracts import LoadMode, load_contracts
from shoplake.errors import ContractError

FEEDS = {"orders", "order_items", "customers", "products", "inventory", "shipping", "events", "fx_rates"}
ORDERS = Path(__file__).parents[2] / "src/shoplake/contracts/pack/orders.yml"


def test_builtin_pack_has_the_eight_feeds_with_parents_first() -> None:
    contracts = load_contracts()
    assert set(contracts.contracts) == FEEDS
    order = contracts.load_order()
    assert order.index("customers") < order.index("orders") < order.index("order_items")
    assert order.index("products") < order.index("order_items")
    assert contracts["customers"].load.mode is LoadMode.SCD2
    assert contracts["shipping"].load.sequence == "event_at"
    assert contracts["fx_rates"].primary_key == ("rate_date", "currency")
    assert contracts["fx_rates"].load.mode is LoadMode.UPSERT


def write(folder: Path, text: str, name: str = "orders.yml") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def orders_with(tmp_path: Path, old: str, new: str) -> Path:
    text = ORDERS.read_text()
    assert old in text
    return write(tmp_path / "contracts", text.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("expr: num_items >= 1", "expr: num_itemz >= 1", "names unknown column(s) num_itemz"),
        ("expr: num_items >= 1", "expr: num_items + 1", "'num_items + 1' is not a boolean expression"),
        ("expr: num_items >= 1", "expr: 'num_items >= 1; drop table orders'", "holds 2 statements"),
        ("expr: num_items >= 1", "expr: num_items in (select 1)", "contains a query"),
        ("expr: num_items >= 1", "expr: 'delete from orders'", "is a statement"),
        ("num_items: {type: integer", "num_items: {type: int32", "unknown type 'int32'"),
        ("references: customers.customer_id", "references: clients.customer_id", "unknown feed 'clients'"),
        ("references: customers.customer_id", "references: customers.client_id",
         "unknown column 'customers.client_id'"),
        ("primary_key: [order_id]", "primary_key: [id]", "primary_key names unknown column 'id'"),
        ("mode: upsert", "mode: merge", "load.mode"),
    ],
)
def test_contract_mistakes_name_the_file_and_the_text(tmp_path: Path, old: str, new: str, expected: str) -> None:
    folder = orders_with(tmp_path, old, new)
    with pytest.raises(ContractError) as caught:
        load_contracts([folder])
    assert expected in str(caught.value)
    assert str(folder / "orders.yml") in str(caught.value)


def test_a_project_overrides_a_feed_and_adds_one_with_yaml_only(tmp_path: Path) -> None:
    folder = orders_with(tmp_path, "accepted_values: [created,", "accepted_values: [on_hold, created,")
    write(folder, """
feed: reviews
files: ["reviews_*.csv"]
primary_key: [review_id]
columns:
  review_id: {type: integer, required: true}
  order_id: {type: integer, references: orders.order_id}
  rating: {type: integer, required: true}
rules:
  - {name: rating_range, expr: rating between 1 and 5}
""", "reviews.yml")
    contracts = load_contracts([folder])
    assert "on_hold" in (contracts["orders"].column("status").accepted_values or ())
    assert contracts["reviews"].references[0][1:] == ("orders", "order_id")
    assert contracts.load_order().index("orders") < contracts.load_order().index("reviews")


def test_a_contract_that_is_not_a_mapping_is_rejected(tmp_path: Path) -> None:
    folder = write(tmp_path / "contracts", "- just\n- a list\n")
    with pytest.raises(ContractError, match="a contract is a YAML mapping"):
        load_contracts([folder])


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  num_items: {type: integer", "  _row_number: {type: integer", "names starting with '_' are kept"),
        ("  currency: {type: string,", "  currency: {type: string, source: status,", "header 'status' is read by more"),
    ],
)
def test_columns_that_would_clash_inside_the_pipeline_are_rejected(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    with pytest.raises(ContractError, match=expected):
        load_contracts([orders_with(tmp_path, old, new)])
