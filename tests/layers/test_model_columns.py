"""Gold models are checked against the contracts when they load: every column a model reads from
`silver.<feed>` must be one the feed's silver table holds, and a model whose feed has no data yet is
reported as skipped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplake import api
from shoplake.cli import app
from shoplake.config import Settings
from shoplake.contracts import ContractSet, load_contracts
from shoplake.errors import ModelError
from shoplake.layers.gold import Model, check_columns, load_models, parse_model, silver_inputs
from tests.conftest import FIXTURES

README = Path(__file__).parents[2] / "README.md"
ORDERS = "contracts/pack/orders.yml"


@pytest.fixture(scope="module")
def contracts() -> ContractSet:
    return load_contracts()


def checked(text: str, contracts: ContractSet) -> Model:
    """The model `text` (as m.sql) checked after the built-in models."""
    return check_columns([*load_models(), parse_model(text, "m.sql")], contracts)[-1]


def refused(text: str, contracts: ContractSet) -> str:
    with pytest.raises(ModelError) as caught:
        checked(text, contracts)
    return str(caught.value)


def test_the_builtin_models_read_columns_the_builtin_contracts_provide(contracts: ContractSet) -> None:
    models = {m.name: m for m in load_models(contracts=contracts)}
    assert set(models["fact_sales"].reads) == {
        ("order_items", c) for c in ("order_item_id", "order_id", "product_id", "status", "sale_price")} | {
        ("orders", c) for c in ("order_id", "customer_id", "status", "currency", "created_at")} | {
        ("fx_rates", c) for c in ("rate_date", "currency", "rate")}
    # fact_sales takes the product's attributes from the version valid when the order was placed.
    assert {c for t, c in models["dim_product"].reads if t == "products_history"} >= {
        "product_id", "department", "category", "subcategory", "brand", "cost", "_valid_from", "_valid_to"}


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("select coupon_code from silver.orders", "coupon_code"),  # unqualified, one source
        ("select o.coupon_code from silver.orders as o", "coupon_code"),  # qualified by its alias
        ("with o as (select order_id, coupon_code from silver.orders) select * from o", "coupon_code"),
        ("select order_id from silver.orders where coupon_code is not null", "coupon_code"),
        # unqualified among several sources whose columns are all known: DuckDB's binder would fail
        ("select o.order_id, coupon_code from silver.orders as o join (select 1 as one) as t on true",
         "coupon_code"),
        # an upsert feed has no validity period
        ("select order_id, _valid_from from silver.orders", "_valid_from"),
    ],
)
def test_a_column_no_contract_provides_is_an_error_naming_model_column_and_contract(
        contracts: ContractSet, text: str, column: str) -> None:
    message = refused(text, contracts)
    first = message.splitlines()[0]
    assert first.startswith("model m.sql: ")
    assert f"column {column!r} of silver.orders" in first
    assert ORDERS in first


def test_an_unqualified_column_none_of_several_silver_tables_has_names_them_all(contracts: ContractSet) -> None:
    message = refused("select o.order_id, coupon_code from silver.orders as o "
                      "join silver.order_items as i using (order_id)", contracts)
    first = message.splitlines()[0]
    assert "reads column 'coupon_code', which none of silver.order_items, silver.orders provides" in first
    assert ORDERS in first and "contracts/pack/order_items.yml" in first


def test_contract_columns_derived_columns_lineage_and_scd2_period_are_provided(contracts: ContractSet) -> None:
    model = checked("select c.customer_id, c.age, c._valid_from, c._valid_to, c._is_current, c._batch_id, "
                    "h._valid_from as since from silver.customers as c join silver.customers_history as h "
                    "using (customer_id)", contracts)
    assert ("customers", "age") in model.reads  # derived in the customers contract
    assert ("customers_history", "_valid_from") in model.reads


def test_a_silver_table_without_a_contract_is_an_error(contracts: ContractSet) -> None:
    message = refused("select * from silver.coupons", contracts)
    assert "silver.coupons" in message and "no contract defines feed 'coupons'" in message
    # only SCD2 feeds have a history view
    assert "no contract defines feed 'orders_history'" in refused("select * from silver.orders_history", contracts)


def test_a_column_of_a_cte_or_gold_model_is_not_judged_against_silver(contracts: ContractSet) -> None:
    model = checked("with s as (select order_id, 1 as extra from silver.orders) "
                    "select s.extra, f.is_returned from s join gold.fact_sales as f using (order_id)", contracts)
    assert set(model.reads) == {("orders", "order_id")}


def test_an_overlay_contract_without_a_column_a_builtin_model_reads_is_refused(tmp_path: Path) -> None:
    overlay = tmp_path / "contracts"
    overlay.mkdir()
    text = (Path(load_contracts()["products"].source)).read_text()
    # the overlay's export calls it sub_category
    (overlay / "products.yml").write_text(re.sub(r"\bsubcategory\b", "sub_category", text))
    with pytest.raises(ModelError) as caught:
        load_models(contracts=load_contracts([overlay]))
    message = str(caught.value)
    assert "dim_product.sql" in message and "'subcategory'" in message and str(overlay / "products.yml") in message


def render_inputs(models: list[Model]) -> str:
    rows = ["| silver table | columns the built-in models read | read by |", "|---|---|---|"]
    for table, columns in sorted(silver_inputs(models).items()):
        readers = sorted({m for names in columns.values() for m in names})
        rows.append(f"| `silver.{table}` | {', '.join(f'`{c}`' for c in columns)} | {', '.join(readers)} |")
    return "\n".join(rows)


def test_the_readme_lists_the_silver_columns_the_builtin_models_read(contracts: ContractSet) -> None:
    text = README.read_text(encoding="utf-8")
    listed = re.search(r"<!-- model-inputs:[^\n]*-->\n(.*?)\n<!-- /model-inputs -->", text, re.DOTALL)
    assert listed is not None, "README lost its table of model inputs"
    assert listed.group(1) == render_inputs(load_models(contracts=contracts))


def test_models_whose_feed_has_no_data_yet_are_reported_as_skipped(workspace: Settings) -> None:
    assert isinstance(workspace.landing, Path)
    for name in ("orders_2026_01_05.csv", "customers_2026_01_05.csv"):  # no order items, no products
        (workspace.landing / name).write_bytes((FIXTURES / "mini" / name).read_bytes())
    report = api.run(workspace)
    assert {"dim_status", "dim_customer"} <= set(report.gold), "models whose inputs are there are built"
    sales = ("dim_product", "fact_sales", "agg_sales_measures", "agg_daily_sales", "agg_category_daily",
             "agg_product_performance", "dim_date")
    assert {m: report.gold_skipped.get(m) for m in sales} == {
        "dim_product": "silver.products_history has no data yet",
        # fx_rates has no data either, but fact_sales reads it as optional
        "fact_sales": "silver.order_items has no data yet",
        "agg_sales_measures": "gold.fact_sales was skipped",
        "agg_daily_sales": "gold.agg_sales_measures was skipped",
        "agg_category_daily": "gold.agg_sales_measures was skipped",
        "agg_product_performance": "gold.agg_sales_measures, gold.dim_product was skipped",
        "dim_date": "gold.fact_sales was skipped",
    }


def test_the_run_summary_shows_skipped_models(workspace: Settings) -> None:
    assert isinstance(workspace.landing, Path)
    name = "customers_2026_01_05.csv"
    (workspace.landing / name).write_bytes((FIXTURES / "mini" / name).read_bytes())
    result = CliRunner().invoke(app, ["run", "--landing", str(workspace.landing), "--lake", str(workspace.lake),
                                      "--archive", str(workspace.archive)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("gold skipped:")]
    assert len(lines) == 1, result.output
    assert "fact_sales (silver.order_items, silver.orders has no data yet)" in lines[0]
    assert "agg_daily_sales (gold.agg_sales_measures was skipped)" in lines[0]
