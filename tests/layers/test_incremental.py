"""Incremental gold: a partitioned model's table after each batch equals a full rebuild of the same silver,
a load batch computes only the partitions it touched (and no model whose inputs it did not change), and
it rewrites only the partitions whose rows changed (a late file, an order moving day, a product's cost, a
reprocessed file), in one commit; nothing changed, no commit; a failed batch takes it back."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.engines import open_engine
from shoplake.errors import BatchFailed
from shoplake.generate import generate
from shoplake.layers import gold, silver
from shoplake.layers.selection import select_models
from shoplake.pipeline import run
from shoplake.reprocess import reprocess
from tests.conftest import FIXTURES, copy_fixture

MODELS = FIXTURES / "incremental_models"
INCREMENTAL = ("inc_sales", "inc_sales_as_of", "inc_daily")
TABLES = (*INCREMENTAL, "inc_daily_full")
ORDERS = "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
ITEMS = "order_item_id,order_id,product_id,status,sale_price,created_at,updated_at\n"
PRODUCTS = "product_id,sku,name,brand,department,category,subcategory,cost,retail_price,updated_at\n"


def rows(path: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """A Delta table's columns and its rows, sorted: a whole-table value to compare."""
    table = DeltaTable(path).to_pyarrow_table()
    return table.column_names, sorted((tuple(r.values()) for r in table.to_pylist()), key=repr)


