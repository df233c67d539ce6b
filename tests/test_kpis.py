"""Gold KPIs recomputed in plain Python from the silver tables, following the README's definitions literally.

README, "Gold models and KPI definitions": a sale is a valid order item whose order status is not
`cancelled`; gross = sum of sale_price over sales; returned = the part whose item status is `returned`;
net = gross - returned; margin = net - cost of the items not returned; orders = distinct orders with at
least one sale; items = sales; average_order_value = gross / orders; return_rate = orders with a returned
item / orders; days are the order's created_at date; a ratio with a zero denominator is 0. The category
table has the same measures per day and product category, an order counting once in every category it
bought from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.pipeline import run
from shoplake.tables import query_table

pytestmark = pytest.mark.integration

SCALE = 0.003
DAYS = 2
DEFECT_RATE = 0.02
SEED = 11
HAND_MADE_ID = 7_000_000_001  # far from the generator's ids (clean ones are small, defect copies 9e9 and up)
CANCELLED_DAY = date(2026, 1, 9)  # hand-made: the day's only order is cancelled
CANCELLED_CATEGORY = "Hand Made"  # bought only by that cancelled order
Kpis = dict[tuple[Any, ...], dict[str, Any]]  # measures by key: (order_date,) or (order_date, category)
MONEY = ("gross_revenue", "returned_revenue", "net_revenue", "margin")
RATIOS = ("average_order_value", "return_rate")


def read_table(settings: Settings, layer: str, name: str) -> list[dict[str, Any]]:
    """Every row of a lake table as a dict, column names taken from the Delta schema."""
    names = [f.name for f in DeltaTable(str(settings.lake / layer / name)).schema().fields]
    return [dict(zip(names, row, strict=True)) for row in query_table(settings, layer, name)]


def write_cancelled_day(landing: Path) -> None:
    """A customer, a product only this day sells, and one cancelled order of one item of it."""
    stamp = f"{CANCELLED_DAY} 10:00:00"
    suffix = f"{CANCELLED_DAY:%Y_%m_%d}.csv"
    files = {
        "customers": ("customer_id,first_name,last_name,email,phone,birth_date,city,country,segment,"
                      "lifecycle_stage,created_at,updated_at",
                      f"{HAND_MADE_ID},Ada,Hand,ada.hand@example.com,+14155550123,1990-01-01,Lyon,FR,consumer,new,"
                      f"{stamp},{stamp}"),
        "products": ("product_id,sku,name,brand,department,category,subcategory,cost,retail_price,updated_at",
                     f"{HAND_MADE_ID},HM-1,Hand-made bowl,Hand,Home,{CANCELLED_CATEGORY},Bowls,5.00,20.00,{stamp}"),
        "orders": ("order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at",
                   f"{HAND_MADE_ID},{HAND_MADE_ID},cancelled,1,20.00,USD,{stamp},{stamp}"),
        "order_items": ("order_item_id,order_id,product_id,status,sale_price,created_at,updated_at",
                        f"{HAND_MADE_ID},{HAND_MADE_ID},{HAND_MADE_ID},cancelled,20.00,{stamp},{stamp}"),
    }
    for feed, (header, row) in files.items():
        (landing / f"{feed}_{suffix}").write_text(f"{header}\n{row}\n", encoding="utf-8")


@dataclass
class Silver:
    orders: dict[int, dict[str, Any]]
    items: list[dict[str, Any]]
    products: dict[int, dict[str, Any]]  # current versions only


@dataclass
class Lake:
    settings: Settings
    silver: Silver


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("kpis")
    landing = root / "landing"
    generate(landing, days=DAYS, scale=SCALE, defect_rate=DEFECT_RATE, seed=SEED)
    write_cancelled_day(landing)
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive")
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"] * (DAYS + 1), [b.error for b in report.batches]
    orders = read_table(settings, "silver", "orders")
    current = [p for p in read_table(settings, "silver", "products") if p["_is_current"]]
    silver = Silver(
        orders={o["order_id"]: o for o in orders},
        items=read_table(settings, "silver", "order_items"),
        products={p["product_id"]: p for p in current},
    )
    assert len(silver.orders) == len(orders), "silver.orders holds one row per order"
    assert len(silver.products) == len(current), "one current version per product"
    return Lake(settings, silver)


@dataclass
class Measures:
    """One group's sales, accumulated item by item."""

    orders: set[int] = field(default_factory=set)
    returned_orders: set[int] = field(default_factory=set)
    items: int = 0
    gross_revenue: Decimal = Decimal("0")
    returned_revenue: Decimal = Decimal("0")
    kept_cost: Decimal = Decimal("0")  # cost of the items not returned

    def add(self, item: dict[str, Any], cost: Decimal) -> None:
        returned = item["status"] == "returned"
        self.orders.add(item["order_id"])
        self.items += 1
        self.gross_revenue += item["sale_price"]
        if returned:
            self.returned_orders.add(item["order_id"])
            self.returned_revenue += item["sale_price"]
        else:
            self.kept_cost += cost

    def row(self) -> dict[str, Any]:
        net = self.gross_revenue - self.returned_revenue
        orders = len(self.orders)
        return {
            "orders": orders,
            "items": self.items,
            "gross_revenue": self.gross_revenue,
            "returned_revenue": self.returned_revenue,
            "net_revenue": net,
            "margin": net - self.kept_cost,
            "average_order_value": float(self.gross_revenue) / orders if orders else 0.0,
            "return_rate": len(self.returned_orders) / orders if orders else 0.0,
        }


