"""The Spark engine against the DuckDB engine: same files in, the same tables out, row for row."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.pipeline import RunReport, run

pytestmark = [pytest.mark.spark, pytest.mark.integration]

VARYING = {"_batch_id", "_ingested_at"}  # differ between any two runs, on any engine
TABLES = [(layer, feed) for layer in ("bronze", "silver", "quarantine")
          for feed in ("customers", "products", "orders", "order_items", "inventory", "shipping", "events",
                       "fx_rates")]
TABLES += [("gold", name) for name in ("dim_date", "dim_status", "dim_product", "dim_customer", "fact_sales",
                                       "agg_sales_measures", "agg_daily_sales", "agg_category_daily",
                                       "agg_product_performance", "fact_sessions", "agg_funnel_daily",
                                       "agg_customer_metrics", "agg_inventory_health", "fact_shipments",
                                       "agg_delivery_sla")]


def normal(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, list):
        return tuple(normal(v) for v in value)
    if isinstance(value, (datetime, date, str, int, bool)) or value is None:
        return value
    raise TypeError(type(value))


def rows(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    table = DeltaTable(str(path)).to_pyarrow_table()
    names = sorted(n for n in table.column_names if n not in VARYING)
    data = table.select(names).to_pylist()
    return names, sorted((tuple(normal(r[n]) for n in names) for r in data), key=repr)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, RunReport], dict[str, Path]]:
    base = tmp_path_factory.mktemp("parity")
    report = generate(base / "generated", days=2, scale=0.002, defect_rate=0.05, seed=11)
    assert report.defects, "the generator injected defects"
    reports, lakes = {}, {}
    for engine in ("duckdb", "spark"):
        landing = base / engine / "landing"
        shutil.copytree(base / "generated", landing)
        # A zone east of UTC: late-evening orders fall on the next local day, some without a rate.
        settings = Settings(landing=landing, lake=base / engine / "lake", archive=base / engine / "archive",
                            engine=engine, timezone="Europe/Berlin")
        reports[engine] = run(settings)
        lakes[engine] = settings.lake
    return reports, lakes


def test_both_engines_count_every_file_alike(both: tuple[dict[str, RunReport], dict[str, Path]]) -> None:
    reports, _ = both
    def counts(report: RunReport) -> list[tuple[Any, ...]]:
        return sorted((f.file, f.status, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)
                      for b in report.batches for f in b.files)
    assert counts(reports["spark"]) == counts(reports["duckdb"])
    assert all(b.status == "succeeded" for b in reports["spark"].batches)
    assert {feed: dict(r) for b in reports["spark"].batches for feed, r in b.rule_failures.items()} == {
        feed: dict(r) for b in reports["duckdb"].batches for feed, r in b.rule_failures.items()}


@pytest.mark.parametrize(("layer", "name"), TABLES, ids=[f"{layer}.{name}" for layer, name in TABLES])
def test_tables_are_identical(both: tuple[dict[str, RunReport], dict[str, Path]], layer: str, name: str) -> None:
    _, lakes = both
    duck_columns, duck_rows = rows(lakes["duckdb"] / layer / name)
    spark_columns, spark_rows = rows(lakes["spark"] / layer / name)
    assert spark_columns == duck_columns
    assert len(spark_rows) == len(duck_rows)
    assert spark_rows == duck_rows