def full_rebuild(settings: Settings, where: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every model built whole from the lake's silver into another folder, as its tables' values."""
    engine = open_engine(settings.engine, temp_dir=where / "spill")
    try:
        contracts = load_contracts(settings.contracts)
        models = select_models(gold.load_models(settings.models, contracts=contracts), settings.gold_models)
        available = silver.attach_silver(engine, contracts, settings.tables_root)
        built = gold.run_models(engine, models, str(where), available, parameters=settings.model_parameters(),
                                full=True)
    finally:
        engine.close()
    assert all(v is None for v in built.rewritten.values()), "a forced rebuild writes every table whole"
    return {name: rows(gold.gold_path(str(where), name)) for name in built.built}


def assert_equals_full_rebuild(settings: Settings, where: Path, names: tuple[str, ...] | None = None, *,
                               last: bool = True) -> None:
    """Every (or each named) gold table equals a full rebuild of the lake's silver. On Spark, whose runs
    take a minute each, only after the last batch of a test (`last`): the partitions each batch rewrote
    are still checked batch by batch."""
    if settings.engine == "spark" and not last:
        return
    expected = full_rebuild(settings, where)
    for name in names or tuple(expected):
        assert rows(gold.gold_path(settings.tables_root, name)) == expected[name], f"gold.{name} after a batch"


def version(settings: Settings, name: str) -> int:
    return int(DeltaTable(gold.gold_path(settings.tables_root, name)).version())


def last_commit_partitions(settings: Settings, name: str, column: str = "order_date") -> tuple[set[str], set[str]]:
    """The partitions the table's latest commit removed files from and added files to."""
    path = Path(gold.gold_path(settings.tables_root, name))
    log = path / "_delta_log" / f"{version(settings, name):020d}.json"
    removed: set[str] = set()
    added: set[str] = set()
    for line in log.read_text().splitlines():
        action = json.loads(line)
        for kind, into in (("remove", removed), ("add", added)):
            if kind in action:
                into.add(action[kind]["partitionValues"][column])
    return removed, added


def partitions(settings: Settings, name: str) -> set[str]:
    table = DeltaTable(gold.gold_path(settings.tables_root, name)).to_pyarrow_table(columns=["order_date"])
    return {str(value) for value in table.column("order_date").to_pylist()}


@pytest.fixture
def gold_runs(monkeypatch: pytest.MonkeyPatch) -> list[gold.GoldRun]:
    """What each batch's gold step reported (the partitions it computed per model), newest last; not the
    full rebuilds the tests compare with (no batch tag)."""
    runs: list[gold.GoldRun] = []
    real = gold.run_models

    def recording(*args: Any, **kwargs: Any) -> gold.GoldRun:
        result = real(*args, **kwargs)
        if kwargs.get("tag") is not None:
            runs.append(result)
        return result

    monkeypatch.setattr(gold, "run_models", recording)
    return runs


def computed(runs: list[gold.GoldRun], *names: str) -> dict[str, set[str] | None]:
    """The partitions the last gold step computed of each named model (None: all of it)."""
    last = runs[-1].recomputed
    return {n: None if last[n] is None else set(last[n] or []) for n in names}


def drop(settings: Settings, name: str, text: str) -> None:
    (settings.landing / name).write_text(text)


def assert_one_succeeded(report: Any) -> None:
    assert [b.status for b in report.batches] == ["succeeded"], [b.error for b in report.batches]


@pytest.mark.builds_gold
def test_batches_rewrite_only_the_partitions_they_change(on_engine: Settings, tmp_path: Path,
                                                        gold_runs: list[gold.GoldRun]) -> None:
    settings = on_engine
    settings.models = [MODELS]
    settings.gold_models = list(TABLES)  # the test's own models, not the built-in ones beside them
    copy_fixture("mini", settings.landing)
    assert_one_succeeded(run(settings))  # every mini sale is on 2026-01-05
    assert computed(gold_runs, *TABLES) == dict.fromkeys(TABLES), "new tables are computed whole"
    assert DeltaTable(gold.gold_path(settings.tables_root, "inc_sales")).metadata().partition_columns == [
        "order_date"]
    assert_equals_full_rebuild(settings, tmp_path / "r1", TABLES, last=False)

    # Order 100 (items 1000, 1001) moves from the 5th to the 4th; a new order 105 on the 6th.
    drop(settings, "orders_2026_01_06.csv", ORDERS + "100,1,delivered,2,40.00,USD,2026-01-04 09:00:00,"
         "2026-01-06 10:00:00\n105,1,delivered,1,30.00,USD,2026-01-06 08:00:00,2026-01-06 08:00:00\n")
    drop(settings, "order_items_2026_01_06.csv", ITEMS + "1005,105,10,delivered,30.00,2026-01-06 08:00:00,"
         "2026-01-06 08:00:00\n")
    assert_one_succeeded(run(settings))
    assert_equals_full_rebuild(settings, tmp_path / "r2", TABLES, last=False)
    for name in ("inc_sales", "inc_daily"):
        assert last_commit_partitions(settings, name) == ({"2026-01-05"}, {"2026-01-04", "2026-01-05", "2026-01-06"})
    # Computed: the day order 100 left, the day it moved to, and the new order's day; kind: full whole.
    moved = {"2026-01-04", "2026-01-05", "2026-01-06"}
    assert computed(gold_runs, *TABLES) == {"inc_sales": moved, "inc_sales_as_of": moved, "inc_daily": moved,
                                            "inc_daily_full": None}

    # A late file for an earlier day: order 106 on the 3rd.
    drop(settings, "orders_2026_01_03.csv", ORDERS + "106,3,delivered,1,25.00,USD,2026-01-03 12:00:00,"
         "2026-01-03 12:00:00\n")
    drop(settings, "order_items_2026_01_03.csv", ITEMS + "1006,106,10,delivered,25.00,2026-01-03 12:00:00,"
         "2026-01-03 12:00:00\n")
    full_before = version(settings, "inc_daily_full")
    assert_one_succeeded(run(settings))
    assert_equals_full_rebuild(settings, tmp_path / "r3", TABLES, last=False)
    assert last_commit_partitions(settings, "inc_sales") == (set(), {"2026-01-03"})
    assert computed(gold_runs, *INCREMENTAL) == {key: {"2026-01-03"} for key in INCREMENTAL}, "the late day alone"
    # kind: full rewrites the whole table each batch, in one commit.
    assert version(settings, "inc_daily_full") == full_before + 1
    assert last_commit_partitions(settings, "inc_daily_full") == (
        {"2026-01-04", "2026-01-05", "2026-01-06"}, {"2026-01-03", "2026-01-04", "2026-01-05", "2026-01-06"})

    # Product 12 (items 1001 on the 4th, 1003 on the 5th) costs more from the 7th: its current cost changes
    # those days' sales; the cost an order had when placed (SCD2 history) does not change, so no commit.
    as_of_before = version(settings, "inc_sales_as_of")
    drop(settings, "products_2026_01_07.csv", PRODUCTS + "12,ab-3,Hat,Acme,Women,Accessories,Hats,6.00,15.00,"
         "2026-01-07 00:00:00\n")
    assert_one_succeeded(run(settings))
    assert_equals_full_rebuild(settings, tmp_path / "r4", TABLES, last=False)
    assert last_commit_partitions(settings, "inc_sales") == ({"2026-01-04", "2026-01-05"}, {"2026-01-04", "2026-01-05"})
    assert version(settings, "inc_sales_as_of") == as_of_before
    # The product's sales days are computed again; the point-in-time model sees that no sale's version
    # changed (the new version starts after every order) and is not computed at all.
    assert computed(gold_runs, *INCREMENTAL) == {"inc_sales": {"2026-01-04", "2026-01-05"}, "inc_sales_as_of": set(),
                                                 "inc_daily": {"2026-01-04", "2026-01-05"}}

    # A late product version (cost 5.50 from the 5th, 10:00) splits the first one: the sale at 11:00 on the
    # 5th now had that cost, the one on the 4th still the first version's. The current cost is unchanged.
    sales_before = version(settings, "inc_sales")
    drop(settings, "products_2026_01_04.csv", PRODUCTS + "12,ab-3,Hat,Acme,Women,Accessories,Hats,5.50,15.00,"
         "2026-01-05 10:00:00\n")
    assert_one_succeeded(run(settings))
    assert_equals_full_rebuild(settings, tmp_path / "r4b", TABLES, last=False)
    assert computed(gold_runs, *TABLES) == {"inc_sales": set(), "inc_sales_as_of": {"2026-01-05"}, "inc_daily": set(),
                                            "inc_daily_full": set()}, "models of unchanged inputs are not computed"
    assert last_commit_partitions(settings, "inc_sales_as_of") == ({"2026-01-05"}, {"2026-01-05"})
    assert version(settings, "inc_sales") == sales_before

    # Reprocessing the file that moved order 100: its rows are deleted and loaded again, the same values.
    before = {name: version(settings, name) for name in INCREMENTAL}
    assert_one_succeeded(reprocess(settings, file="orders_2026_01_06.csv"))
    assert_equals_full_rebuild(settings, tmp_path / "r5", TABLES)
    assert {name: version(settings, name) for name in INCREMENTAL} == before, "no row changed: no commit"
    assert computed(gold_runs, *TABLES) == dict.fromkeys(TABLES), "a reprocess computes every model whole"


def test_a_failed_batch_takes_its_partition_overwrites_back(workspace: Settings, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    workspace.models = [MODELS]
    copy_fixture("mini", workspace.landing)
    assert_one_succeeded(run(workspace))
    before = {name: rows(gold.gold_path(workspace.tables_root, name)) for name in TABLES}

    def fail_after_gold(point: str) -> None:
        if point == "after_gold":
            raise BatchFailed("stopped after gold (test)")

    monkeypatch.setattr("shoplake.stages.crash_point", fail_after_gold)
    drop(workspace, "orders_2026_01_06.csv", ORDERS + "100,1,delivered,2,40.00,USD,2026-01-04 09:00:00,"
         "2026-01-06 10:00:00\n")
    failed = run(workspace)
    assert [b.status for b in failed.batches] == ["failed"]
    assert last_commit_partitions(workspace, "inc_sales")[1] == {"2026-01-05"}, "the restore is the last commit"
    assert {name: rows(gold.gold_path(workspace.tables_root, name)) for name in TABLES} == before


SALES_MODELS = ("fact_sales", "agg_daily_sales", "agg_category_daily")
DAILY_SALES = (*SALES_MODELS, "agg_sales_measures")


def partitioned_builtins(folder: Path) -> Path:
    """The built-in sales models, each with `partition: order_date` unless it declares it already."""
    folder.mkdir()
    for name in SALES_MODELS:
        model = gold.builtin_models_dir() / f"{name}.sql"
        text = model.read_text()
        header = [line for line in text.splitlines() if line.startswith("--")]
        if not any(line.startswith("-- partition:") for line in header):
            text = text.replace("\n-- key:", "\n-- partition: order_date\n-- key:", 1)
        (folder / model.name).write_text(text)
    return folder


@pytest.mark.integration
def test_generated_days_with_a_late_day_equal_a_full_rebuild(workspace: Settings, tmp_path: Path,
                                                              gold_runs: list[gold.GoldRun]) -> None:
    source = tmp_path / "generated"
    generate(source, days=3, scale=0.002, defect_rate=0.02, seed=7)
    workspace.models = [partitioned_builtins(tmp_path / "models")]
    days = [date(2026, 1, 5), date(2026, 1, 7), date(2026, 1, 6)]  # the 6th arrives last
    for i, day in enumerate(days):
        for path in source.glob(f"*_{day:%Y_%m_%d}.*"):
            shutil.copy(path, workspace.landing / path.name)
        before = {} if i == 0 else {n: rows(gold.gold_path(workspace.tables_root, n)) for n in ("fact_sales",)}
        assert_one_succeeded(run(workspace))
        assert_equals_full_rebuild(workspace, tmp_path / f"rebuild{i}")
        recomputed = gold_runs[-1].recomputed
        if i == 0:
            assert set(recomputed.values()) == {None}, "a new lake computes every model whole"
            continue
        # A day's orders are created that day: the sales models compute that day alone, the late one too.
        assert {m: recomputed[m] for m in DAILY_SALES} == {key: [f"{day}"] for key in DAILY_SALES}
        assert recomputed["dim_status"] == [], "a model whose inputs did not change is not computed"
        assert recomputed["fact_sessions"] is not None, "sessions are cut per day: computed by day"
        assert recomputed["agg_inventory_health"] is None, "kind: full"
    # The late day: only the days whose sales differ from before were rewritten, not every day.
    after = rows(gold.gold_path(workspace.tables_root, "fact_sales"))
    position = after[0].index("order_date")
    changed = {str(r[position]) for r in set(before["fact_sales"][1]) ^ set(after[1])}
    removed, added = last_commit_partitions(workspace, "fact_sales")
    assert "2026-01-06" in changed
    assert added | removed == changed
    assert changed < partitions(workspace, "fact_sales")


def test_a_changed_time_zone_or_an_edited_model_is_computed_whole_once(workspace: Settings, tmp_path: Path,
                                                                     gold_runs: list[gold.GoldRun]) -> None:
    settings = workspace
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    settings.models = [models]
    copy_fixture("mini", settings.landing)
    assert_one_succeeded(run(settings))
    drop(settings, "orders_2026_01_06.csv", ORDERS + "105,1,delivered,1,30.00,USD,2026-01-06 23:30:00,"
         "2026-01-06 23:30:00\n")
    drop(settings, "order_items_2026_01_06.csv", ITEMS + "1005,105,10,delivered,30.00,2026-01-06 23:30:00,"
         "2026-01-06 23:30:00\n")
    assert_one_succeeded(run(settings))
    assert computed(gold_runs, "inc_sales") == {"inc_sales": {"2026-01-06"}}, "the same settings: one day"

    # A new time zone moves every day's sales: the next batch, whatever it touches, recomputes them all.
    settings.timezone = "Asia/Tokyo"
    drop(settings, "orders_2026_01_07.csv", ORDERS + "106,1,delivered,1,20.00,USD,2026-01-07 08:00:00,"
         "2026-01-07 08:00:00\n")
    drop(settings, "order_items_2026_01_07.csv", ITEMS + "1006,106,10,delivered,20.00,2026-01-07 08:00:00,"
         "2026-01-07 08:00:00\n")
    assert_one_succeeded(run(settings))
    assert computed(gold_runs, *INCREMENTAL) == dict.fromkeys(INCREMENTAL)
    assert_equals_full_rebuild(settings, tmp_path / "r1", TABLES)

    # An edited model body (same columns) is computed whole by the next batch too; the others are not.
    daily = models / "inc_daily.sql"
    daily.write_text(daily.read_text().replace("select * from final", "select * from final where true"))
    drop(settings, "orders_2026_01_08.csv", ORDERS + "107,1,delivered,1,10.00,USD,2026-01-08 08:00:00,"
         "2026-01-08 08:00:00\n")
    drop(settings, "order_items_2026_01_08.csv", ITEMS + "1007,107,10,delivered,10.00,2026-01-08 08:00:00,"
         "2026-01-08 08:00:00\n")
    assert_one_succeeded(run(settings))
    assert computed(gold_runs, "inc_daily", "inc_sales") == {"inc_daily": None, "inc_sales": {"2026-01-08"}}
    assert_equals_full_rebuild(settings, tmp_path / "r2", TABLES)
