"""fact_sessions and agg_funnel_daily against a plain-Python reading of the definitions, from silver.events.

README, KPI definitions: a session is the feed's session id; events without one are a customer's events split
by `session_gap_minutes` of inactivity (a gap at least that long starts a new session), an anonymous event
without one is a session of its own; every session is cut at the shop's local midnight. The funnel per day
counts sessions with a page_view, an add_to_cart and a purchase; view_to_cart = cart / view, cart_to_purchase
= purchase / cart, view_to_purchase = purchase / view, each capped at 1, 0 when the denominator is 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from deltalake import DeltaTable

from shoplake.config import Kpis, Settings
from shoplake.generate import generate
from shoplake.pipeline import run

pytestmark = pytest.mark.integration

UTC = ZoneInfo("UTC")
CUSTOMER_HEADER = "customer_id,first_name,last_name,email,phone,birth_date,city,country,segment,lifecycle_stage," \
                  "created_at,updated_at"
EVENT_HEADER = "event_id,session_id,customer_id,event_type,product_id,event_at,page_url,device"


def read_table(settings: Settings, layer: str, name: str) -> list[dict[str, Any]]:
    """Every row of a lake table, read with deltalake (not through either engine)."""
    rows: list[dict[str, Any]] = DeltaTable(str(Path(settings.lake) / layer / name)).to_pyarrow_table().to_pylist()
    return rows


def write_csv(landing: Path, name: str, header: str, rows: Iterable[str]) -> None:
    (landing / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def customer_rows(ids: Iterable[int]) -> list[str]:
    stamp = "2025-12-01 09:00:00"
    return [f"{i},F{i},L{i},c{i}@example.com,,1990-01-01,Lyon,FR,consumer,new,{stamp},{stamp}" for i in ids]


def local_date(at: datetime, zone: str) -> date:
    """The local date of a naive UTC timestamp in the shop's time zone."""
    return at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()


@dataclass
class Session:
    customer_id: int | None
    events: list[dict[str, Any]]

    def row(self) -> dict[str, Any]:
        types = [e["event_type"] for e in self.events]
        return {
            "customer_id": self.customer_id,
            "started_at": min(e["event_at"] for e in self.events),
            "ended_at": max(e["event_at"] for e in self.events),
            "events": len(types),
            "page_views": types.count("page_view"),
            "has_page_view": "page_view" in types,
            "has_add_to_cart": "add_to_cart" in types,
            "has_purchase": "purchase" in types,
        }


