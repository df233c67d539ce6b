from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.errors import ModelError
from shoplake.layers.gold import load_models, parse_model


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.sql").write_text(text)
    return folder


def test_builtin_models_run_after_what_they_read() -> None:
    models = {m.name: m for m in load_models()}
    order = list(models)
    for dimension in ("dim_product", "dim_customer", "dim_status"):
        assert order.index(dimension) < order.index("fact_sales")
    assert order.index("fact_sales") < order.index("agg_sales_measures") < order.index("agg_daily_sales")
    assert order.index("agg_sales_measures") < order.index("agg_category_daily")
    # The measures are computed once; the marts select a level of them.
    for mart in ("agg_daily_sales", "agg_category_daily"):
        assert models[mart].depends_on == {"agg_sales_measures"} and models[mart].partition == "order_date"
    assert models["agg_daily_sales"].key == ("order_date",)
    assert models["agg_product_performance"].depends_on == {"agg_sales_measures", "dim_product"}
    assert models["fact_sales"].optional == {"fx_rates"}, "a one-currency shop sends no rates"


def test_a_project_model_is_ordered_by_what_it_reads(tmp_path: Path) -> None:
    folder = write(tmp_path / "models", "b_top_days", "-- name: top_days\n-- key: order_date\n"
                   "with d as (select * from gold.agg_daily_sales) select * from d order by gross_revenue desc limit 5")
    order = [m.name for m in load_models([folder])]
    assert order.index("agg_daily_sales") < order.index("top_days")


def test_header_fields_are_read() -> None:
    model = parse_model("-- name: m\n-- grain: one row per day\n-- key: a, b\nselect 1 as a, 2 as b", "m.sql")
    assert (model.name, model.grain, model.key) == ("m", "one row per day", ("a", "b"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("select 1; select 2", "exactly one SELECT"),
        ("delete from silver.orders", "exactly one SELECT"),
        ("select * from orders", "neither silver.<feed>, gold.<model> nor a CTE"),
        ("select * from gold.nowhere", "reads unknown model(s) gold.nowhere"),
        ("select from where", "cannot parse"),
    ],
)
def test_model_mistakes_are_reported_with_the_file(tmp_path: Path, text: str, problem: str) -> None:
    folder = write(tmp_path / "models", "broken", text)
    with pytest.raises(ModelError) as caught:
        load_models([folder])
    assert problem in str(caught.value)
    assert "broken" in str(caught.value)


def test_models_that_read_each_other_in_a_cycle_are_rejected(tmp_path: Path) -> None:
    folder = write(tmp_path / "models", "x", "select * from gold.y")
    write(folder, "y", "select * from gold.x")
    with pytest.raises(ModelError, match="cycle"):
        load_models([folder])
