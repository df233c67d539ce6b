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


def expected_daily_sales() -> dict[date, tuple[int, int, Decimal]]:
    """(orders, items, gross revenue) per order date; a sale is an item whose order is not cancelled."""
    orders = {row["order_id"]: row for row in valid("orders.csv")}
    order_ids: dict[date, set[str]] = defaultdict(set)
    items: dict[date, int] = defaultdict(int)
    gross: dict[date, Decimal] = defaultdict(Decimal)
    for item in valid("order_items.csv"):
        order = orders[item["order_id"]]
        if order["status"].lower() == "cancelled":
            continue
        ordered_on = day(order["created_at"])
        order_ids[ordered_on].add(order["order_id"])
        items[ordered_on] += 1
        gross[ordered_on] += cents(item["sale_price"])
    return {d: (len(order_ids[d]), items[d], gross[d]) for d in order_ids}


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


def test_gold_daily_sales_matches_a_plain_python_computation(loaded: Loaded) -> None:
    gold = query_table(loaded.settings, "gold", "agg_daily_sales")
    assert gold, "gold.agg_daily_sales was not built"
    # select * order of agg_daily_sales: order_date, orders, items, gross_revenue, ...
    actual = {row[0]: (row[1], row[2], row[3]) for row in gold}
    expected = expected_daily_sales()
    assert actual == expected
    assert sum(gross for _, _, gross in actual.values()) == sum(gross for _, _, gross in expected.values())