def expected_sessions(events: list[dict[str, Any]], *, zone: str, gap_minutes: int) -> dict[tuple[str, date], Any]:
    """Sessions keyed by (session_id, local day), each as the fact_sessions measures."""
    sessions: dict[tuple[str, date], Session] = {}
    unsessioned: dict[tuple[int, date], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        day = local_date(e["event_at"], zone)
        if e["session_id"] is not None:
            session = sessions.setdefault((e["session_id"], day), Session(None, []))
            session.events.append(e)
            if e["customer_id"] is not None:
                session.customer_id = max(session.customer_id or e["customer_id"], e["customer_id"])
        elif e["customer_id"] is None:
            sessions[(f"~e{e['event_id']}", day)] = Session(None, [e])
        else:
            unsessioned[(e["customer_id"], day)].append(e)
    for (customer, day), own in unsessioned.items():
        number, previous = 0, None
        for e in sorted(own, key=lambda e: (e["event_at"], e["event_id"])):
            if previous is None or e["event_at"] - previous >= timedelta(minutes=gap_minutes):
                number += 1
            previous = e["event_at"]
            key = (f"~c{customer}-{day:%Y%m%d}-{number}", day)
            sessions.setdefault(key, Session(customer, [])).events.append(e)
    return {key: s.row() for key, s in sessions.items()}


def rate(numerator: int, denominator: int) -> float:
    return 0.0 if denominator == 0 else min(1.0, numerator / denominator)


def expected_funnel(sessions: dict[tuple[str, date], dict[str, Any]]) -> dict[date, dict[str, Any]]:
    days: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for (_, day), row in sessions.items():
        days[day].append(row)
    funnel = {}
    for day, rows in days.items():
        view = sum(r["has_page_view"] for r in rows)
        cart = sum(r["has_add_to_cart"] for r in rows)
        purchase = sum(r["has_purchase"] for r in rows)
        funnel[day] = {"sessions": len(rows), "view_sessions": view, "cart_sessions": cart,
                       "purchase_sessions": purchase, "view_to_cart": rate(cart, view),
                       "cart_to_purchase": rate(purchase, cart), "view_to_purchase": rate(purchase, view)}
    return funnel


def built_sessions(settings: Settings) -> dict[tuple[str, date], dict[str, Any]]:
    rows = read_table(settings, "gold", "fact_sessions")
    built = {(r.pop("session_id"), r.pop("session_date")): r for r in rows}
    assert len(built) == len(rows), "fact_sessions has one row per (session_id, session_date)"
    for row in built.values():
        row.pop("device")
        row.pop("is_derived")
    return built


def built_funnel(settings: Settings) -> dict[date, dict[str, Any]]:
    return {r.pop("session_date"): r for r in read_table(settings, "gold", "agg_funnel_daily")}


def assert_funnel_equal(built: dict[date, dict[str, Any]], expected: dict[date, dict[str, Any]]) -> None:
    assert built.keys() == expected.keys()
    for day, row in expected.items():
        for column, value in row.items():
            assert built[day][column] == pytest.approx(value), (day, column)


# -- generated data ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("funnel")
    generate(root / "landing", days=2, scale=0.003, defect_rate=0.02, seed=5)
    settings = Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive")
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"] * 2, [b.error for b in report.batches]
    return settings


def test_generated_sessions_follow_the_definition(generated: Settings) -> None:
    events = read_table(generated, "silver", "events")
    assert any(e["session_id"] is None and e["customer_id"] is not None for e in events), \
        "the generator writes signed-in events without a session id"
    expected = expected_sessions(events, zone="UTC", gap_minutes=Kpis().session_gap_minutes)
    assert built_sessions(generated) == expected
    assert sum(r["events"] for r in expected.values()) == len(events), "every event is in one session"


def test_generated_funnel_follows_the_definition(generated: Settings) -> None:
    expected = expected_funnel(expected_sessions(read_table(generated, "silver", "events"), zone="UTC",
                                                 gap_minutes=Kpis().session_gap_minutes))
    assert len(expected) == 2
    built = built_funnel(generated)
    assert_funnel_equal(built, expected)
    for row in built.values():
        assert row["view_sessions"] > row["cart_sessions"] > row["purchase_sessions"] > 0


# -- hand-made edges ----------------------------------------------------------------------------------------

GAP = 30
DAY = date(2026, 3, 10)
ZONE = "Europe/Berlin"  # UTC+1 in March before the 29th: 23:10 UTC is 00:10 the next local day


def hand_made_events() -> list[str]:
    """Customer 1 without session ids: 29:59 apart stays one session, 30:00 apart starts one; customer 2's
    events either side of local midnight; anonymous events without ids; a day whose only sessions
    purchase without a view or a cart; aliased event names."""
    rows = [
        # customer 1, no session id: s1 = 08:00:00, 08:29:59 ; s2 = 08:59:59 (30:00 later) ; s3 = 10:00
        "e01,,1,Product Viewed,,2026-03-10 08:00:00,,desktop",
        "e02,,1,ADD-TO-CART,,2026-03-10 08:29:59,,desktop",
        "e03,,1,page_view,,2026-03-10 08:59:59,,mobile",
        "e04,,1,order completed,,2026-03-10 10:00:00,,mobile",
        # customer 2, no session id, 20 minutes apart but across local midnight (22:50 and 23:10 UTC)
        "e05,,2,page_view,,2026-03-10 22:50:00,,desktop",
        "e06,,2,add_to_cart,,2026-03-10 23:10:00,,desktop",
        # a given session id spanning local midnight is cut there too
        "e07,sX,3,page_view,,2026-03-10 22:55:00,,tablet",
        "e08,sX,3,purchase,,2026-03-10 23:05:00,,tablet",
        # anonymous, no session id: one session each, even a minute apart
        "e09,,,page_view,,2026-03-10 12:00:00,,mobile",
        "e10,,,page_view,,2026-03-10 12:01:00,,mobile",
        # 2026-03-12: purchases only, in two given sessions (no view, no cart): every rate is 0
        "e11,sY,,purchase,,2026-03-12 09:00:00,,desktop",
        "e12,sZ,,transaction,,2026-03-12 09:00:00,,desktop",
        # 2026-03-13: one view session, two cart sessions, three purchase sessions: capped at 1
        "e13,sA,,page_view,,2026-03-13 09:00:00,,desktop",
        "e14,sA,,add_to_cart,,2026-03-13 09:01:00,,desktop",
        "e15,sA,,purchase,,2026-03-13 09:02:00,,desktop",
        "e16,sB,,add_to_cart,,2026-03-13 10:00:00,,desktop",
        "e17,sB,,purchase,,2026-03-13 10:01:00,,desktop",
        "e18,sC,,purchase,,2026-03-13 11:00:00,,desktop",
    ]
    return rows


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("funnel_edges")
    landing = root / "landing"
    landing.mkdir()
    write_csv(landing, f"customers_{DAY:%Y_%m_%d}.csv", CUSTOMER_HEADER, customer_rows([1, 2, 3]))
    write_csv(landing, f"events_{DAY:%Y_%m_%d}.csv", EVENT_HEADER, hand_made_events())
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive", timezone=ZONE,
                        kpis=Kpis(session_gap_minutes=GAP))
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"], [b.error for b in report.batches]
    return settings


