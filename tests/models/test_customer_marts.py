"""agg_customer_metrics against a plain-Python reading of the definitions, from the silver tables.

README, KPI definitions: a sale is a valid order item whose order is not cancelled; revenue is sale_price at
the fx rate of the order's currency and local day (1 for the reporting currency, NULL without a rate); LTV
= net revenue (returned items excluded) over all a customer's sales. "Today" is the lake's latest day with a
sale or a session. Lifecycle: prospect (no sale), new (first sale at most new_days ago), active (last sale
at most active_days ago), at_risk (at most at_risk_days), churned. Buyers are ranked by LTV (ties share a
rank): vip = rank <= ceil(vip_share x buyers), high = rank <= ceil(buyers / 4), medium = rank <= ceil(buyers
/ 2), low = the rest, none for prospects. A window shopper has no sale and at least window_shopper_sessions
sessions with a page_view at most window_shopper_days before today.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from shoplake.config import Kpis, Settings
from shoplake.generate import generate
from shoplake.pipeline import run
from tests.models.test_funnel_marts import (
    CUSTOMER_HEADER,
    EVENT_HEADER,
    customer_rows,
    expected_sessions,
    local_date,
    read_table,
    write_csv,
)

pytestmark = pytest.mark.integration

CENT = Decimal("0.01")
PRODUCT_HEADER = "product_id,sku,name,brand,department,category,subcategory,cost,retail_price,updated_at"
ORDER_HEADER = "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at"
ITEM_HEADER = "order_item_id,order_id,product_id,status,sale_price,created_at,updated_at"
FX_HEADER = "rate_date,currency,rate"


@dataclass(frozen=True)
class Sale:
    customer_id: int
    order_id: int
    order_date: date
    is_returned: bool
    revenue: Decimal | None


def expected_sales(settings: Settings) -> list[Sale]:
    """Every sale with its revenue in the reporting currency, from silver orders, items and fx_rates."""
    orders = {o["order_id"]: o for o in read_table(settings, "silver", "orders")}
    rates = {(r["rate_date"], r["currency"]): r["rate"] for r in read_table(settings, "silver", "fx_rates")} \
        if (Path(settings.lake) / "silver" / "fx_rates").exists() else {}
    sales = []
    for item in read_table(settings, "silver", "order_items"):
        order = orders[item["order_id"]]
        if order["status"] == "cancelled":
            continue
        day = local_date(order["created_at"], settings.timezone)
        currency = order["currency"] or settings.reporting_currency
        rate = Decimal(1) if currency == settings.reporting_currency else rates.get((day, currency))
        revenue = None if rate is None else (item["sale_price"] * Decimal(str(rate))).quantize(CENT, ROUND_HALF_UP)
        sales.append(Sale(order["customer_id"], item["order_id"], day, item["status"] == "returned", revenue))
    return sales


def ceil_share(share: Decimal, count: int) -> int:
    return math.ceil(share * count)


def expected_metrics(settings: Settings) -> dict[int, dict[str, Any]]:
    kpis = settings.kpis
    sales = expected_sales(settings)
    has_events = (Path(settings.lake) / "silver" / "events").exists()
    events = read_table(settings, "silver", "events") if has_events else []
    sessions = expected_sessions(events, zone=settings.timezone, gap_minutes=kpis.session_gap_minutes)
    as_of = max([s.order_date for s in sales] + [day for _, day in sessions])
    by_customer: dict[int, list[Sale]] = defaultdict(list)
    for sale in sales:
        by_customer[sale.customer_id].append(sale)
    ltv = {c: sum((s.revenue for s in own if not s.is_returned and s.revenue is not None), Decimal(0))
           for c, own in by_customer.items()}
    buyers = len(ltv)
    rank = {c: 1 + sum(other > value for other in ltv.values()) for c, value in ltv.items()}
    vip_cut = ceil_share(Decimal(str(kpis.vip_share)), buyers)
    recent: dict[int, int] = defaultdict(int)
    for (_, day), session in sessions.items():
        if session["customer_id"] is not None and session["has_page_view"] and 0 <= (as_of - day).days <= \
                kpis.window_shopper_days:
            recent[session["customer_id"]] += 1
    customers = [c for c in read_table(settings, "silver", "customers") if c["_is_current"]]
    expected = {}
    for customer in customers:
        cid = customer["customer_id"]
        own = by_customer.get(cid, [])
        row: dict[str, Any] = {"as_of_date": as_of, "orders": len({s.order_id for s in own}), "items": len(own),
                               "lifetime_value": ltv.get(cid, Decimal(0)),
                               "items_without_rate": sum(s.revenue is None for s in own),
                               "recent_sessions": recent[cid], "age": customer["age"]}
        if own:
            first, last = min(s.order_date for s in own), max(s.order_date for s in own)
            recency = (as_of - last).days
            stage = ("new" if (as_of - first).days <= kpis.new_days else "active" if recency <= kpis.active_days
                     else "at_risk" if recency <= kpis.at_risk_days else "churned")
            r = rank[cid]
            segment = ("vip" if r <= vip_cut else "high" if r <= ceil_share(Decimal("0.25"), buyers)
                       else "medium" if r <= ceil_share(Decimal("0.5"), buyers) else "low")
            row |= {"first_sale_date": first, "last_sale_date": last, "recency_days": recency,
                    "lifecycle_stage": stage, "ltv_rank": r, "value_segment": segment, "is_vip": r <= vip_cut,
                    "is_window_shopper": False}
        else:
            row |= {"first_sale_date": None, "last_sale_date": None, "recency_days": None,
                    "lifecycle_stage": "prospect", "ltv_rank": None, "value_segment": "none", "is_vip": False,
                    "is_window_shopper": recent[cid] >= kpis.window_shopper_sessions}
        expected[cid] = row
    assert len(expected) == len(customers), "one current version per customer"
    return expected


def built_metrics(settings: Settings) -> dict[int, dict[str, Any]]:
    rows = read_table(settings, "gold", "agg_customer_metrics")
    built = {r["customer_id"]: r for r in rows}
    assert len(built) == len(rows), "one row per customer"
    return built


def assert_metrics_equal(built: dict[int, dict[str, Any]], expected: dict[int, dict[str, Any]]) -> None:
    assert built.keys() == expected.keys()
    for cid, row in expected.items():
        assert {k: built[cid][k] for k in row} == row, cid


# -- generated data ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("customers")
    generate(root / "landing", days=3, scale=0.003, defect_rate=0.02, seed=23)
    settings = Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive")
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"] * 3, [b.error for b in report.batches]
    return settings


def test_generated_customer_metrics_follow_the_definitions(generated: Settings) -> None:
    expected = expected_metrics(generated)
    assert_metrics_equal(built_metrics(generated), expected)
    segments = {row["value_segment"] for row in expected.values()}
    assert segments == {"vip", "high", "medium", "low", "none"}, "the generated data reaches every segment"
    assert any(row["is_window_shopper"] for row in expected.values())
    without_rate = sum(s.revenue is None for s in expected_sales(generated))
    assert sum(row["items_without_rate"] for row in built_metrics(generated).values()) == without_rate


def test_lifecycle_stage_is_computed_not_copied(generated: Settings) -> None:
    """The CRM's lifecycle_stage column stays in silver; gold's is the recency-based one."""
    built = built_metrics(generated)
    current = {c["customer_id"]: c for c in read_table(generated, "silver", "customers") if c["_is_current"]}
    differs = [cid for cid, row in built.items() if row["lifecycle_stage"] != current[cid]["lifecycle_stage"]]
    assert differs, "some customer's computed stage differs from the input column"


# -- hand-made edges ----------------------------------------------------------------------------------------

AS_OF = date(2026, 7, 1)
VIP_SHARE = 0.3  # of 10 buyers: 3 (0.3 * 10 is 3.0000000000000004 in binary floating point)
# customer -> [(order day, [(sale_price, item status)], currency)]
ORDERS: dict[int, list[tuple[str, list[tuple[str, str]], str]]] = {
    1: [("2026-07-01", [("100.00", "placed")], "USD")],                       # new (first sale today)
    2: [("2026-05-01", [("90.00", "placed")], "USD"),
        ("2026-06-20", [("10.00", "placed")], "USD")],                        # active; LTV 100 ties with 1
    3: [("2026-04-01", [("80.00", "placed")], "USD")],                        # 91 days: at_risk
    4: [("2026-04-02", [("70.00", "placed")], "USD")],                        # 90 days: active
    5: [("2026-01-01", [("60.00", "placed")], "USD")],                        # 181 days: churned
    6: [("2026-01-02", [("50.00", "placed")], "USD")],                        # 180 days: at_risk
    7: [("2026-06-01", [("40.00", "placed")], "USD")],                        # first sale 30 days ago: new
    8: [("2026-05-31", [("30.00", "placed")], "USD")],                        # 31 days: active
    9: [("2026-06-15", [("500.00", "returned"), ("20.00", "delivered")], "USD")],  # LTV 20: the return is out
    10: [("2026-06-10", [("10.00", "placed")], "EUR"),                        # 10 EUR at 1.1 = 11.00 USD
         ("2026-06-11", [("10.00", "placed")], "EUR")],                       # no rate that day: NULL, counted
    11: [("2026-06-30", [("99.00", "cancelled")], "USD")],                    # cancelled only: a prospect
}
# customer -> [(session id, day, event types)]
SESSIONS: dict[int, list[tuple[str, str, list[str]]]] = {
    1: [(f"s1{i}", "2026-06-2" + str(i), ["page_view"]) for i in range(5)],   # buys: never a window shopper
    11: [(f"s11{i}", "2026-06-0" + str(i + 1), ["page_view"]) for i in range(3)],  # no sale: window shopper
    12: [("s120", "2026-06-01", ["page_view"]), ("s121", "2026-06-02", ["page_view"]),
         ("s122", "2026-06-03", ["add_to_cart"])],                            # a session without a view
    13: [("s130", "2026-04-02", ["page_view"]), ("s131", "2026-05-02", ["search", "page_view"]),
         ("s132", "2026-07-01", ["page_view"])],                              # 90 days back counts: shopper
    14: [("s140", "2026-04-01", ["page_view"]), ("s141", "2026-05-02", ["page_view"]),
         ("s142", "2026-06-02", ["page_view"])],                              # 91 days back does not
}


def write_hand_made(landing: Path) -> None:
    stamp = "2025-12-01 09:00:00"
    suffix = f"{AS_OF:%Y_%m_%d}.csv"
    write_csv(landing, f"customers_{suffix}", CUSTOMER_HEADER, customer_rows(range(1, 16)))
    write_csv(landing, f"products_{suffix}", PRODUCT_HEADER,
              [f"1,SKU-1,Bowl,Hand,Home,Kitchen,Bowls,1.00,600.00,{stamp}"])
    write_csv(landing, f"fx_rates_{suffix}", FX_HEADER, ["2026-06-10,EUR,1.1"])
    orders: list[str] = []
    items: list[str] = []
    for customer, placed in ORDERS.items():
        for day, lines, currency in placed:
            order_id = len(orders) + 1
            status = "cancelled" if lines[0][1] == "cancelled" else "processing"
            at = f"{day} 12:00:00"
            orders.append(f"{order_id},{customer},{status},{len(lines)},0,{currency},{at},{at}")
            for price, item_status in lines:
                items.append(f"{len(items) + 1},{order_id},1,{item_status},{price},{at},{at}")
    write_csv(landing, f"orders_{suffix}", ORDER_HEADER, orders)
    write_csv(landing, f"order_items_{suffix}", ITEM_HEADER, items)
    events: list[str] = []
    for customer, sessions in SESSIONS.items():
        for session_id, day, types in sessions:
            for minute, event_type in enumerate(types):
                events.append(f"ev{len(events)},{session_id},{customer},{event_type},,{day} 10:{minute:02d}:00,,mobile")
    write_csv(landing, f"events_{suffix}", EVENT_HEADER, events)


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("customer_edges")
    landing = root / "landing"
    landing.mkdir()
    write_hand_made(landing)
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive", kpis=Kpis(vip_share=VIP_SHARE))
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"], [b.error for b in report.batches]
    return settings


def test_lifecycle_boundaries(hand_made: Settings) -> None:
    built = built_metrics(hand_made)
    assert {row["as_of_date"] for row in built.values()} == {AS_OF}
    stages = {cid: built[cid]["lifecycle_stage"] for cid in range(1, 12)}
    assert stages == {1: "new", 2: "active", 3: "at_risk", 4: "active", 5: "churned", 6: "at_risk", 7: "new",
                      8: "active", 9: "new", 10: "new", 11: "prospect"}
    assert (built[3]["recency_days"], built[5]["recency_days"], built[11]["recency_days"]) == (91, 181, None)


def test_ltv_is_net_in_the_reporting_currency(hand_made: Settings) -> None:
    built = built_metrics(hand_made)
    assert built[9]["lifetime_value"] == Decimal("20.00") and built[9]["orders"] == 1
    assert (built[10]["lifetime_value"], built[10]["orders"], built[10]["items_without_rate"]) == (
        Decimal("11.00"), 2, 1)
    assert (built[11]["orders"], built[11]["lifetime_value"]) == (0, Decimal("0.00"))


def test_vip_share_is_exact_and_ties_share_a_rank(hand_made: Settings) -> None:
    built = built_metrics(hand_made)
    assert {cid for cid, row in built.items() if row["is_vip"]} == {1, 2, 3}
    assert (built[1]["ltv_rank"], built[2]["ltv_rank"], built[3]["ltv_rank"]) == (1, 1, 3)
    segments = {cid: built[cid]["value_segment"] for cid in range(1, 16)}
    # 10 buyers: vip ranks 1-3 (ceil 3.0), high up to ceil(2.5) = 3 (none left), medium up to 5, then low.
    assert segments == {1: "vip", 2: "vip", 3: "vip", 4: "medium", 5: "medium", 6: "low", 7: "low", 8: "low",
                        9: "low", 10: "low", 11: "none", 12: "none", 13: "none", 14: "none", 15: "none"}


def test_window_shoppers(hand_made: Settings) -> None:
    built = built_metrics(hand_made)
    assert {cid for cid, row in built.items() if row["is_window_shopper"]} == {11, 13}
    assert (built[1]["recent_sessions"], built[12]["recent_sessions"], built[14]["recent_sessions"]) == (5, 2, 2)


def test_hand_made_metrics_follow_the_definitions(hand_made: Settings) -> None:
    assert_metrics_equal(built_metrics(hand_made), expected_metrics(hand_made))


def test_a_shop_without_clickstream_still_gets_customer_metrics(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    write_hand_made(landing)
    (landing / f"events_{AS_OF:%Y_%m_%d}.csv").unlink()
    settings = Settings(landing=landing, lake=tmp_path / "lake", archive=tmp_path / "archive",
                        kpis=Kpis(vip_share=VIP_SHARE))
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"], [b.error for b in report.batches]
    built = built_metrics(settings)
    assert {row["recent_sessions"] for row in built.values()} == {0}
    assert not any(row["is_window_shopper"] for row in built.values())
    assert_metrics_equal(built, expected_metrics(settings))
