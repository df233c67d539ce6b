"""Tests for the seeded e-commerce feed generator: layout, coherence, determinism and defects."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pyarrow.csv as pcsv
import pytest

from shoplake.generate import GenerateReport, generate

SCALE = 0.005
DAYS = 2
FIRST_DAY = date(2026, 1, 5)
DATES = ("2026_01_05", "2026_01_06")

# Written out by hand from the feed specification, not imported, so a change to the
# generator's column lists cannot slip through unnoticed.
HEADERS = {
    "customers": "customer_id,first_name,last_name,email,phone,birth_date,city,country,segment,"
    "lifecycle_stage,created_at,updated_at",
    "products": "product_id,sku,name,brand,department,category,subcategory,cost,retail_price,"
    "updated_at",
    "orders": "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at",
    "order_items": "order_item_id,order_id,product_id,status,sale_price,created_at,updated_at",
    "inventory": "snapshot_date,warehouse_id,product_id,quantity_on_hand,quantity_reserved",
    "shipping": "tracking_number,order_id,carrier,status,shipped_at,promised_at,delivered_at,"
    "event_at",
    "events": "event_id,session_id,customer_id,event_type,product_id,event_at,page_url,device",
    "fx_rates": "rate_date,currency,rate",
}
ROW_KINDS = {
    "customers": {"bad_email", "bad_phone", "null_key", "duplicate_row"},
    "products": {"non_positive_price", "cost_above_retail", "null_key", "duplicate_row"},
    "orders": {
        "orphan_reference", "null_key", "float_id", "future_date", "unknown_status",
        "duplicate_row",
    },
    "order_items": {
        "non_positive_price", "orphan_reference", "null_key", "float_id", "future_date",
        "unknown_status", "duplicate_row",
    },
    "inventory": {"null_key", "duplicate_row"},
    "shipping": {"orphan_reference", "null_key", "unknown_status", "duplicate_row"},
    "events": {"null_key", "future_date", "view_alias", "duplicate_row"},
    "fx_rates": {"null_key", "duplicate_row"},
}
FILE_KINDS = {"extra_column", "missing_column", "truncated_last_line"}
NORMALISED_KINDS = {"float_id", "view_alias"}
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
MONEY = re.compile(r"\d+\.\d{2}")


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateReport]:
    out = tmp_path_factory.mktemp("clean")
    return out, generate(out, days=DAYS, scale=SCALE)


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateReport]:
    out = tmp_path_factory.mktemp("defective")
    return out, generate(out, days=DAYS, scale=SCALE, defect_rate=0.03)


def test_writes_one_file_per_feed_and_day_plus_a_trigger(
    clean: tuple[Path, GenerateReport],
) -> None:
    out, report = clean
    expected = {f"{feed}_{day}.csv" for feed in HEADERS for day in DATES}
    expected |= {f"trigger_{day}.json" for day in DATES}
    assert {p.name for p in out.iterdir()} == expected
    assert set(report.rows) == {n for n in expected if n.endswith(".csv")}
    assert report.triggers == [f"trigger_{day}.json" for day in DATES]


def test_headers_are_exactly_as_specified(clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    for feed, header in HEADERS.items():
        for day in DATES:
            assert lines(out / f"{feed}_{day}.csv")[0] == header


@pytest.mark.parametrize("fixture", ["clean", "defective"])
def test_trigger_report_and_file_row_counts_agree(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    out, report = request.getfixturevalue(fixture)
    for day, business_date in zip(DATES, ("2026-01-05", "2026-01-06"), strict=True):
        trigger = json.loads((out / f"trigger_{day}.json").read_text(encoding="utf-8"))
        assert trigger["business_date"] == business_date
        assert [f["name"] for f in trigger["files"]] == [f"{feed}_{day}.csv" for feed in HEADERS]
        for entry in trigger["files"]:
            # A truncated last line is still a (broken) row the source meant to send.
            assert len(lines(out / entry["name"])) - 1 == entry["rows"]
            assert report.rows[entry["name"]] == entry["rows"]
            assert entry["rows"] > 0


def test_same_arguments_give_byte_identical_files(
    tmp_path: Path, defective: tuple[Path, GenerateReport]
) -> None:
    out, report = defective
    again = generate(tmp_path, days=DAYS, scale=SCALE, defect_rate=0.03)
    assert again.defects == report.defects
    for path in out.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_another_seed_gives_other_data(tmp_path: Path, clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    generate(tmp_path, days=1, scale=SCALE, seed=7)
    name = f"orders_{DATES[0]}.csv"
    assert (tmp_path / name).read_bytes() != (out / name).read_bytes()


def test_sizes_follow_the_scale(clean: tuple[Path, GenerateReport]) -> None:
    _, report = clean
    rows = report.rows
    day1, day2 = DATES
    assert rows[f"customers_{day1}.csv"] == 200_000 * SCALE
    assert rows[f"products_{day1}.csv"] == 20_000 * SCALE
    assert rows[f"orders_{day1}.csv"] == 1_000_000 * SCALE
    assert rows[f"inventory_{day1}.csv"] == 5 * rows[f"products_{day1}.csv"]
    assert 2.3 < rows[f"order_items_{day1}.csv"] / rows[f"orders_{day1}.csv"] < 2.7
    assert 0.9 < rows[f"events_{day1}.csv"] / (1_500_000 * SCALE) < 1.1
    # Day two is a full snapshot again, grown by the customers who signed up that day.
    assert rows[f"customers_{day2}.csv"] == rows[f"customers_{day1}.csv"] * 101 // 100


def test_references_are_coherent_without_defects(clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    for day in DATES:
        customers = {r["customer_id"] for r in read(out / f"customers_{day}.csv")}
        products = {r["product_id"] for r in read(out / f"products_{day}.csv")}
        orders = {r["order_id"]: r for r in read(out / f"orders_{day}.csv")}
        items = read(out / f"order_items_{day}.csv")
        assert {r["order_id"] for r in items} == set(orders)
        assert {r["product_id"] for r in items} <= products
        assert {r["customer_id"] for r in orders.values()} <= customers
        assert {r["product_id"] for r in read(out / f"inventory_{day}.csv")} == products
        shipping = read(out / f"shipping_{day}.csv")
        not_cancelled = {k for k, r in orders.items() if r["status"] != "cancelled"}
        assert sorted(r["order_id"] for r in shipping) == sorted(not_cancelled)
        events = read(out / f"events_{day}.csv")
        assert {r["customer_id"] for r in events} - {""} <= customers
        assert {r["product_id"] for r in events} - {""} <= products


def test_orders_agree_with_their_items(clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    orders = read(out / f"orders_{DATES[0]}.csv")
    items = read(out / f"order_items_{DATES[0]}.csv")
    count: Counter[str] = Counter()
    cents: Counter[str] = Counter()
    for item in items:
        count[item["order_id"]] += 1
        cents[item["order_id"]] += round(float(item["sale_price"]) * 100)
    by_id = {o["order_id"]: o for o in orders}
    for order in orders:
        assert int(order["num_items"]) == count[order["order_id"]]
        assert round(float(order["order_amount"]) * 100) == cents[order["order_id"]]
    for item in items:
        order = by_id[item["order_id"]]
        assert item["created_at"] == order["created_at"]
        if order["status"] == "cancelled":
            assert item["status"] == "cancelled"
    returned = {o["order_id"] for o in orders if o["status"] == "returned"}
    returned_items = [i for i in items if i["order_id"] in returned]
    assert {i["order_id"] for i in returned_items if i["status"] == "returned"} == returned
    share = sum(i["status"] == "returned" for i in returned_items) / len(returned_items)
    assert 0.35 < share < 0.5


def test_fx_rates_price_foreign_orders(clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    rates: dict[str, dict[str, float]] = {}
    for day, iso in zip(DATES, ("2026-01-05", "2026-01-06"), strict=True):
        rows = read(out / f"fx_rates_{day}.csv")
        assert [r["currency"] for r in rows] == ["EUR", "GBP"]
        assert {r["rate_date"] for r in rows} == {iso}
        assert all(re.fullmatch(r"\d\.\d{6}", r["rate"]) for r in rows)
        rates[day] = {r["currency"]: float(r["rate"]) for r in rows}
    assert 1.0 < rates[DATES[0]]["EUR"] < rates[DATES[0]]["GBP"] < 1.5
    assert rates[DATES[0]] != rates[DATES[1]], "rates move from day to day"
    for day in DATES:
        retail = {p["product_id"]: float(p["retail_price"]) for p in read(out / f"products_{day}.csv")}
        currency = {o["order_id"]: o["currency"] for o in read(out / f"orders_{day}.csv")}
        assert 0.6 < Counter(currency.values())["USD"] / len(currency) < 0.95, "mostly dollars"
        for item in read(out / f"order_items_{day}.csv"):
            code = currency[item["order_id"]]
            # The shelf price is in dollars; a foreign order pays it converted at the day's rate,
            # up to 30 % off for a discounted item (and a cent of rounding).
            dollars = float(item["sale_price"]) * (1.0 if code == "USD" else rates[day][code])
            shelf = retail[item["product_id"]]
            assert 0.7 * shelf - 0.02 <= dollars <= shelf + 0.02, (day, item)


def test_ids_are_unique_across_days(clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    for feed, key in (("orders", "order_id"), ("order_items", "order_item_id"),
                      ("shipping", "tracking_number"), ("events", "event_id")):
        keys = [r[key] for day in DATES for r in read(out / f"{feed}_{day}.csv")]
        assert len(keys) == len(set(keys)), feed
    for day in DATES:
        products = read(out / f"products_{day}.csv")
        assert len({p["sku"] for p in products}) == len(products)
        customers = read(out / f"customers_{day}.csv")
        assert len({c["customer_id"] for c in customers}) == len(customers)


def test_values_have_the_specified_formats(clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    day = DATES[0]
    for c in read(out / f"customers_{day}.csv"):
        assert re.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.com", c["email"])
        assert re.fullmatch(r"\+\d{11,12}", c["phone"])
        assert c["segment"] in {"consumer", "corporate", "home_office"}
        assert c["lifecycle_stage"] in {"new", "active", "at_risk", "churned"}
        age = (FIRST_DAY - date.fromisoformat(c["birth_date"])).days / 365.25
        assert 18 <= age <= 80
        assert c["created_at"] <= c["updated_at"] <= "2026-01-05 23:59:59"
    for p in read(out / f"products_{day}.csv"):
        assert MONEY.fullmatch(p["cost"]) and MONEY.fullmatch(p["retail_price"])
        assert 0 < float(p["cost"]) < float(p["retail_price"])
        assert p["sku"] == p["sku"].upper()
    for o in read(out / f"orders_{day}.csv"):
        assert TIMESTAMP.fullmatch(o["created_at"]) and TIMESTAMP.fullmatch(o["updated_at"])
        assert "2026-01-05 00:00:00" <= o["created_at"] <= o["updated_at"] <= "2026-01-05 23:59:59"
        assert o["currency"] in {"USD", "EUR", "GBP"}
    for i in read(out / f"inventory_{day}.csv"):
        assert i["warehouse_id"] in {"WH01", "WH02", "WH03", "WH04", "WH05"}
        assert 0 <= int(i["quantity_reserved"]) <= int(i["quantity_on_hand"])
    for s in read(out / f"shipping_{day}.csv"):
        shipped = datetime.fromisoformat(s["shipped_at"])
        promised = datetime.fromisoformat(s["promised_at"]) - shipped
        if promised.days == 0:  # express: promised 2-10 hours after the label
            assert 2 <= promised.seconds // 3600 <= 10, s
        else:  # standard: 2-5 days
            assert 2 <= promised.days <= 5, s
        assert s["shipped_at"] <= s["event_at"] <= "2026-01-05 23:59:59"
        assert bool(s["delivered_at"]) == (s["status"] == "delivered")
        assert s["tracking_number"] == s["tracking_number"].upper()
    for e in read(out / f"events_{day}.csv"):
        assert "2026-01-05 00:00:00" <= e["event_at"] <= "2026-01-05 23:59:59"
        assert (e["product_id"] == "") == (e["event_type"] == "search")


def test_clickstream_narrows_down_the_funnel(clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    events = read(out / f"events_{DATES[0]}.csv")
    sessions_with: dict[str, set[str]] = {}
    for e in events:
        sessions_with.setdefault(e["event_type"], set()).add(e["session_id"])
    views, carts = len(sessions_with["page_view"]), len(sessions_with["add_to_cart"])
    assert views > carts > len(sessions_with["purchase"]) > 0
    anonymous = {e["session_id"] for e in events if not e["customer_id"]}
    assert 0.3 < len(anonymous) / len({e["session_id"] for e in events}) < 0.5


def test_snapshots_change_a_little_each_day(clean: tuple[Path, GenerateReport]) -> None:
    out, _ = clean
    day1 = {c["customer_id"]: c for c in read(out / f"customers_{DATES[0]}.csv")}
    day2 = {c["customer_id"]: c for c in read(out / f"customers_{DATES[1]}.csv")}
    changed = [k for k in day1 if day1[k] != day2[k]]
    assert 0.005 < len(changed) / len(day1) < 0.04
    for key in changed:
        assert day2[key]["updated_at"] > day1[key]["updated_at"]
        assert day2[key]["updated_at"].startswith("2026-01-06")
    products1 = {p["product_id"]: p for p in read(out / f"products_{DATES[0]}.csv")}
    products2 = {p["product_id"]: p for p in read(out / f"products_{DATES[1]}.csv")}
    assert set(products1) <= set(products2)


def test_tiny_scale_still_fills_every_feed(tmp_path: Path) -> None:
    report = generate(tmp_path, days=2, scale=0.001, defect_rate=0.01)
    # The rates file has a row per foreign currency (and its defects) at any scale.
    assert all(rows >= 5 for name, rows in report.rows.items() if not name.startswith("fx_rates"))
    for name, kinds in report.defects.items():
        assert ROW_KINDS[name.rsplit("_", 3)[0]] <= set(kinds)


def test_every_defect_kind_appears_in_every_file_it_applies_to(
    defective: tuple[Path, GenerateReport],
) -> None:
    _, report = defective
    for written in report.files:
        kinds = report.defects[written.name]
        assert ROW_KINDS[written.feed] <= set(kinds), written.name
        assert set(kinds) <= ROW_KINDS[written.feed] | FILE_KINDS
        assert all(count >= 1 for count in kinds.values())
    for day in (FIRST_DAY, date(2026, 1, 6)):
        names = [f.name for f in report.files if f.business_date == day]
        for kind in FILE_KINDS:
            hit = [n for n in names if kind in report.defects[n]]
            expected = 0 if day == FIRST_DAY and kind != "truncated_last_line" else 1
            assert len(hit) == expected, (day, kind)
        assert len({n for n in names if FILE_KINDS & set(report.defects[n])}) == (
            1 if day == FIRST_DAY else 3
        )


def test_defect_share_is_roughly_the_defect_rate(defective: tuple[Path, GenerateReport]) -> None:
    _, report = defective
    for written in report.files:
        if written.rows < 500:
            continue
        row_defects = sum(
            n for k, n in report.defects[written.name].items() if k not in FILE_KINDS
        )
        assert 0.02 < row_defects / written.rows < 0.04, written.name


def test_file_level_defects_are_in_the_files(defective: tuple[Path, GenerateReport]) -> None:
    out, report = defective
    for written in report.files:
        kinds = report.defects[written.name]
        text = (out / written.name).read_text(encoding="utf-8")
        header = text.split("\n", 1)[0].split(",")
        expected = HEADERS[written.feed].split(",")
        if "extra_column" in kinds:
            assert header[:-1] == expected
            assert all(len(line.split(",")) == len(header) for line in text.splitlines())
        elif "missing_column" in kinds:
            assert len(header) == len(expected) - 1 and set(header) < set(expected)
        else:
            assert header == expected
        assert text.endswith("\n") != ("truncated_last_line" in kinds)
        if "truncated_last_line" in kinds:
            assert len(text.splitlines()[-1].split(",")) < len(header)


def test_row_defects_are_visible_where_reported(defective: tuple[Path, GenerateReport]) -> None:
    out, report = defective
    day = DATES[0]

    def count(feed: str, predicate: Callable[[dict[str, str]], bool]) -> int:
        return sum(1 for row in read(out / f"{feed}_{day}.csv") if predicate(row))

    def reported(feed: str, kind: str) -> int:
        return report.defects[f"{feed}_{day}.csv"][kind]

    assert count("orders", lambda r: r["customer_id"].endswith(".0")) == reported(
        "orders", "float_id"
    )
    assert count("orders", lambda r: r["order_id"] == "") == reported("orders", "null_key")
    assert count("events", lambda r: r["event_at"].startswith("2099")) == reported(
        "events", "future_date"
    )
    assert count("events", lambda r: r["event_type"] in {"view", "PAGE_VIEW"}) == reported(
        "events", "view_alias"
    )
    assert count("shipping", lambda r: r["status"] not in {
        "label_created", "in_transit", "delivered", "lost", "returned",
    }) == reported("shipping", "unknown_status")
    assert count("customers", lambda r: not re.fullmatch(
        r"[a-z]+\.[a-z]+\d+@example\.com", r["email"]
    )) == reported("customers", "bad_email")
    assert count("products", lambda r: float(r["retail_price"]) <= 0) == reported(
        "products", "non_positive_price"
    )


def test_removing_defects_gives_back_the_clean_data(
    clean: tuple[Path, GenerateReport], defective: tuple[Path, GenerateReport]
) -> None:
    # Quarantined kinds sit on extra rows and normalised kinds undo cleanly, so the clean rows
    # are all still there and the surplus is exactly the quarantined and duplicated rows.
    clean_out, _ = clean
    out, report = defective
    for feed in HEADERS:
        name = f"{feed}_{DATES[0]}.csv"
        kinds = report.defects[name]
        clean_rows, rows = lines(clean_out / name)[1:], lines(out / name)[1:]
        if "truncated_last_line" in kinds:
            # The cut row is the clean file's last row, which defects never displace.
            assert clean_rows[-1].startswith(rows[-1]) and clean_rows[-1] != rows[-1]
            clean_rows, rows = clean_rows[:-1], rows[:-1]
        expected = Counter(clean_rows)
        got = Counter(_normalised(line) for line in rows)
        assert not expected - got, name
        surplus = sum((got - expected).values())
        assert surplus == sum(n for k, n in kinds.items() if k not in NORMALISED_KINDS | FILE_KINDS)


def _normalised(line: str) -> str:
    fields = [re.sub(r"^(\d+)\.0$", r"\1", f) for f in line.split(",")]
    return ",".join("page_view" if f in {"view", "PAGE_VIEW"} else f for f in fields)


def test_files_load_with_pyarrow(clean: tuple[Path, GenerateReport]) -> None:
    out, report = clean
    for written in report.files:
        table = pcsv.read_csv(out / written.name)
        assert table.num_rows == written.rows


def test_progress_reports_every_file(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    generate(tmp_path, days=1, scale=0.001, progress=lambda *call: calls.append(call))
    assert calls[-1][1:] == (9, 9)
    assert [done for _, done, _ in calls] == list(range(10))


@pytest.mark.parametrize(
    "arguments",
    [{"days": 0}, {"scale": 0.0}, {"defect_rate": 1.5}, {"defect_rate": -0.1}, {"seed": -1}],
)
def test_rejects_impossible_arguments(tmp_path: Path, arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, **arguments)  # type: ignore[arg-type]
