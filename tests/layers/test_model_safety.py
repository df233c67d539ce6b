"""A gold model reads lake tables and its own CTEs only: never a file, a table function or a setting.

The hostile models are real leaks: the first test runs one on DuckDB to show it reads a file on disk,
then shows load_models refuses it. The legitimate shapes (nested CTEs, recursion, set operations,
series, unnest, values) still load, and DuckDB resolves their CTE names as CTEs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot

from shoplake.contracts.expressions import DIALECT
from shoplake.engines import open_engine
from shoplake.errors import ModelError
from shoplake.layers.gold import load_models, parse_model

SHADOWED = (  # the outer FROM reads the file; the CTE of the same name only exists in the inner scope
    'select * from "{csv}" union all '
    'select * from (with "{csv}" as (select \'cte\' as secret) select * from "{csv}")'
)


def write_model(folder: Path, text: str, name: str = "leaky") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.sql").write_text(text)
    return folder


def refused(tmp_path: Path, text: str) -> str:
    folder = write_model(tmp_path / "models", text)
    with pytest.raises(ModelError) as caught:
        load_models([folder])
    message = str(caught.value)
    assert str(folder / "leaky.sql") in message
    assert "\n" not in message, f"one line expected, got {message!r}"
    return message


def test_a_cte_in_an_inner_scope_does_not_hide_a_file_read_outside_it(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("secret\nfrom-disk\n")
    text = SHADOWED.format(csv=secret)
    engine = open_engine("duckdb", temp_dir=tmp_path / "tmp")
    try:  # the leak is real: DuckDB reads the file for the outer reference
        rows = engine.fetch(sqlglot.parse_one(text, read=DIALECT))
    finally:
        engine.close()
    assert ("from-disk",) in rows
    message = refused(tmp_path, text)
    assert f'"{secret}"' in message and "nor a CTE" in message


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("with x as (select 1 as a) select * from 'data.csv' where exists "
         "(with \"data.csv\" as (select 1) select * from \"data.csv\")", '"data.csv"'),
        ("select * from gold.fact_sales where order_id in (select order_id from '/tmp/o.parquet')",
         '"/tmp/o.parquet"'),
        ("select (select count(*) from '/etc/x.csv') as n", '"/etc/x.csv"'),
        ("with a as (select * from b), b as (select 1 as x) select * from a", "'b'"),
        ("select * from silver.orders as o join lateral (select * from o) as l on true", "'o'"),
        ("select * from silver.orders positional join 'other.csv'", '"other.csv"'),
        ("select * from orders", "'orders'"),
    ],
)
def test_a_table_that_is_not_a_lake_table_or_a_visible_cte_is_refused(
        tmp_path: Path, text: str, offending: str) -> None:
    message = refused(tmp_path, text)
    assert offending in message and "nor a CTE" in message


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("select * from read_csv('/etc/passwd')", "read_csv()"),
        ("SELECT * FROM READ_CSV_AUTO('/etc/passwd')", "read_csv_auto()"),
        ("select * from \"Read_Parquet\"('/x.parquet')", "read_parquet()"),
        ("select * from silver.orders, lateral (select * from read_text('/etc/passwd'))", "read_text()"),
        ("select * from silver.orders where exists (select 1 from glob('/etc/*'))", "glob()"),
        ("select * from query('select 42')", "query()"),
        ("select * from query_table('x')", "query_table()"),
        ("with t as (select * from sniff_csv('/etc/passwd')) select * from t", "sniff_csv()"),
        ("select * from duckdb_settings()", "duckdb_settings()"),
        ("select * from silver.orders union all select * from parquet_scan('/x')", "parquet_scan()"),
        ("select * from json_each('{\"a\": 1}')", "JSON_EACH"),
        ("select * from gold.fact_sales, (select * from my_macro(1)) as m", "MY_MACRO(1)"),
    ],
)
def test_table_functions_are_refused_in_every_scope(tmp_path: Path, text: str, offending: str) -> None:
    message = refused(tmp_path, text)
    assert offending in message
    # A function that reads files or settings says so; any other table function is refused as one.
    reader = offending not in ("JSON_EACH", "MY_MACRO(1)")
    assert ("reads files or settings" in message) is reader
    assert ("table function" in message) is not reader


@pytest.mark.parametrize(
    ("text", "offending"),
    [
        ("select current_setting('home_directory') as home", "current_setting()"),
        ("select getvariable('x') as v", "getvariable()"),
        ("select order_id from gold.fact_sales where order_id > (select max(x) from "
         "(select length(read_text('/etc/passwd')) as x))", "read_text()"),
        ("select * from gold.fact_sales where order_id = ?", "parameter"),
        ("select * from gold.fact_sales where order_id = $1", "parameter"),
    ],
)
def test_setting_readers_and_parameters_are_refused_anywhere(tmp_path: Path, text: str, offending: str) -> None:
    assert offending in refused(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("select * from bronze.orders", "bronze and quarantine are not attached"),
        ("select * from quarantine.orders", "bronze and quarantine are not attached"),
        ("select * from main.valid__orders", "'main.valid__orders'"),
        ("select * from lake.silver.orders", "'lake.silver.orders'"),
        ('select * from silver."../orders.csv"', "lower_snake_case"),
    ],
)
def test_only_the_schemas_the_runner_attaches_are_read(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("select 1 as x /*", "cannot parse"),
        ("select " + "(" * 3000 + "1" + ")" * 3000 + " as x", "nested too deeply"),
    ],
)
def test_unparseable_models_are_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    message = refused(tmp_path, text)
    assert expected in message and len(message) < 400


LEGITIMATE = [
    # A CTE of the outer query is visible inside subqueries, derived tables and set operations.
    ("with sales as (select * from gold.fact_sales), days as (select order_date from sales) "
     "select * from days where order_date in (select order_date from sales) "
     "union all select order_date from (select * from sales)", {"fact_sales"}, set()),
    # Names are case-insensitive in DuckDB, quoted or not.
    ('with "Sales" as (select * from gold.fact_sales) select * from sales', {"fact_sales"}, set()),
    ("with recursive n as (select 1 as i union all select i + 1 from n where i < 3) select * from n", set(), set()),
    ("select * from silver.customers_history join silver.Orders using (customer_id)", set(),
     {"customers_history", "orders"}),
    ("select * from generate_series(date '2026-01-01', date '2026-01-31', interval 1 day) as d(day)", set(), set()),
    ("select unnest(range(3)) as i", set(), set()),
    ("select * from (values (1, 'a'), (2, 'b')) as v(id, name)", set(), set()),
    # A CTE may carry any name; where it is visible, DuckDB reads it and not a file of that name.
    ('with "Data.csv" as (select 1 as a) select * from (select * from "data.csv")', set(), set()),
]


@pytest.mark.parametrize(("text", "depends", "sources"), LEGITIMATE)
def test_legitimate_models_load(text: str, depends: set[str], sources: set[str]) -> None:
    model = parse_model(text, "ok.sql")
    assert (model.depends_on, model.sources) == (depends, sources)


@pytest.mark.parametrize("text", [text for text, depends, sources in LEGITIMATE if not depends | sources])
def test_duckdb_resolves_the_ctes_of_a_legitimate_model_as_ctes(tmp_path: Path, text: str) -> None:
    engine = open_engine("duckdb", temp_dir=tmp_path / "tmp")
    try:
        assert engine.fetch(parse_model(text, "ok.sql").query)
    finally:
        engine.close()


def test_the_builtin_models_still_load() -> None:
    names = {model.name for model in load_models()}
    assert {"fact_sales", "agg_daily_sales", "agg_category_daily"} <= names
