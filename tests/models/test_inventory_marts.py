"""agg_inventory_health against a plain-Python reading of the definitions, from silver inventory and sales.

README, KPI definitions: per snapshot date, warehouse and product: negative stock; the baseline is the median
of the same product's stock in that warehouse over the stock_baseline_days days before the snapshot (the
snapshot itself excluded); a drop is stock below (1 - stock_drop_share) x baseline, a spike above
stock_spike_factor x baseline (no baseline: neither). Days of cover = max(stock, 0) / the product's average
daily units sold (sales, all warehouses) over the stock_baseline_days days ending on the snapshot's day, not
counting days before the lake's first sale; NULL when none sold.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from shoplake.config import Kpis, Settings
from shoplake.generate import generate
from shoplake.pipeline import run
from tests.models.test_customer_marts import (
    FX_HEADER,
    ITEM_HEADER,
    ORDER_HEADER,
    PRODUCT_HEADER,
    expected_sales,
)
from tests.models.test_funnel_marts import CUSTOMER_HEADER, customer_rows, local_date, read_table, write_csv

pytestmark = pytest.mark.integration

INVENTORY_HEADER = "snapshot_date,warehouse_id,product_id,quantity_on_hand,quantity_reserved"
Key = tuple[date, str, int]


def expected_health(settings: Settings) -> dict[Key, dict[str, Any]]:
    kpis = settings.kpis
    window = kpis.stock_baseline_days
    stock = {(r["snapshot_date"], r["warehouse_id"], r["product_id"]): r["quantity_on_hand"]
             for r in read_table(settings, "silver", "inventory")}
    units: dict[tuple[int, date], int] = defaultdict(int)
    for product_id, day in sold_products(settings):
        units[(product_id, day)] += 1
    first_sale = min((day for _, day in units), default=None)
    expected = {}
    for (day, warehouse, product), quantity in stock.items():
        before = [stock[(day - timedelta(days=n), warehouse, product)] for n in range(1, window + 1)
                  if (day - timedelta(days=n), warehouse, product) in stock]
        median = float(statistics.median(before)) if before else None
        sold = sum(units.get((product, day - timedelta(days=n)), 0) for n in range(window))
        demand_days = None if first_sale is None else min(window, (day - first_sale).days + 1)
        average = sold / demand_days if demand_days is not None and demand_days > 0 else None
        expected[(day, warehouse, product)] = {
            "quantity_on_hand": quantity,
            "is_negative": quantity < 0,
            "baseline_snapshots": len(before),
            "baseline_median": median,
            "is_drop": median is not None and quantity < (1 - kpis.stock_drop_share) * median,
            "is_spike": median is not None and quantity > kpis.stock_spike_factor * median,
            "units_sold": sold,
            "average_daily_units": average,
            "days_of_cover": max(quantity, 0) / average if average else None,
        }
    return expected


def sold_products(settings: Settings) -> list[tuple[int, date]]:
    """(product, local order day) of every sale."""
    orders = {o["order_id"]: o for o in read_table(settings, "silver", "orders")}
    sales = []
    for item in read_table(settings, "silver", "order_items"):
        order = orders[item["order_id"]]
        if order["status"] != "cancelled":
            sales.append((item["product_id"], local_date(order["created_at"], settings.timezone)))
    assert len(sales) == len(expected_sales(settings))
    return sales


def built_health(settings: Settings) -> dict[Key, dict[str, Any]]:
    rows = read_table(settings, "gold", "agg_inventory_health")
    built = {(r["snapshot_date"], r["warehouse_id"], r["product_id"]): r for r in rows}
    assert len(built) == len(rows), "one row per snapshot date, warehouse and product"
    return built


def assert_health_equal(built: dict[Key, dict[str, Any]], expected: dict[Key, dict[str, Any]]) -> None:
    assert built.keys() == expected.keys()
    for key, row in expected.items():
        for column, value in row.items():
            assert built[key][column] == (pytest.approx(value) if isinstance(value, float) else value), (key, column)


# -- generated data ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("inventory")
    generate(root / "landing", days=3, scale=0.003, defect_rate=0.02, seed=31)
    settings = Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive")
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"] * 3, [b.error for b in report.batches]
    return settings


def test_generated_inventory_health_follows_the_definitions(generated: Settings) -> None:
    expected = expected_health(generated)
    assert_health_equal(built_health(generated), expected)
    assert any(row["baseline_snapshots"] == 2 for row in expected.values()), "day 3 has two days of baseline"
    assert any(row["days_of_cover"] is not None for row in expected.values())


# -- hand-made edges ----------------------------------------------------------------------------------------

START = date(2026, 2, 1)
WINDOW = 3
# Product 1 at WH1, one snapshot a day from START (None: no snapshot that day).
STOCK_1 = [100, 100, 100, 10, 10, 10, 4, 5, 30, 21, None, 20, -3]
SALES_1 = {date(2026, 2, 5): 2, date(2026, 2, 6): 4}  # day -> units of product 1 sold


def write_hand_made(landing: Path) -> None:
    stamp = "2025-12-01 09:00:00"
    suffix = f"{START:%Y_%m_%d}.csv"
    write_csv(landing, f"customers_{suffix}", CUSTOMER_HEADER, customer_rows([1]))
    write_csv(landing, f"products_{suffix}", PRODUCT_HEADER,
              [f"{p},SKU-{p},Thing {p},Hand,Home,Kitchen,Bowls,1.00,9.00,{stamp}" for p in (1, 2)])
    write_csv(landing, f"fx_rates_{suffix}", FX_HEADER, ["2026-02-05,EUR,1.1"])
    rows = [f"{START + timedelta(days=n)},WH1,1,{q},0" for n, q in enumerate(STOCK_1) if q is not None]
    rows += [f"{START + timedelta(days=n)},WH2,1,7,0" for n in range(2)]  # another warehouse, same product
    rows += [f"{START + timedelta(days=n)},WH1,2,0,0" for n in range(3)]  # never sold, zero baseline
    write_csv(landing, f"inventory_{suffix}", INVENTORY_HEADER, rows)
    orders: list[str] = []
    items: list[str] = []
    for day, count in SALES_1.items():
        order_id = len(orders) + 1
        orders.append(f"{order_id},1,processing,{count},9,USD,{day} 12:00:00,{day} 12:00:00")
        items += [f"{len(items) + n + 1},{order_id},1,placed,9.00,{day} 12:00:00,{day} 12:00:00" for n in range(count)]
    orders.append("9,1,cancelled,1,9,USD,2026-02-06 12:00:00,2026-02-06 12:00:00")  # not a sale
    items.append("99,9,1,cancelled,9.00,2026-02-06 12:00:00,2026-02-06 12:00:00")
    write_csv(landing, f"orders_{suffix}", ORDER_HEADER, orders)
    write_csv(landing, f"order_items_{suffix}", ITEM_HEADER, items)


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("inventory_edges")
    landing = root / "landing"
    landing.mkdir()
    write_hand_made(landing)
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive",
                        kpis=Kpis(stock_baseline_days=WINDOW))
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"], [b.error for b in report.batches]
    return settings


def day(n: int) -> date:
    return START + timedelta(days=n)


def test_trailing_median_drops_and_spikes(hand_made: Settings) -> None:
    built = built_health(hand_made)
    row = {n: built[(day(n), "WH1", 1)] for n, q in enumerate(STOCK_1) if q is not None}
    assert (row[0]["baseline_median"], row[0]["baseline_snapshots"], row[0]["is_drop"]) == (None, 0, False)
    assert row[3]["baseline_median"] == 100.0 and row[3]["is_drop"]  # 10 < 0.5 x 100
    # The three days before day 6 are all 10: the 100s have left the window, so 4 is a drop and 5 is not.
    assert (row[6]["baseline_median"], row[6]["is_drop"]) == (10.0, True)
    assert (row[7]["baseline_median"], row[7]["is_drop"]) == (10.0, False)  # exactly half: not below it
    assert (row[8]["baseline_median"], row[8]["is_spike"]) == (5.0, True)  # median of 10, 4, 5
    assert (row[9]["baseline_median"], row[9]["is_spike"]) == (5.0, True)  # median of 4, 5, 30
    # Day 10 has no snapshot: day 11's baseline is days 8 and 9 (the even median is their mean).
    assert (row[11]["baseline_snapshots"], row[11]["baseline_median"], row[11]["is_spike"]) == (2, 25.5, False)
    assert (row[12]["is_negative"], row[12]["days_of_cover"]) == (True, None)
    zero = built[(day(2), "WH1", 2)]
    assert (zero["baseline_median"], zero["is_drop"], zero["is_spike"], zero["days_of_cover"]) == (0.0, False, False,
                                                                                                  None)


def test_days_of_cover(hand_made: Settings) -> None:
    built = built_health(hand_made)
    # Day 4 (the first sale day): 2 units over 1 day of sales history; 10 on hand -> 5 days.
    assert (built[(day(4), "WH1", 1)]["units_sold"], built[(day(4), "WH1", 1)]["days_of_cover"]) == (2, 5.0)
    # Day 5: 6 units over 2 days (the cancelled item is not sold); 10 / 3 a day.
    assert built[(day(5), "WH1", 1)]["days_of_cover"] == pytest.approx(10 / 3)
    # Day 7: window days 5-7 hold 4 units over 3 days; 5 on hand.
    assert built[(day(7), "WH1", 1)]["days_of_cover"] == pytest.approx(5 / (4 / 3))
    # Days 0-3: no sale yet; day 9: nothing sold in days 7-9.
    assert built[(day(1), "WH1", 1)]["days_of_cover"] is None and built[(day(9), "WH1", 1)]["days_of_cover"] is None
    assert built[(day(1), "WH2", 1)]["is_drop"] is False  # each warehouse has its own baseline


def test_hand_made_inventory_health_follows_the_definitions(hand_made: Settings) -> None:
    assert_health_equal(built_health(hand_made), expected_health(hand_made))
