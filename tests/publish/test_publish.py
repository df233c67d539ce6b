"""`shoplake publish` into a real PostgreSQL server: the star schema with keys, foreign keys, indexes and
comments; the same version twice changes nothing; a batch republishes only its partitions; a failed
table keeps its previous rows and the next publish retries it; seed-style schemas; the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from deltalake import DeltaTable
from typer.testing import CliRunner

from shoplake.cli import app
from shoplake.config import Publish, Settings
from shoplake.engines import postgres_io
from shoplake.generate import generate
from shoplake.pipeline import run
from shoplake.publish import PublishFailed, PublishReport, publish
from tests.pg import PASSWORD

pytestmark = pytest.mark.postgres

DAY1, DAY2 = "2026_01_05", "2026_01_06"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A lake holding the first generated day (the second waits in `days` for the incremental test)."""
    base = tmp_path_factory.mktemp("publish")
    generate(base / "days", days=2, scale=0.002, defect_rate=0.05, seed=31)
    (base / "landing").mkdir()
    for path in (base / "days").glob(f"*_{DAY1}.*"):
        shutil.copy(path, base / "landing" / path.name)
    settings = Settings(landing=base / "landing", lake=base / "lake", archive=base / "archive")
    assert run(settings).batches[0].status == "succeeded"
    return settings


@pytest.fixture(scope="module")
def warehouse(postgres: Any) -> str:
    return str(postgres.new_database("warehouse"))


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        cursor = conn.execute(sql, params)
        return [tuple(r) for r in cursor.fetchall()] if cursor.description else []


def delta_rows(settings: Settings, layer: str, name: str) -> list[tuple[Any, ...]]:
    table = DeltaTable(f"{settings.tables_root}/{layer}/{name}").to_pyarrow_table()
    return sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def pg_rows(url: str, schema: str, name: str) -> list[tuple[Any, ...]]:
    return sorted(query(url, f'SELECT * FROM "{schema}"."{name}"'), key=repr)


def row_versions(url: str, name: str) -> set[tuple[str, str]]:
    """Every row's physical place and creating transaction: unchanged only if the row was not rewritten."""
    return set(query(url, f'SELECT ctid::text, xmin::text FROM warehouse."{name}"'))


def actions(report: PublishReport) -> dict[str, str]:
    return {t.table: t.action for t in report.tables}


@pytest.fixture(scope="module")
def first(lake: Settings, warehouse: str) -> PublishReport:
    return publish(lake, to=warehouse)


GOLD = ["dim_customer", "dim_product", "dim_date", "dim_status", "fact_sales", "fact_shipments", "fact_sessions",
        "agg_daily_sales", "agg_sales_measures", "agg_customer_metrics", "agg_inventory_health"]


def test_the_first_publish_copies_every_gold_table_whole(lake: Settings, warehouse: str,
                                                         first: PublishReport) -> None:
    assert set(actions(first).values()) == {"created"}
    for name in GOLD:
        assert pg_rows(warehouse, "warehouse", name) == delta_rows(lake, "gold", name), f"warehouse.{name} differs"


