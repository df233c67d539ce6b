"""Checks as SQL assertions: the built-in and generated checks pass on generated data and find what they
claim to find; check files (SQL and YAML) load, and a bad one is a configuration error naming file and line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlglot import exp

from shoplake.config import Settings, load_settings
from shoplake.contracts import load_contracts
from shoplake.engines import Engine, open_engine
from shoplake.errors import ConfigError
from shoplake.generate import generate
from shoplake.landing.ledger import Ledger
from shoplake.layers.gold import load_models, parse_model
from shoplake.pipeline import RunReport, run
from shoplake.quality.audit import check_lake, load_suite
from shoplake.quality.checks import CheckError, load_folder, pack_dir, parse_check_file, parse_check_list
from shoplake.quality.generated import key_not_null, key_unique, nullable_keys, one_current_version
from shoplake.quality.history import report_key, results_history
from shoplake.quality.runner import SAMPLES, judge, run_check


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, RunReport]:
    """Two generated days with defects (quarantined rows, duplicates, orphans), loaded by the pipeline."""
    root = tmp_path_factory.mktemp("generated")
    generate(root / "landing", days=2, scale=0.002, defect_rate=0.05, seed=11)
    settings = Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive")
    return settings, run(settings)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    started = open_engine("duckdb", temp_dir=tmp_path_factory.mktemp("engine"))
    yield started
    started.close()


def test_every_builtin_check_passes_on_generated_data(generated: tuple[Settings, RunReport]) -> None:
    settings, report = generated
    assert [b.status for b in report.batches] == ["succeeded", "succeeded"]
    found = check_lake(settings)
    names = {r.name for r in found.run.results}
    pack = {p.stem for p in pack_dir().glob("*.sql")}
    assert pack <= names, found.run.skipped  # every feed has data: no built-in check is skipped
    assert {"fact_sales_key_unique", "agg_sales_measures_key_not_null", "customers_one_current_version",
            "products_one_current_version"} <= names
    failed = [(r.name, r.failing_rows, r.samples[:1]) for r in found.run.results if not r.passed]
    assert failed == []
    assert found.run.skipped == {}


def test_each_batch_was_audited_and_its_results_stored(generated: tuple[Settings, RunReport]) -> None:
    settings, report = generated
    ledger = Ledger(settings.state_db_url)
    try:
        stored = results_history(ledger, batches=10)
    finally:
        ledger.close()
    assert {r.batch_id for r in stored} == {b.batch_id for b in report.batches}
    assert all(r.passed for r in stored)
    for batch in report.batches:
        path = Path(settings.archive_dir) / report_key(batch.batch_id)
        written = json.loads(path.read_text())
        assert (written["batch_id"], written["business_date"], written["status"]) == (
            batch.batch_id, batch.business_date.isoformat(), "passed")
        assert written["checks_run"] == len([r for r in stored if r.batch_id == batch.batch_id]) > 20


def test_reconciliation_counts_the_batchs_own_files(generated: tuple[Settings, RunReport]) -> None:
    """The files check reads every loaded file: a generated day has duplicates and quarantined rows."""
    settings, report = generated
    files = [f for b in report.batches for f in b.files]
    assert any(f.rows_duplicate for f in files) and any(f.rows_quarantined for f in files)
    found = {r.name: r for r in check_lake(settings).run.results}
    assert found["files_reconcile"].passed and found["quarantine_rate"].passed


def test_the_generated_key_check_finds_repeated_keys(engine: Engine) -> None:
    model = parse_model("-- key: order_date, category\nselect 1 as x from silver.orders", "m.sql")
    engine.create_table("dupes", exp.select("*").from_(exp.values(
        [(exp.Literal.string("2026-01-05"), exp.Literal.string("a")),
         (exp.Literal.string("2026-01-05"), exp.Literal.string("a")),
         (exp.Literal.string("2026-01-05"), exp.null()),
         (exp.Literal.string("2026-01-06"), exp.Literal.string("a"))],
        alias="t", columns=["order_date", "category"])))
    engine.create_view("gold", "m", "dupes")
    unique = run_check(engine, key_unique(model))
    assert (unique.passed, unique.failing_rows) == (False, 1)
    assert unique.samples == ({"order_date": "2026-01-05", "category": "a", "_rows": "2"},)
    not_null = key_not_null(model)
    assert not_null is not None
    nulls = run_check(engine, not_null)
    assert (nulls.passed, nulls.failing_rows, nulls.samples) == (False, 1, ({"order_date": "2026-01-05",
                                                                             "category": None},))


def test_grouping_levels_leave_their_key_parts_out_of_not_null() -> None:
    [measures] = [m for m in load_models() if m.name == "agg_sales_measures"]
    assert nullable_keys(measures) == {"category", "product_id"}
    check = key_not_null(measures)
    assert check is not None and "order_date" in check.sql and "category" not in check.sql


def test_the_scd2_check_finds_keys_without_exactly_one_current_version(engine: Engine) -> None:
    engine.create_table("versions", exp.select("*").from_(exp.values(
        [(exp.convert(1), exp.true()), (exp.convert(1), exp.false()),  # fine
         (exp.convert(2), exp.true()), (exp.convert(2), exp.true()),  # two current
         (exp.convert(3), exp.false())],  # none current
        alias="t", columns=["customer_id", "_is_current"])))
    engine.create_view("silver", "customers_history", "versions")
    strict = run_check(engine, one_current_version("customers", ("customer_id",), deletes=False, source="c"))
    assert sorted(s["customer_id"] or "" for s in strict.samples) == ["2", "3"]
    lenient = run_check(engine, one_current_version("customers", ("customer_id",), deletes=True, source="c"))
    assert [s["customer_id"] for s in lenient.samples] == ["2"]


def test_samples_stop_at_twenty_and_the_count_does_not(engine: Engine) -> None:
    check = parse_check_file("-- severity: warn\nselect * from range(100) as t(n)", "many.sql")
    result = run_check(engine, check)
    assert (result.failing_rows, len(result.samples)) == (100, SAMPLES)


def test_a_check_whose_sql_fails_is_reported_failing_with_the_message(engine: Engine) -> None:
    engine.create_table("orders_t", exp.select(exp.alias_(exp.convert(1), "order_id")))
    engine.create_view("silver", "orders", "orders_t")
    check = parse_check_file("-- severity: warn\nselect no_such_column from silver.orders", "broken.sql")
    result = run_check(engine, check)
    assert (result.passed, result.failing_rows) == (False, 0)
    assert "no_such_column" in result.description and "no_such_column" in result.samples[0]["error"]


def test_a_yaml_list_of_checks_loads_with_its_lines(tmp_path: Path) -> None:
    text = ("- name: big_orders\n  severity: warn\n  description: orders above 1000\n"
            "  sql: select order_id from silver.orders where order_amount > 1000\n"
            "- name: no_orders\n  severity: error\n  sql: |\n    select 1 as x\n    from silver.orders\n"
            "    where order_id is null\n")
    checks = parse_check_list(text, "checks.yml")
    assert [(c.name, c.severity, c.reads) for c in checks] == [
        ("big_orders", "warn", frozenset({("silver", "orders")})),
        ("no_orders", "error", frozenset({("silver", "orders")}))]
    with pytest.raises(CheckError, match=r"checks\.yml:9: reads silver\.nope, but no contract"):
        parse_check_list(text.replace("from silver.orders\n", "from silver.nope\n"), "checks.yml",
                         {("silver", "orders")})


@pytest.mark.parametrize(("text", "where"), [
    ("-- name: x\nselect 1", r"x\.sql:1: no `-- severity:` line"),
    ("-- name: x\n-- severity: fatal\nselect 1", r"x\.sql:2: severity 'fatal'"),
    ("-- name: Bad Name\n-- severity: warn\nselect 1", r"x\.sql:1: check name"),
    ("-- severity: warn\nselect 1\nfrom (select 2", r"x\.sql:3: cannot parse"),
    ("-- severity: warn\ndelete from silver.orders", r"x\.sql:2: a check is exactly one SELECT"),
    ("-- severity: warn\nselect 1;\nselect 2", r"x\.sql:2: a check is exactly one SELECT"),
    ("-- severity: warn\nselect *\nfrom read_csv('/etc/passwd')", r"x\.sql:3: read_csv\(\) reads outside"),
    ("-- severity: warn\nselect *\n from bronze.orders", r"x\.sql:3: table 'bronze\.orders'"),
    ("-- severity: warn\nselect *\n from shoplake.secrets", r"x\.sql:3: table 'shoplake\.secrets'"),
])
def test_a_bad_sql_check_names_its_file_and_line(text: str, where: str) -> None:
    with pytest.raises(CheckError, match=where):
        parse_check_file(text, "x.sql")


@pytest.mark.parametrize(("text", "where"), [
    ("name: x", r"c\.yml:1: expected a list"),
    ("- name: x\n  severity: warn\n", r"c\.yml:1: the check has no sql"),
    ("- name: x\n  severity: warn\n  sql: select 1\n  tags: [a]\n", r"c\.yml:1: unknown key 'tags'"),
    ("- name: a\n  severity: warn\n  sql: select 1\n- name: b\n  severity: bad\n  sql: select 1\n",
     r"c\.yml:5: severity 'bad'"),
    ("- name: x\n  severity: warn\n  sql: [unclosed\n", r"c\.yml:\d+: not valid YAML"),
])
def test_a_bad_yaml_check_names_its_file_and_line(text: str, where: str) -> None:
    with pytest.raises(CheckError, match=where):
        parse_check_list(text, "c.yml")


def test_a_check_reading_an_unknown_model_is_refused_when_the_suite_loads(workspace: Settings,
                                                                        tmp_path: Path) -> None:
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "typo.sql").write_text("-- severity: error\nselect *\nfrom gold.fact_sale\n")
    workspace.checks = [folder]
    with pytest.raises(CheckError, match=r"typo\.sql:3: reads gold\.fact_sale, but no model builds it"):
        load_suite(workspace)


def test_a_bad_check_file_stops_the_run_before_any_data_is_touched(workspace: Settings, tmp_path: Path) -> None:
    assert isinstance(workspace.landing, Path)
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "mini" / "orders_2026_01_05.csv", workspace.landing)
    folder = tmp_path / "checks"
    folder.mkdir()
    (folder / "bad.yml").write_text("- name: x\n  severity: sometimes\n  sql: select 1\n")
    workspace.checks = [folder]
    with pytest.raises(ConfigError, match=r"bad\.yml:2"):
        run(workspace)
    assert [p.name for p in workspace.landing.iterdir()] == ["orders_2026_01_05.csv"]
    assert not Path(workspace.lake).exists()


def test_the_checks_setting_defaults_to_the_folder_beside_shoplake_yml(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    config = tmp_path / "shoplake.yml"
    config.write_text("lake: lake\n")
    assert load_settings(config).checks == [tmp_path / "checks"]
    config.write_text("checks: mine\n")
    assert load_settings(config).checks == [tmp_path / "mine"]


def test_the_pack_loads_against_the_builtin_contracts_and_models() -> None:
    contracts = load_contracts()
    known = {("gold", m.name) for m in load_models(contracts=contracts)} | {("silver", c.feed) for c in contracts}
    checks = load_folder(pack_dir(), known)
    assert {c.severity for c in checks} == {"error", "warn"}
    assert all(c.description for c in checks)


def test_a_broken_check_does_not_stop_the_others_from_counting(engine: Engine) -> None:
    engine.create_table("orders_u", exp.select("*").from_(exp.values(
        [(exp.convert(1),), (exp.convert(2),)], alias="t", columns=["order_id"])))
    engine.create_view("silver", "orders", "orders_u")
    good = parse_check_file("-- name: two\n-- severity: error\nselect * from silver.orders where order_id = 2", "a.sql")
    broken = parse_check_file("-- name: broken\n-- severity: warn\nselect nope from silver.orders", "b.sql")
    passing = parse_check_file("-- name: none\n-- severity: error\nselect * from silver.orders where false", "c.sql")
    results = judge(engine, [good, broken, passing])
    assert [(r.name, r.passed, r.failing_rows) for r in results] == [("two", False, 1), ("broken", False, 0),
                                                                      ("none", True, 0)]
    assert results[0].samples == ({"order_id": "2"},) and "nope" in results[1].description
