"""fact_shipments and agg_delivery_sla against a plain-Python reading of the definitions, from silver.

README, KPI definitions: one shipment per tracking number (its latest status), on the local day of its
order's created_at; delay_days = delivered date - promised date; on time = delivered_at <= promised_at.
Per carrier and day: shipments, delivered (a delivered_at), on_time, late, on_time_rate = on_time / (on_time
+ late) and average_delay_days over deliveries with a promise, both 0 without one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import pytest

from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.pipeline import run
from tests.models.test_customer_marts import ORDER_HEADER
from tests.models.test_funnel_marts import CUSTOMER_HEADER, customer_rows, local_date, read_table, write_csv

pytestmark = pytest.mark.integration

SHIPPING_HEADER = "tracking_number,order_id,carrier,status,shipped_at,promised_at,delivered_at,event_at"


def expected_shipments(settings: Settings) -> dict[str, dict[str, Any]]:
    orders = {o["order_id"]: o for o in read_table(settings, "silver", "orders")}
    expected = {}
    for s in read_table(settings, "silver", "shipping"):
        order = orders[s["order_id"]]
        measured = s["delivered_at"] is not None and s["promised_at"] is not None
        expected[s["tracking_number"]] = {
            "order_id": s["order_id"],
            "customer_id": order["customer_id"],
            "order_date": local_date(order["created_at"], settings.timezone),
            "carrier": s["carrier"],
            "status": s["status"],
            "is_delivered": s["delivered_at"] is not None,
            "delay_days": (s["delivered_at"].date() - s["promised_at"].date()).days if measured else None,
            "is_on_time": s["delivered_at"] <= s["promised_at"] if measured else None,
        }
    return expected


def expected_sla(shipments: dict[str, dict[str, Any]]) -> dict[tuple[date, str], dict[str, Any]]:
    groups: dict[tuple[date, str], list[dict[str, Any]]] = defaultdict(list)
    for s in shipments.values():
        groups[(s["order_date"], s["carrier"])].append(s)
    sla = {}
    for key, rows in groups.items():
        on_time = sum(r["is_on_time"] is True for r in rows)
        late = sum(r["is_on_time"] is False for r in rows)
        delays = [r["delay_days"] for r in rows if r["delay_days"] is not None]
        sla[key] = {"shipments": len(rows), "delivered": sum(r["is_delivered"] for r in rows), "on_time": on_time,
                    "late": late, "on_time_rate": on_time / (on_time + late) if on_time + late else 0.0,
                    "average_delay_days": sum(delays) / len(delays) if delays else 0.0}
    return sla


def built_shipments(settings: Settings) -> dict[str, dict[str, Any]]:
    rows = read_table(settings, "gold", "fact_shipments")
    built = {r["tracking_number"]: r for r in rows}
    assert len(built) == len(rows), "one row per tracking number"
    return built


def built_sla(settings: Settings) -> dict[tuple[date, str], dict[str, Any]]:
    return {(r.pop("order_date"), r.pop("carrier")): r for r in read_table(settings, "gold", "agg_delivery_sla")}


def assert_delivery_equal(settings: Settings) -> None:
    expected = expected_shipments(settings)
    built = built_shipments(settings)
    assert built.keys() == expected.keys()
    for number, row in expected.items():
        assert {k: built[number][k] for k in row} == row, number
    sla, expected_rows = built_sla(settings), expected_sla(expected)
    assert sla.keys() == expected_rows.keys()
    for key, row in expected_rows.items():
        for column, value in row.items():
            assert sla[key][column] == pytest.approx(value), (key, column)


# -- generated data ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("delivery")
    generate(root / "landing", days=2, scale=0.003, defect_rate=0.02, seed=41)
    settings = Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive")
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"] * 2, [b.error for b in report.batches]
    return settings


def test_generated_delivery_follows_the_definitions(generated: Settings) -> None:
    assert_delivery_equal(generated)
    assert any(s["is_delivered"] for s in built_shipments(generated).values())


# -- hand-made edges ----------------------------------------------------------------------------------------

ZONE = "America/New_York"  # order 3, placed 2026-03-03 02:00 UTC, is a 2026-03-02 order there
SHIPMENTS = [
    # on the promised second: on time; a second later: late, though on the promised day (delay 0)
    "1ZA,1,ups,delivered,2026-03-02 08:00:00,2026-03-04 18:00:00,2026-03-04 18:00:00,2026-03-04 18:00:00",
    "1ZB,1,ups,delivered,2026-03-02 08:00:00,2026-03-04 18:00:00,2026-03-04 18:00:01,2026-03-04 18:00:01",
    # a day late, and two days early
    "1ZC,2,ups,delivered,2026-03-02 08:00:00,2026-03-04 18:00:00,2026-03-05 09:00:00,2026-03-05 09:00:00",
    "1ZD,2,ups,delivered,2026-03-02 08:00:00,2026-03-04 18:00:00,2026-03-02 20:00:00,2026-03-02 20:00:00",
    # delivered without a promise: delivered, neither on time nor late
    "1ZE,3,ups,delivered,2026-03-03 08:00:00,,2026-03-04 10:00:00,2026-03-04 10:00:00",
    # another carrier, nothing delivered yet: rate and delay 0
    "JDF,2,dhl,in_transit,2026-03-02 08:00:00,2026-03-05 18:00:00,,2026-03-02 09:00:00",
    # a tracking number not yet scanned again: a label only
    "JDG,2,dhl,label_created,2026-03-02 08:00:00,2026-03-05 18:00:00,,2026-03-02 07:00:00",
]


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("delivery_edges")
    landing = root / "landing"
    landing.mkdir()
    write_csv(landing, "customers_2026_03_05.csv", CUSTOMER_HEADER, customer_rows([1]))
    write_csv(landing, "orders_2026_03_05.csv", ORDER_HEADER, [
        "1,1,delivered,1,9,USD,2026-03-01 12:00:00,2026-03-04 18:00:00",
        "2,1,delivered,1,9,USD,2026-03-01 13:00:00,2026-03-05 09:00:00",
        "3,1,delivered,1,9,USD,2026-03-03 02:00:00,2026-03-04 10:00:00",
    ])
    write_csv(landing, "shipping_2026_03_05.csv", SHIPPING_HEADER, SHIPMENTS)
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive", timezone=ZONE)
    report = run(settings)
    assert [b.status for b in report.batches] == ["succeeded"], [b.error for b in report.batches]
    return settings


def test_on_time_boundary_and_delay(hand_made: Settings) -> None:
    built = built_shipments(hand_made)
    assert (built["1ZA"]["is_on_time"], built["1ZA"]["delay_days"]) == (True, 0)
    assert (built["1ZB"]["is_on_time"], built["1ZB"]["delay_days"]) == (False, 0)
    assert (built["1ZC"]["is_on_time"], built["1ZC"]["delay_days"]) == (False, 1)
    assert (built["1ZD"]["is_on_time"], built["1ZD"]["delay_days"]) == (True, -2)
    assert (built["1ZE"]["is_delivered"], built["1ZE"]["is_on_time"], built["1ZE"]["order_date"]) == (
        True, None, date(2026, 3, 2))


def test_sla_per_carrier_and_day(hand_made: Settings) -> None:
    sla = built_sla(hand_made)
    ups = sla[(date(2026, 3, 1), "ups")]
    assert (ups["shipments"], ups["delivered"], ups["on_time"], ups["late"]) == (4, 4, 2, 2)
    assert ups["on_time_rate"] == 0.5 and ups["average_delay_days"] == pytest.approx((0 + 0 + 1 - 2) / 4)
    no_promise = sla[(date(2026, 3, 2), "ups")]
    assert (no_promise["delivered"], no_promise["on_time_rate"], no_promise["average_delay_days"]) == (1, 0.0, 0.0)
    dhl = sla[(date(2026, 3, 1), "dhl")]
    assert (dhl["shipments"], dhl["delivered"], dhl["on_time_rate"], dhl["average_delay_days"]) == (2, 0, 0.0, 0.0)


def test_hand_made_delivery_follows_the_definitions(hand_made: Settings) -> None:
    assert_delivery_equal(hand_made)