def test_sessions_split_by_the_gap_and_local_midnight(hand_made: Settings) -> None:
    built = built_sessions(hand_made)
    by_events = {(key, row["events"]) for key, row in built.items() if key[0].startswith("~c1-")}
    assert by_events == {(("~c1-20260310-1", DAY), 2), (("~c1-20260310-2", DAY), 1), (("~c1-20260310-3", DAY), 1)}
    assert {key for key in built if key[0].startswith("~c2-")} == {
        ("~c2-20260310-1", DAY), ("~c2-20260311-1", date(2026, 3, 11))}
    assert {key for key in built if key[0] == "sX"} == {("sX", DAY), ("sX", date(2026, 3, 11))}
    assert {key for key in built if key[0].startswith("~e")} == {("~ee09", DAY), ("~ee10", DAY)}
    events = read_table(hand_made, "silver", "events")
    assert built == expected_sessions(events, zone=ZONE, gap_minutes=GAP)


def test_event_names_are_normalised(hand_made: Settings) -> None:
    names = {e["event_id"]: e["event_type"] for e in read_table(hand_made, "silver", "events")}
    assert (names["e01"], names["e02"], names["e04"], names["e12"]) == (
        "page_view", "add_to_cart", "purchase", "purchase")


def test_funnel_rates_are_capped_and_zero_without_a_denominator(hand_made: Settings) -> None:
    built = built_funnel(hand_made)
    only_purchases = built[date(2026, 3, 12)]
    assert (only_purchases["view_sessions"], only_purchases["cart_sessions"], only_purchases["purchase_sessions"]) \
        == (0, 0, 2)
    assert (only_purchases["view_to_cart"], only_purchases["cart_to_purchase"],
            only_purchases["view_to_purchase"]) == (0.0, 0.0, 0.0)
    capped = built[date(2026, 3, 13)]
    assert (capped["view_sessions"], capped["cart_sessions"], capped["purchase_sessions"]) == (1, 2, 3)
    assert (capped["view_to_cart"], capped["cart_to_purchase"], capped["view_to_purchase"]) == (1.0, 1.0, 1.0)
    events = read_table(hand_made, "silver", "events")
    assert_funnel_equal(built, expected_funnel(expected_sessions(events, zone=ZONE, gap_minutes=GAP)))
