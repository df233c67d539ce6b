"""The customer, funnel, inventory and delivery marts are the same tables on DuckDB and on Spark.

Two small generated days (signed-in events without session ids, negative stock, shipments) in a shop time
zone ahead of UTC, loaded once per engine; every one of these gold tables is compared whole, row for row.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.pipeline import run
from tests.models.test_funnel_marts import read_table

pytestmark = [pytest.mark.integration, pytest.mark.spark]

MARTS = ("fact_sessions", "agg_funnel_daily", "agg_customer_metrics", "agg_inventory_health", "fact_shipments",
         "agg_delivery_sla")


def rows(settings: Settings, name: str) -> list[tuple[Any, ...]]:
    """A table's rows in a stable order; floats to 9 significant digits (the engines sum in other orders)."""
    def cell(value: Any) -> Any:
        return float(f"{value:.9g}") if isinstance(value, float) else value

    table = read_table(settings, "gold", name)
    return sorted((tuple(cell(v) for v in r.values()) for r in table), key=repr)


def columns(settings: Settings, name: str) -> list[str]:
    return list(read_table(settings, "gold", name)[0])


def test_marts_are_equal_on_both_engines(tmp_path: Path) -> None:
    source = tmp_path / "generated"
    generate(source, days=2, scale=0.0005, defect_rate=0.02, seed=3)
    lakes = {}
    for engine in ("duckdb", "spark"):
        landing = tmp_path / engine / "landing"
        shutil.copytree(source, landing)
        settings = Settings(landing=landing, lake=tmp_path / engine / "lake", archive=tmp_path / engine / "archive",
                            engine=engine, timezone="Asia/Tokyo")
        report = run(settings)
        assert [b.status for b in report.batches] == ["succeeded"] * 2, [b.error for b in report.batches]
        lakes[engine] = settings
    for name in MARTS:
        duck, spark = lakes["duckdb"], lakes["spark"]
        assert columns(duck, name) == columns(spark, name), name
        duck_rows = rows(duck, name)
        assert duck_rows, f"{name} has rows"
        assert duck_rows == rows(spark, name), name
