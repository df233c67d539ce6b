"""The SQL the Spark engine emits for queries written once in DuckDB's dialect (no JVM needed)."""

from __future__ import annotations

from pathlib import Path

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.layers.checks import plan_checks
from shoplake.layers.gold import load_models


def spark_sql(query: object) -> str:
    from shoplake.engines.spark_engine import render as to_spark

    return to_spark(query)  # type: ignore[arg-type]


def test_checks_render_as_spark_sql() -> None:
    sql = spark_sql(plan_checks(load_contracts()["order_items"], drifted_files=[], existing_keys=False).query)
    assert "FILTER(ARRAY(" in sql and "x -> NOT x IS NULL" in sql  # the failed-rule list
    assert "TRY_CAST(`__t_sale_price` AS DECIMAL(18, 2))" in sql
    assert "CAST(TRY_CAST(`__t_created_at` AS TIMESTAMP) AS TIMESTAMP_NTZ)" in sql  # offsets to UTC, then NTZ
    assert "ANTI JOIN" in sql and "SEMI JOIN" in sql
    assert '"' not in sql.replace('\\"', ""), "identifiers are backquoted, never double-quoted"


def test_schema_qualified_tables_become_views() -> None:
    fact_sales = next(m for m in load_models() if m.name == "fact_sales")
    sql = spark_sql(fact_sales.query)
    assert "FROM `silver__order_items`" in sql and "silver." not in sql


def test_local_days_and_surrogate_keys_render_alike_on_spark() -> None:
    models = {m.name: m for m in load_models()}
    fact_sales = spark_sql(models["fact_sales"].query)
    # DuckDB: naive UTC -> TIMESTAMPTZ -> the zone's wall clock; Spark (session zone UTC): the same shift.
    assert "CAST(FROM_UTC_TIMESTAMP((FROM_UTC_TIMESTAMP(o.created_at, 'UTC')), s.timezone) AS DATE)" in fact_sales
    dim_product = spark_sql(models["dim_product"].query)
    # md5 of the id and valid_from with microseconds, the text strftime gives on DuckDB
    assert "DATE_FORMAT(_valid_from, 'yyyy-MM-dd HH:mm:ss.SSSSSS')" in dim_product


def test_a_lake_on_object_storage_keeps_its_uri_and_local_scratch() -> None:
    settings = Settings(lake="s3a://bucket/lake/", engine="spark")
    assert settings.tables_root == "s3a://bucket/lake"
    assert settings.scratch == Path(".shoplake")
    assert Settings(landing="s3://b/shop/landing").archive_dir == "s3://b/shop/archive"
    assert Settings(landing="drops").archive_dir == Path("archive")


def test_a_cte_read_twice_is_computed_once_and_one_read_once_stays_inlined() -> None:
    from sqlglot import exp, parse_one

    from shoplake.engines.spark_ctes import split_shared_ctes

    query = parse_one("WITH base AS (SELECT 1 AS x), once AS (SELECT x FROM base), twice AS (SELECT x FROM once) "
                      "SELECT * FROM twice AS a JOIN twice AS b ON a.x = b.x", read="duckdb")
    kept: dict[str, str] = {}
    split = split_shared_ctes(query, lambda name, q: kept.update({name: q.sql(dialect="duckdb")}))
    [(name, body)] = kept.items()
    assert name.endswith("_twice")
    assert body.startswith("WITH base AS") and "once AS" in body, "it carries the CTEs it reads"
    assert split.args.get("with_") is None, "what only the kept CTE read is read by nothing now"
    tables = [(t.name, t.alias) for t in split.find_all(exp.Table) if t.find_ancestor(exp.CTE) is None]
    assert tables == [(name, "a"), (name, "b")]
    assert "twice AS" in query.sql(dialect="duckdb"), "the caller's query is left as it was"
    alone = parse_one("WITH once AS (SELECT 1 AS x) SELECT * FROM once", read="duckdb")
    assert split_shared_ctes(alone, lambda name, q: kept.update({name: ""})).sql() == alone.sql()
    assert len(kept) == 1, "a CTE read once stays inlined"