def expected_kpis(silver: Silver) -> tuple[Kpis, Kpis]:
    """agg_daily_sales keyed by (order_date,) and agg_category_daily keyed by (order_date, category)."""
    daily: dict[tuple[Any, ...], Measures] = defaultdict(Measures)
    by_category: dict[tuple[Any, ...], Measures] = defaultdict(Measures)
    for item in silver.items:
        order = silver.orders[item["order_id"]]
        if order["status"] == "cancelled":
            continue
        product = silver.products[item["product_id"]]
        day = order["created_at"].date()
        daily[day,].add(item, product["cost"])
        by_category[day, product["category"]].add(item, product["cost"])
    return ({k: m.row() for k, m in daily.items()}, {k: m.row() for k, m in by_category.items()})


def gold_rows(settings: Settings, model: str, key: tuple[str, ...]) -> Kpis:
    rows = read_table(settings, "gold", model)
    keyed = {tuple(r[k] for k in key): r for r in rows}
    assert len(keyed) == len(rows), f"{model}: one row per {key}"
    return keyed


def assert_same_kpis(model: str, actual: Kpis, expected: Kpis) -> None:
    assert sorted(actual) == sorted(expected), f"{model}: missing {set(expected) - set(actual)}, " \
                                               f"extra {set(actual) - set(expected)}"
    for key, want in expected.items():
        got = actual[key]
        assert {c: got[c] for c in ("orders", "items", *MONEY)} == {c: want[c] for c in ("orders", "items", *MONEY)}, \
            (model, key)
        assert all(isinstance(got[c], Decimal) for c in MONEY), (model, key)
        assert {c: got[c] for c in RATIOS} == pytest.approx({c: want[c] for c in RATIOS}), (model, key)


def test_the_sample_exercises_every_branch_of_the_definitions(lake: Lake) -> None:
    silver = lake.silver
    assert all(item["order_id"] in silver.orders for item in silver.items), "every valid item has its order"
    assert all(item["product_id"] in silver.products for item in silver.items), "and its product"
    statuses = {o["status"] for o in silver.orders.values()}
    assert "cancelled" in statuses, "cancelled orders are present and must be left out"
    assert any(i["status"] == "returned" for i in silver.items), "returned items are present"
    daily, by_category = expected_kpis(silver)
    assert len(daily) == DAYS and len(by_category) > len(daily)
    assert any(row["orders"] > 1 for row in by_category.values())
    categories_per_day: dict[date, set[str]] = defaultdict(set)
    for day, category in by_category:
        categories_per_day[day].add(category)
    assert all(len(categories) > 1 for categories in categories_per_day.values())


def test_agg_daily_sales_matches_the_definitions(lake: Lake) -> None:
    daily, _ = expected_kpis(lake.silver)
    assert_same_kpis("agg_daily_sales", gold_rows(lake.settings, "agg_daily_sales", ("order_date",)), daily)


def test_agg_category_daily_matches_the_definitions(lake: Lake) -> None:
    _, by_category = expected_kpis(lake.silver)
    actual = gold_rows(lake.settings, "agg_category_daily", ("order_date", "category"))
    assert_same_kpis("agg_category_daily", actual, by_category)


def test_fact_sales_holds_one_row_per_sale(lake: Lake) -> None:
    daily, _ = expected_kpis(lake.silver)
    facts = read_table(lake.settings, "gold", "fact_sales")
    assert len(facts) == sum(row["items"] for row in daily.values())
    assert len({f["order_item_id"] for f in facts}) == len(facts)


def test_a_day_whose_only_order_is_cancelled_has_no_sales(lake: Lake) -> None:
    assert lake.silver.orders[HAND_MADE_ID]["status"] == "cancelled", "the hand-made order loaded"
    daily = read_table(lake.settings, "gold", "agg_daily_sales")
    assert daily, "the other days have sales"
    assert [row for row in daily if row["order_date"] == CANCELLED_DAY] == [], "a day without a sale has no row"
    assert min(row["orders"] for row in daily) >= 1, "every day's ratios have a non-zero denominator"
    for row in read_table(lake.settings, "gold", "agg_category_daily"):
        assert row["order_date"] != CANCELLED_DAY and row["category"] != CANCELLED_CATEGORY
    assert all(f["order_id"] != HAND_MADE_ID for f in read_table(lake.settings, "gold", "fact_sales"))


@pytest.mark.parametrize("model", ["agg_daily_sales", "agg_category_daily"])
def test_no_kpi_is_null(lake: Lake, model: str) -> None:
    rows = read_table(lake.settings, "gold", model)
    assert rows
    assert [(r, c) for r in rows for c, v in r.items() if v is None] == []
