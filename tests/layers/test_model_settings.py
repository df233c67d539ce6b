"""Models read the shop's settings as the one row of `shoplake.settings`, and nothing else of that schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.errors import ModelError
from shoplake.layers.gold import check_columns, load_models, parse_model
from shoplake.pipeline import run
from shoplake.tables import query_table
from tests.conftest import copy_fixture

SETTINGS_MODEL = """-- name: shop_settings
-- kind: kpi
with s as (
  select reporting_currency, timezone, vip_share, new_days from shoplake.settings
),
final as (
  select * from s
)
select * from final
"""


def test_a_model_reads_the_settings_of_its_run(workspace: Settings, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "shop_settings.sql").write_text(SETTINGS_MODEL)
    workspace.models = [models]
    workspace.reporting_currency = "EUR"
    workspace.kpis.vip_share = 0.1
    copy_fixture("mini", workspace.landing)
    run(workspace)
    rows = query_table(workspace, "gold", "shop_settings")
    assert rows == [("EUR", "UTC", 0.1, 30)]
    assert isinstance(rows[0][2], float)  # a DOUBLE, not the DECIMAL its literal would parse as


@pytest.mark.parametrize(("text", "problem"), [
    ("select * from shoplake.batches", "the shoplake schema holds shoplake.settings only"),
    ("select s.nope from shoplake.settings as s", "reads column 'nope' of shoplake.settings, which is not a setting"),
    ("select nope from shoplake.settings", "reads column 'nope' of shoplake.settings, which is not a setting"),
])
def test_other_tables_and_columns_of_the_shoplake_schema_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ModelError, match=problem):
        check_columns([*load_models(), parse_model(text, "m.sql")], load_contracts())


def test_settings_are_not_a_silver_input() -> None:
    model = check_columns([*load_models(), parse_model(
        "with o as (select order_id from silver.orders), s as (select vip_share from shoplake.settings) "
        "select * from o cross join s", "m.sql")], load_contracts())[-1]
    assert model.sources == {"orders"}
    assert model.reads == (("orders", "order_id"),)
