"""A real public export (a TheLook eCommerce subset) loads through a YAML-only contract overlay.

Every expected number is computed here from the CSV files with the `csv` module, independently of
the pipeline: rows, exact duplicates, rows whose references cannot resolve, and the daily revenue.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.landing.ledger import Ledger
from shoplake.pipeline import FileOutcome, RunReport, run
from shoplake.tables import query_table

pytestmark = pytest.mark.integration

THELOOK = Path(__file__).parent / "fixtures" / "thelook"
DATA = THELOOK / "data"
CONTRACTS = THELOOK / "contracts"
FILES = {
    "users.csv": "customers",
    "orders.csv": "orders",
    "order_items.csv": "order_items",
    "products.csv": "products",
    "distribution_centers.csv": "distribution_centers",
}
# The files carry no date in their name, so the business date is the (UTC) day they arrive; their
# modification time is pinned to another day, which must not count.
MTIME_DATE = date(2026, 1, 5)
CENT = Decimal("0.01")
# The overlay's references in the files' own terms: file -> (column, parent file, parent column).
REFERENCES = {
    "products.csv": [("distribution_center_id", "distribution_centers.csv", "id")],
    "orders.csv": [("user_id", "users.csv", "id")],
    "order_items.csv": [("order_id", "orders.csv", "order_id"), ("product_id", "products.csv", "id"),
                        ("user_id", "users.csv", "id")],
}


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    report: RunReport

    def outcome(self, file: str) -> FileOutcome:
        matches = [f for b in self.report.batches for f in b.files if f.file == file]
        assert len(matches) == 1, f"{file}: expected one outcome, found {matches}"
        return matches[0]

    def silver(self, feed: str) -> list[dict[str, object]]:
        """Silver rows by contract column name (a silver row starts with the contract's columns)."""
        columns = load_contracts([CONTRACTS])[feed].column_names
        return [dict(zip(columns, row, strict=False)) for row in query_table(self.settings, "silver", feed)]

    @property
    def arrival_day(self) -> date:
        """The UTC day shoplake first saw the files (the ledger's `detected_at`)."""
        ledger = Ledger(self.settings.state_db_url)
        try:
            days = {r["detected_at"].date() for r in ledger.files_where()}
        finally:
            ledger.close()
        assert len(days) == 1, days
        return days.pop()

    def rule_failures(self, feed: str) -> dict[str, int]:
        failures: dict[str, int] = defaultdict(int)
        for batch in self.report.batches:
            for rule, rows in batch.rule_failures.get(feed, {}).items():
                failures[rule] += rows
        return dict(failures)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    root = tmp_path_factory.mktemp("thelook")
    landing = root / "landing"
    landing.mkdir()
    mtime = datetime(MTIME_DATE.year, MTIME_DATE.month, MTIME_DATE.day, 12, tzinfo=UTC).timestamp()
    for name in FILES:
        target = landing / name
        shutil.copyfile(DATA / name, target)
        os.utime(target, (mtime, mtime))
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive", contracts=[CONTRACTS])
    return Loaded(settings, run(settings))


# -- the expected numbers, from the files alone ---------------------------------------------------

@cache
def rows(name: str) -> tuple[dict[str, str], ...]:
    with (DATA / name).open(newline="", encoding="utf-8") as handle:
        return tuple(csv.DictReader(handle))


@cache
def distinct(name: str) -> tuple[dict[str, str], ...]:
    """One row per distinct content, in the order first seen."""
    seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for row in rows(name):
        seen.setdefault(tuple(row.items()), row)
    return tuple(seen.values())


@cache
def valid(name: str) -> tuple[dict[str, str], ...]:
    """Distinct rows whose references resolve against their parents' valid rows."""
    keys = [(column, {row[key] for row in valid(parent)}) for column, parent, key in REFERENCES.get(name, [])]
    return tuple(row for row in distinct(name) if all(row[column] in known for column, known in keys))


def cents(text: str) -> Decimal:
    """What the contract's decimal(18, 2) cast makes of a price: rounded to cents, half away from zero."""
    return Decimal(text).quantize(CENT, rounding=ROUND_HALF_UP)


def day(text: str) -> date:
    return datetime.strptime(text.removesuffix(" UTC"), "%Y-%m-%d %H:%M:%S.%f").date()


def expected_sales() -> list[dict[str, object]]:
    """The sales (items whose order is not cancelled) with what the marts need: TheLook's prices are US dollars,
    the reporting currency (the orders carry no currency), and its products have one version each."""
    orders = {row["order_id"]: row for row in valid("orders.csv")}
    products = {row["id"]: row for row in valid("products.csv")}
    sales = []
    for item in valid("order_items.csv"):
        order = orders[item["order_id"]]
        if order["status"].lower() == "cancelled":
            continue
        product = products[item["product_id"]]
        sales.append({"order_id": order["order_id"], "product_id": int(item["product_id"]),
                      "order_date": day(order["created_at"]), "category": product["category"],
                      "revenue": cents(item["sale_price"]), "cost": cents(product["cost"]),
                      "is_returned": item["status"].lower() == "returned"})
    return sales


def expected_measures(*key: str) -> dict[tuple[object, ...], dict[str, object]]:
    """DESIGN.md's measures per `key` (README, KPI definitions)."""
    groups: dict[tuple[object, ...], list[dict[str, object]]] = defaultdict(list)
    for sale in expected_sales():
        groups[tuple(sale[k] for k in key)].append(sale)
    measures = {}
    for group, sales in groups.items():
        orders = {s["order_id"] for s in sales}
        gross = sum((s["revenue"] for s in sales), Decimal(0))
        returned = sum((s["revenue"] for s in sales if s["is_returned"]), Decimal(0))
        kept_cost = sum((s["cost"] for s in sales if not s["is_returned"]), Decimal(0))
        measures[group] = {
            "orders": len(orders), "items": len(sales), "gross_revenue": gross, "returned_revenue": returned,
            "net_revenue": gross - returned, "margin": gross - returned - kept_cost,
            "average_order_value": float(gross) / len(orders),
            "return_rate": len({s["order_id"] for s in sales if s["is_returned"]}) / len(orders)}
    return measures


# -- the tests ------------------------------------------------------------------------------------

def test_the_run_loads_all_five_files_in_one_batch(loaded: Loaded) -> None:
    assert not loaded.report.failed, [b.error for b in loaded.report.batches]
    assert loaded.report.unrecognised == []
    assert loaded.report.skipped_duplicates == []
    assert [b.business_date for b in loaded.report.batches] == [loaded.arrival_day]
    assert loaded.arrival_day != MTIME_DATE
    assert {f.file: f.feed for b in loaded.report.batches for f in b.files} == FILES


@pytest.mark.parametrize("name", FILES)
def test_every_file_reconciles_against_its_own_rows(loaded: Loaded, name: str) -> None:
    outcome = loaded.outcome(name)
    assert outcome.rows_read == len(rows(name))
    assert outcome.rows_duplicate == len(rows(name)) - len(distinct(name))
    assert outcome.rows_quarantined == len(distinct(name)) - len(valid(name))
    assert outcome.rows_loaded == len(valid(name))
    assert outcome.rows_loaded + outcome.rows_quarantined + outcome.rows_duplicate == outcome.rows_read


def test_the_subset_is_half_duplicates_as_its_readme_says() -> None:
    duplicates = {name: len(rows(name)) - len(distinct(name)) for name in FILES}
    assert duplicates == {"users.csv": 355, "orders.csv": 505, "order_items.csv": 493, "products.csv": 499,
                          "distribution_centers.csv": 0}


@pytest.mark.parametrize("name", FILES)
def test_every_file_is_archived_unchanged_to_processed(loaded: Loaded, name: str) -> None:
    outcome = loaded.outcome(name)
    target = loaded.settings.archive_dir / "processed" / loaded.arrival_day.isoformat() / name
    assert outcome.archived_to == str(target)
    assert target.read_bytes() == (DATA / name).read_bytes()
    assert not (loaded.settings.landing / name).exists()


@pytest.mark.parametrize("feed", FILES.values())
def test_no_value_fails_its_type(loaded: Loaded, feed: str) -> None:
    # Timestamps read `2025-09-12 02:16:00.000000 UTC`; a failed parse would show as created_at.type.
    assert [rule for rule in loaded.rule_failures(feed) if rule.endswith(".type")] == []


def test_timestamps_with_a_utc_suffix_keep_their_time(loaded: Loaded) -> None:
    created = {row["order_id"]: row["created_at"] for row in loaded.silver("orders")}
    expected = {int(row["order_id"]): datetime.strptime(row["created_at"], "%Y-%m-%d %H:%M:%S.%f UTC")
                for row in valid("orders.csv")}
    assert created == expected


def test_silver_order_items_hold_one_row_per_item(loaded: Loaded) -> None:
    items = loaded.silver("order_items")
    assert len(items) == len({row["id"] for row in valid("order_items.csv")})
    assert {row["order_item_id"] for row in items} == {int(row["id"]) for row in valid("order_items.csv")}


def test_customers_keep_postal_codes_as_text_and_read_the_text_null_as_null(loaded: Loaded) -> None:
    customers = {row["customer_id"]: row for row in loaded.silver("customers")}
    assert len(customers) == len(valid("users.csv"))
    for row in valid("users.csv"):
        customer = customers[int(row["id"])]
        assert customer["postal_code"] == row["postal_code"]
        assert customer["city"] == (None if row["city"] == "null" else row["city"])


@pytest.mark.parametrize(("model", "key", "ratios"), [
    ("agg_daily_sales", ("order_date",), True),
    ("agg_category_daily", ("order_date", "category"), True),
    ("agg_product_performance", ("product_id",), False),
])
def test_gold_sales_marts_match_a_plain_python_computation(loaded: Loaded, model: str, key: tuple[str, ...],
                                                           ratios: bool) -> None:
    rows = DeltaTable(str(loaded.settings.lake / "gold" / model)).to_pyarrow_table().to_pylist()
    assert rows, f"gold.{model} was not built"
    actual = {tuple(row[k] for k in key): row for row in rows}
    expected = expected_measures(*key)
    assert sorted(actual, key=repr) == sorted(expected, key=repr)
    exact = ("orders", "items", "gross_revenue", "net_revenue", "margin")
    for group, want in expected.items():
        got = actual[group]
        assert {c: got[c] for c in exact} == {c: want[c] for c in exact}, group
        if ratios:
            assert got["returned_revenue"] == want["returned_revenue"] and got["sales_without_rate"] == 0, group
            assert got["average_order_value"] == pytest.approx(want["average_order_value"]), group
            assert got["return_rate"] == pytest.approx(want["return_rate"]), group
    assert any(w["margin"] != w["net_revenue"] for w in expected.values()), "costs are subtracted"


def test_gold_fact_sales_is_in_dollars_at_rate_one(loaded: Loaded) -> None:
    facts = DeltaTable(str(loaded.settings.lake / "gold" / "fact_sales")).to_pyarrow_table().to_pylist()
    assert len(facts) == len(expected_sales())
    assert {(f["currency"], f["fx_rate"], f["has_fx_rate"]) for f in facts} == {("USD", Decimal(1), True)}
    assert all(f["revenue"] == f["sale_price"] and f["product_key"] and f["customer_key"] for f in facts)
