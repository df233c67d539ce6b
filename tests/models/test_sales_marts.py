"""The star schema's sales tables recomputed in plain Python from the silver tables, by DESIGN.md's definitions.

A sale is a valid order item whose order status is not `cancelled`; its day is the local date of the order's
`created_at` (stored naive in UTC) in the shop's time zone; its reporting amount is sale_price at the
`fx_rates` rate of the order's currency and day (1 for the reporting currency, NULL without a rate; an order
without a currency is in the reporting currency); its cost is that of the product version valid when the order
was placed (the first version for a sale before it). gross = sum of reporting amounts; returned = the part whose
item status is `returned`; net = gross - returned; margin = net - cost of the items kept (of the sales with an
amount); orders = distinct orders; items = sales; average_order_value = gross / orders; return_rate = orders
with a returned item / orders; a zero denominator gives 0.

The lake: two generated days with defects, then a hand-made day (2026-01-07) that changes one product's cost at
noon and sells it before and after, sells in EUR at 23:30 UTC (the next day in Europe/Berlin, which has no
rate), in GBP, without a currency, and cancels the only order of a hand-made product. The shop's time zone
is Europe/Berlin.
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.pipeline import run

pytestmark = pytest.mark.integration

TIMEZONE = "Europe/Berlin"
REPORTING = "USD"
DAYS = 2
HAND_DAY = date(2026, 1, 7)
HM = 7_000_000_000  # hand-made ids, far from the generator's (clean ones small, defect copies 9e9 and up)
PRICED = 1  # the generated product whose cost the hand-made day changes
COST_CHANGE_AT = datetime(2026, 1, 7, 12, 0, 0)
NEW_COST = Decimal("1.00")
HAND_CATEGORY = "Hand Made"  # bought only by a cancelled order
LATE_PRODUCT = HM + 100  # first exported hours after its first sale
HAND_RATES = {"EUR": "1.091234", "GBP": "1.281111"}
CENT, MICRO = Decimal("0.01"), Decimal("0.000001")
MONEY = ("gross_revenue", "returned_revenue", "net_revenue", "margin")
COUNTS = ("orders", "items", "sales_without_rate")
RATIOS = ("average_order_value", "return_rate")


def delta_rows(lake: Path, layer: str, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = DeltaTable(str(lake / layer / name)).to_pyarrow_table().to_pylist()
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_hand_made_day(landing: Path) -> None:
    """The 2026-01-07 drop (see the module docstring), built on the generated second day's products."""
    with (landing / "products_2026_01_06.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        product = next(r for r in reader if r["product_id"] == str(PRICED))
    assert Decimal(product["cost"]) != NEW_COST, "the change is a change"
    changed = {**product, "cost": str(NEW_COST), "updated_at": f"{COST_CHANGE_AT}"}
    hand = {**product, "product_id": str(HM), "sku": "HM-1", "name": "Hand-made bowl", "category": HAND_CATEGORY,
            "cost": "5.00", "retail_price": "20.00", "updated_at": "2026-01-07 08:00:00"}
    late = {**product, "product_id": str(LATE_PRODUCT), "sku": "HM-2", "name": "Late vase", "cost": "7.00",
            "retail_price": "21.00", "updated_at": "2026-01-07 20:00:00"}
    write_csv(landing / "products_2026_01_07.csv", header,
              [[r[c] for c in header] for r in (changed, hand, late)])
    customer = "1"  # generated ids start at 1; defect copies never reuse a clean id
    # order id offset, status, currency, created_at, [(product, item status, sale_price)]
    orders = [
        (1, "delivered", "USD", "2026-01-07 10:00:00", [(PRICED, "delivered", "30.00")]),
        (2, "returned", "USD", "2026-01-07 14:00:00", [(PRICED, "delivered", "30.00"), (PRICED, "returned", "29.50")]),
        (3, "delivered", "EUR", "2026-01-07 23:30:00", [(PRICED, "delivered", "27.00")]),
        (4, "delivered", "GBP", "2026-01-07 12:30:00", [(PRICED, "delivered", "23.45")]),
        (5, "delivered", "", "2026-01-07 13:00:00", [(PRICED, "delivered", "31.00")]),
        (6, "cancelled", "USD", "2026-01-07 09:00:00", [(HM, "cancelled", "20.00")]),
        (7, "delivered", "USD", "2026-01-07 11:00:00", [(LATE_PRODUCT, "delivered", "21.00")]),
    ]
    order_rows, item_rows = [], []
    item_id = HM
    for offset, status, currency, created, items in orders:
        total = sum(Decimal(price) for _, _, price in items)
        order_rows.append([str(HM + offset), customer, status, str(len(items)), str(total), currency, created,
                           created])
        for product_id, item_status, price in items:
            item_id += 1
            item_rows.append([str(item_id), str(HM + offset), str(product_id), item_status, price, created, created])
    write_csv(landing / "orders_2026_01_07.csv", ["order_id", "customer_id", "status", "num_items", "order_amount",
                                                 "currency", "created_at", "updated_at"], order_rows)
    write_csv(landing / "order_items_2026_01_07.csv", ["order_item_id", "order_id", "product_id", "status",
                                                      "sale_price", "created_at", "updated_at"], item_rows)
    write_csv(landing / "fx_rates_2026_01_07.csv", ["rate_date", "currency", "rate"],
              [[f"{HAND_DAY}", code, rate] for code, rate in HAND_RATES.items()])


@dataclass
class Lake:
    settings: Settings
    silver: dict[str, list[dict[str, Any]]]

    def gold(self, name: str) -> list[dict[str, Any]]:
        return delta_rows(Path(self.settings.lake), "gold", name)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("sales_marts")
    landing = root / "landing"
    generate(landing, days=DAYS, scale=0.003, defect_rate=0.02, seed=5)
    write_hand_made_day(landing)
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive", timezone=TIMEZONE)
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"] * (DAYS + 1), [b.error for b in report.batches]
    silver = {feed: delta_rows(root / "lake", "silver", feed)
              for feed in ("orders", "order_items", "products", "customers", "fx_rates")}
    return Lake(settings, silver)


# The reference computation, from silver and the definitions alone.

def key_of(entity_id: int, valid_from: datetime) -> str:
    return hashlib.md5(f"{entity_id}|{valid_from:%Y-%m-%d %H:%M:%S.%f}".encode()).hexdigest()


def version_at(versions: list[dict[str, Any]], moment: datetime) -> dict[str, Any] | None:
    """The version valid at `moment`: valid_from <= moment < valid_to; before the first one, the first one."""
    ordered = sorted(versions, key=lambda v: v["_valid_from"])
    if ordered and moment < ordered[0]["_valid_from"]:
        return ordered[0]
    found = [v for v in ordered if v["_valid_from"] <= moment and (v["_valid_to"] is None or moment < v["_valid_to"])]
    assert len(found) <= 1, "versions of one key do not overlap"
    return found[0] if found else None


def by_key(rows: list[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row[key]].append(row)
    return grouped


def expected_sales(silver: dict[str, list[dict[str, Any]]]) -> dict[int, dict[str, Any]]:
    """fact_sales by order_item_id."""
    orders = {o["order_id"]: o for o in silver["orders"]}
    products, customers = by_key(silver["products"], "product_id"), by_key(silver["customers"], "customer_id")
    rates = {(r["rate_date"], r["currency"]): Decimal(r["rate"]).quantize(MICRO, ROUND_HALF_UP)
             for r in silver["fx_rates"]}
    zone = ZoneInfo(TIMEZONE)
    sales = {}
    for item in silver["order_items"]:
        order = orders.get(item["order_id"])
        if order is None or order["status"] == "cancelled":
            continue
        at = order["created_at"]
        day = at.replace(tzinfo=UTC).astimezone(zone).date()
        currency = order["currency"] or REPORTING
        rate = Decimal(1) if currency == REPORTING else rates.get((day, currency))
        product = version_at(products.get(item["product_id"], []), at)
        customer = version_at(customers.get(order["customer_id"], []), at)
        sales[item["order_item_id"]] = {
            "order_id": order["order_id"], "customer_id": order["customer_id"], "product_id": item["product_id"],
            "customer_key": customer and key_of(order["customer_id"], customer["_valid_from"]),
            "product_key": product and key_of(item["product_id"], product["_valid_from"]),
            "order_date": day, "ordered_at": at, "order_status": order["status"], "item_status": item["status"],
            "is_returned": item["status"] == "returned",
            "category": product["category"] if product else "unknown",
            "department": product["department"] if product else "unknown",
            "currency": currency, "sale_price": item["sale_price"], "fx_rate": rate,
            "revenue": None if rate is None else (item["sale_price"] * rate).quantize(CENT, ROUND_HALF_UP),
            "cost": product["cost"] if product else None, "has_fx_rate": rate is not None,
        }
    return sales


@dataclass
class Measures:
    orders: set[int] = field(default_factory=set)
    returned_orders: set[int] = field(default_factory=set)
    items: int = 0
    sales_without_rate: int = 0
    gross: Decimal = Decimal(0)
    returned: Decimal = Decimal(0)
    kept_cost: Decimal = Decimal(0)

    def add(self, sale: dict[str, Any]) -> None:
        self.orders.add(sale["order_id"])
        self.items += 1
        if sale["is_returned"]:
            self.returned_orders.add(sale["order_id"])
        if sale["revenue"] is None:
            self.sales_without_rate += 1
            return
        self.gross += sale["revenue"]
        if sale["is_returned"]:
            self.returned += sale["revenue"]
        else:
            self.kept_cost += sale["cost"] or Decimal(0)

    def row(self) -> dict[str, Any]:
        orders = len(self.orders)
        return {"orders": orders, "items": self.items, "sales_without_rate": self.sales_without_rate,
                "gross_revenue": self.gross, "returned_revenue": self.returned,
                "net_revenue": self.gross - self.returned, "margin": self.gross - self.returned - self.kept_cost,
                "average_order_value": float(self.gross) / orders if orders else 0.0,
                "return_rate": len(self.returned_orders) / orders if orders else 0.0}


def measured(sales: dict[int, dict[str, Any]], *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    groups: dict[tuple[Any, ...], Measures] = defaultdict(Measures)
    for sale in sales.values():
        groups[tuple(sale[k] for k in key)].add(sale)
    return {k: m.row() for k, m in groups.items()}


def keyed(rows: list[dict[str, Any]], *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    out = {tuple(r[k] for k in key): r for r in rows}
    assert len(out) == len(rows), f"one row per {key}"
    return out


def assert_measures(actual: dict[tuple[Any, ...], dict[str, Any]], expected: dict[tuple[Any, ...], dict[str, Any]],
                    columns: tuple[str, ...] = (*COUNTS, *MONEY), ratios: tuple[str, ...] = RATIOS) -> None:
    assert sorted(actual, key=repr) == sorted(expected, key=repr)
    for key, want in expected.items():
        got = actual[key]
        assert {c: got[c] for c in columns} == {c: want[c] for c in columns}, key
        assert {c: got[c] for c in ratios} == pytest.approx({c: want[c] for c in ratios}), key


# The scenario is what the checks below rely on.

def test_the_lake_holds_every_case_the_definitions_distinguish(lake: Lake) -> None:
    sales = expected_sales(lake.silver)
    assert {s["currency"] for s in sales.values()} == {"USD", "EUR", "GBP"}
    assert any(s["revenue"] is None for s in sales.values()), "a sale without a rate"
    assert any(s["is_returned"] for s in sales.values())
    assert any(o["status"] == "cancelled" for o in lake.silver["orders"])
    shifted = [s for s in sales.values() if s["order_date"] != s["ordered_at"].date()]
    assert shifted, "sales whose local day is not their UTC day"
    priced = [v for v in lake.silver["products"] if v["product_id"] == PRICED]
    assert len(priced) >= 2 and {v["cost"] for v in priced} >= {NEW_COST}, "the cost change made a version"


def test_fact_sales_matches_the_definitions(lake: Lake) -> None:
    expected = expected_sales(lake.silver)
    actual = {r["order_item_id"]: r for r in lake.gold("fact_sales")}
    assert sorted(actual) == sorted(expected)
    for item_id, want in expected.items():
        got = actual[item_id]
        assert {c: got[c] for c in want} == want, item_id
    assert list(lake.gold("fact_sales")[0]) == [
        "order_item_id", "order_id", "customer_id", "customer_key", "product_id", "product_key", "order_date",
        "ordered_at", "order_status", "item_status", "is_returned", "department", "category", "subcategory",
        "brand", "currency", "sale_price", "fx_rate", "revenue", "cost", "has_fx_rate"]


def test_a_late_evening_sale_lands_on_the_next_local_day_without_a_rate(lake: Lake) -> None:
    [sale] = [r for r in lake.gold("fact_sales") if r["order_id"] == HM + 3]
    assert sale["ordered_at"] == datetime(2026, 1, 7, 23, 30) and sale["order_date"] == date(2026, 1, 8)
    assert (sale["currency"], sale["fx_rate"], sale["revenue"], sale["has_fx_rate"]) == ("EUR", None, None, False)
    [gbp] = [r for r in lake.gold("fact_sales") if r["order_id"] == HM + 4]
    assert gbp["fx_rate"] == Decimal(HAND_RATES["GBP"])
    assert gbp["revenue"] == (Decimal("23.45") * Decimal(HAND_RATES["GBP"])).quantize(CENT, ROUND_HALF_UP)
    [plain] = [r for r in lake.gold("fact_sales") if r["order_id"] == HM + 5]
    assert (plain["currency"], plain["fx_rate"], plain["revenue"]) == (REPORTING, Decimal(1), Decimal("31.00"))
    [day] = [r for r in lake.gold("agg_daily_sales") if r["order_date"] == date(2026, 1, 8)]
    assert day["sales_without_rate"] >= 1


def test_cost_is_the_product_version_valid_when_the_order_was_placed(lake: Lake) -> None:
    facts = {r["order_id"]: r for r in lake.gold("fact_sales") if r["product_id"] == PRICED}
    before, after = facts[HM + 1], facts[HM + 2]
    assert after["cost"] == NEW_COST
    assert before["cost"] != NEW_COST and before["product_key"] != after["product_key"]
    versions = {r["product_key"]: r for r in lake.gold("dim_product")}
    assert versions[after["product_key"]]["valid_from"] == COST_CHANGE_AT
    assert versions[before["product_key"]]["valid_to"] == COST_CHANGE_AT


def test_a_sale_before_the_products_first_version_takes_that_version(lake: Lake) -> None:
    [sale] = [r for r in lake.gold("fact_sales") if r["order_id"] == HM + 7]
    [version] = [r for r in lake.gold("dim_product") if r["product_id"] == LATE_PRODUCT]
    assert version["valid_from"] == datetime(2026, 1, 7, 20) > sale["ordered_at"]
    assert (sale["product_key"], sale["cost"]) == (version["product_key"], Decimal("7.00"))


def test_agg_daily_sales_matches_the_definitions(lake: Lake) -> None:
    expected = measured(expected_sales(lake.silver), "order_date")
    assert len(expected) == DAYS + 2, "Berlin days: the two generated, the hand-made one and the night after it"
    assert_measures(keyed(lake.gold("agg_daily_sales"), "order_date"), expected)


def test_agg_category_daily_matches_the_definitions(lake: Lake) -> None:
    expected = measured(expected_sales(lake.silver), "order_date", "category")
    actual = keyed(lake.gold("agg_category_daily"), "order_date", "category")
    assert_measures(actual, expected)
    assert not [k for k in actual if k[1] == HAND_CATEGORY], "a cancelled order makes no sale"


def test_agg_product_performance_matches_the_definitions(lake: Lake) -> None:
    sales = expected_sales(lake.silver)
    expected = measured(sales, "product_id")
    newest = {pid: max(vs, key=lambda v: v["_valid_from"]) for pid, vs in by_key(lake.silver["products"],
                                                                                 "product_id").items()}
    actual = keyed(lake.gold("agg_product_performance"), "product_id")
    assert_measures(actual, expected, columns=("orders", "items", "gross_revenue", "net_revenue", "margin"),
                    ratios=())
    nets = [row["net_revenue"] for row in expected.values()]
    for (product_id,), row in actual.items():
        assert row["revenue_rank"] == 1 + sum(n > expected[product_id,]["net_revenue"] for n in nets)
        version = newest.get(product_id)
        assert (row["sku"], row["category"]) == ((version["sku"], version["category"]) if version else
                                                 (None, "unknown"))


def test_dimensions_hold_every_version_and_the_calendar(lake: Lake) -> None:
    products = keyed(lake.gold("dim_product"), "product_key")
    assert sorted(products) == sorted((key_of(v["product_id"], v["_valid_from"]),) for v in lake.silver["products"])
    for version in lake.silver["products"]:
        row = products[key_of(version["product_id"], version["_valid_from"]),]
        assert row["unit_margin"] == version["retail_price"] - version["cost"]
        parts = (version["department"], version["category"], version["subcategory"])
        assert row["category_path"] == " > ".join(p for p in parts if p is not None)
        assert row["is_current"] == version["_is_current"]
    customers = keyed(lake.gold("dim_customer"), "customer_key")
    assert sorted(customers) == sorted((key_of(v["customer_id"], v["_valid_from"]),)
                                       for v in lake.silver["customers"])
    days = sorted({s["order_date"] for s in expected_sales(lake.silver).values()})
    calendar = keyed(lake.gold("dim_date"), "date_day")
    span = [days[0] + timedelta(n) for n in range((days[-1] - days[0]).days + 1)]
    assert sorted(calendar) == [(d,) for d in span]
    for (day,), row in calendar.items():
        iso = day.isocalendar()
        assert (row["year"], row["quarter"], row["month"], row["week"], row["weekday"], row["is_weekend"]) == (
            day.year, (day.month - 1) // 3 + 1, day.month, iso.week, iso.weekday, iso.weekday >= 6)
