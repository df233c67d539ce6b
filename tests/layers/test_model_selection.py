"""`gold_models` builds the named models and the models they read, nothing else; an unknown name is a
configuration error that touches no data."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.errors import ModelError
from shoplake.layers import gold
from shoplake.pipeline import run
from tests.conftest import copy_fixture


def test_a_selected_model_is_built_with_the_models_it_reads(workspace: Settings) -> None:
    every = {m.name: m for m in gold.load_models()}
    workspace.gold_models = ["agg_daily_sales"]
    wanted = {"agg_daily_sales"}
    while True:  # the closure, computed here from the model headers
        more = {d for name in wanted for d in every[name].depends_on} - wanted
        if not more:
            break
        wanted |= more
    assert wanted != set(every), "the test needs a model that does not read every other one"
    copy_fixture("mini", workspace.landing)
    report = run(workspace)
    assert [b.status for b in report.batches] == ["succeeded"]
    built = {p.name for p in (Path(workspace.tables_root) / "gold").iterdir()}
    assert built == set(report.gold)
    assert "agg_daily_sales" in built and built <= wanted


def test_no_model_builds_no_gold(workspace: Settings) -> None:
    workspace.gold_models = []
    copy_fixture("mini", workspace.landing)
    report = run(workspace)
    assert [b.status for b in report.batches] == ["succeeded"]
    assert not (Path(workspace.tables_root) / "gold").exists()
    assert (Path(workspace.tables_root) / "silver" / "orders").is_dir()


def test_an_unknown_model_is_a_configuration_error_before_any_data(workspace: Settings) -> None:
    workspace.gold_models = ["agg_daily_sales", "agg_nothing"]
    copy_fixture("mini", workspace.landing)
    with pytest.raises(ModelError, match="agg_nothing") as raised:
        run(workspace)
    assert "agg_daily_sales" in str(raised.value.hint)
    assert not list(Path(workspace.lake).rglob("_delta_log")), "no table was written"
    assert sorted(p.name for p in workspace.landing.iterdir()) == sorted(
        p.name for p in (Path(__file__).parents[1] / "fixtures" / "mini").iterdir() if p.suffix in (".csv", ".json"))