def test_keys_foreign_keys_indexes_and_comments_come_from_the_headers_and_contracts(
        warehouse: str, first: PublishReport) -> None:
    constraints = dict(query(warehouse, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                        "WHERE connamespace = 'warehouse'::regnamespace"))
    assert constraints["dim_customer_key"] == "PRIMARY KEY (customer_key)"
    assert constraints["fact_sales_key"] == "PRIMARY KEY (order_item_id)"
    # A mart's day level has no category: its key holds NULLs, so it is unique with NULLs equal.
    assert constraints["agg_sales_measures_key"] == \
        "UNIQUE NULLS NOT DISTINCT (level, order_date, category, product_id)"
    assert constraints["fact_sales_customer_key_fkey"].startswith(
        "FOREIGN KEY (customer_key) REFERENCES warehouse.dim_customer(customer_key) DEFERRABLE")
    assert constraints["fact_sales_product_key_fkey"].startswith(
        "FOREIGN KEY (product_key) REFERENCES warehouse.dim_product(product_key)")
    indexes = {r[0] for r in query(warehouse, "SELECT indexdef FROM pg_indexes WHERE tablename = 'fact_sales'")}
    assert "CREATE INDEX fact_sales_order_date_idx ON warehouse.fact_sales USING btree (order_date)" in indexes
    assert "CREATE INDEX fact_sales_customer_key_idx ON warehouse.fact_sales USING btree (customer_key)" in indexes
    table_comment = query(warehouse, "SELECT obj_description('warehouse.fact_sales'::regclass, 'pg_class')")[0][0]
    assert table_comment.startswith("The sales every revenue KPI is computed from")
    notes = dict(query(warehouse, "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                                  "WHERE a.attrelid = 'warehouse.fact_sales'::regclass AND a.attnum > 0"))
    assert notes["order_item_id"].startswith("key of fact_sales")
    assert "references customers.customer_id" in notes["customer_id"]  # from the order contract's column


def test_publishing_the_same_versions_again_changes_nothing(lake: Settings, warehouse: str,
                                                           first: PublishReport) -> None:
    before = {name: row_versions(warehouse, name) for name in GOLD}
    again = publish(lake, to=warehouse)
    assert set(actions(again).values()) == {"unchanged"} and again.rows_copied == 0
    assert {name: row_versions(warehouse, name) for name in GOLD} == before


def test_a_batch_publishes_after_its_audit_and_replaces_only_the_partitions_it_changed(
        lake: Settings, warehouse: str, first: PublishReport) -> None:
    before = row_versions(warehouse, "fact_sales")
    days = Path(str(lake.landing)).parent / "days"
    for path in days.glob(f"*_{DAY2}.*"):
        shutil.copy(path, Path(str(lake.landing)) / path.name)
    published = lake.model_copy(update={"publish": Publish(url=warehouse)})
    assert run(published).batches[0].status == "succeeded"
    for name in GOLD:
        assert pg_rows(warehouse, "warehouse", name) == delta_rows(lake, "gold", name), f"warehouse.{name} differs"
    state = dict(query(warehouse, "SELECT target_table, delta_version FROM shoplake.publish_state"))
    assert state["fact_sales"] == DeltaTable(f"{lake.tables_root}/gold/fact_sales").version()
    after = row_versions(warehouse, "fact_sales")
    kept, total = len(before & after), len(after)
    assert 0 < kept < total, "the unchanged days' rows stay, the new day's rows are new"
    report = publish(lake, to=warehouse)  # what the hook did is now the published state
    assert actions(report)["fact_sales"] == "unchanged"


def test_a_failed_table_keeps_its_rows_and_the_next_publish_retries_it(
        lake: Settings, warehouse: str, first: PublishReport, monkeypatch: pytest.MonkeyPatch) -> None:
    query(warehouse, "DELETE FROM shoplake.publish_state WHERE target_table = 'fact_sales'")  # republish it whole
    before = row_versions(warehouse, "fact_sales")
    real = postgres_io.csv_chunks

    def broken(*args: Any, **kwargs: Any) -> Iterator[tuple[bytes, int]]:
        chunks = real(*args, **kwargs)
        yield next(chunks)
        raise OSError("the network went away")

    monkeypatch.setattr(postgres_io, "csv_chunks", broken)
    failed = r"publishing gold\.fact_sales to warehouse\.fact_sales failed: the network went away"
    with pytest.raises(PublishFailed, match=failed):
        publish(lake, to=warehouse)
    monkeypatch.setattr(postgres_io, "csv_chunks", real)
    assert row_versions(warehouse, "fact_sales") == before, "the failed publish left the table as it was"
    retried = publish(lake, to=warehouse)
    assert actions(retried)["fact_sales"] == "replaced"
    assert pg_rows(warehouse, "warehouse", "fact_sales") == delta_rows(lake, "gold", "fact_sales")


def test_seed_style_schemas_and_the_cli(lake: Settings, postgres: Any, tmp_path: Path) -> None:
    target = postgres.new_database("seed")
    config = tmp_path / "shoplake.yml"
    config.write_text(yaml.safe_dump({"landing": str(lake.landing), "lake": str(lake.lake),
                                      "archive": str(lake.archive_dir),
                                      "publish": {"url": target, "seed_schemas": True}}))
    runner = CliRunner()
    result = runner.invoke(app, ["publish", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "warehouse.fact_sales" in result.output
    for layer, schema in (("silver", "production"), ("bronze", "staging")):
        for feed in ("orders", "customers"):
            assert pg_rows(target, schema, feed) == delta_rows(lake, layer, feed), f"{schema}.{feed} differs"
    keys = dict(query(target, "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                              "WHERE contype = 'p' AND connamespace = 'production'::regnamespace"))
    assert keys["production.orders"] == "PRIMARY KEY (order_id)"  # upserted by key
    assert "production.customers" not in keys  # SCD2: several versions per key
    with_password = runner.invoke(app, ["publish", "--config", str(config), "--to",
                                        "postgresql://shoplake:hunter2@127.0.0.1/x"])
    assert with_password.exit_code == 2 and "PGPASSWORD" in with_password.output
    assert "hunter2" not in with_password.output
    nowhere = runner.invoke(app, ["publish", "--lake", str(lake.lake)])
    assert nowhere.exit_code == 2 and "nothing to publish to" in nowhere.output


def test_without_a_password_in_the_environment_the_connection_fails_with_a_hint(
        lake: Settings, warehouse: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    with pytest.raises(PublishFailed, match="cannot connect") as failed:
        publish(lake, to=warehouse)
    assert "PGPASSWORD or ~/.pgpass" in str(failed.value)
    (tmp_path / "pgpass").write_text(f"*:*:*:*:{PASSWORD}\n")
    (tmp_path / "pgpass").chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "pgpass"))
    assert set(actions(publish(lake, to=warehouse)).values()) == {"unchanged"}
