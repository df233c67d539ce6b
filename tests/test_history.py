"""`shoplake history LAYER/TABLE --key`: a key's SCD2 versions, and what other tables keep, on a real lake."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from deltalake import DeltaTable
from typer.testing import CliRunner

from shoplake import api
from shoplake import console as shown
from shoplake.cli import app
from shoplake.config import Settings
from shoplake.pipeline import run
from shoplake.tables import KeyNotFound
from tests.conftest import copy_fixture

runner = CliRunner()
HOSTILE = "[bold red]Oslo[/bold red]\x1b[2J"  # markup and a clear-screen escape in a value
HEADER = "customer_id,first_name,last_name,email,phone,birth_date,city,country,segment,lifecycle_stage,created_at," \
         "updated_at\n"
# Customer 1 as three days deliver it: moves to Lyon (and turns active), then changes e-mail.
DAYS = {
    "2026_01_06": "1,Ann,Lee,ann@example.com,+14155550123,1990-01-01,Lyon,FR,consumer,active,"
                  "2026-01-01 10:00:00,2026-01-06 10:00:00\n",
    "2026_01_07": "1,Ann,Lee,ann.lee@example.com,+14155550123,1990-01-01,Lyon,FR,consumer,active,"
                  "2026-01-01 10:00:00,2026-01-07 10:00:00\n"
                  f"4,Di,Ro,di@example.com,,1970-02-02,{HOSTILE},NO,consumer,new,"
                  "2026-01-07 10:00:00,2026-01-07 10:00:00\n",
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("history")
    landing = root / "landing"
    landing.mkdir()
    copy_fixture("mini", landing)
    for day, rows in DAYS.items():
        (landing / f"customers_{day}.csv").write_text(HEADER + rows, encoding="utf-8")
    (landing / "fx_rates_2026_01_05.csv").write_text(
        "rate_date,currency,rate\n2026-01-05,EUR,1.10\n2026-01-05,GBP,1.27\n2026-01-06,EUR,1.11\n", encoding="utf-8")
    settings = Settings(landing=landing, lake=root / "lake", archive=root / "archive")
    run(settings)
    return settings


def shoplake(settings: Settings, *args: str) -> Result:
    return runner.invoke(app, [*args, "--lake", str(settings.lake)])


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console wide enough that no cell folds: every value reads whole on its line."""
    monkeypatch.setattr(shown.console, "width", 1000)


def test_a_customer_with_three_versions_shows_each_with_its_validity_values_and_source(lake: Settings) -> None:
    history = api.history(lake, "silver/customers", ["1"])
    assert history.scd2 and history.mode == "scd2"
    rows = [dict(zip(history.columns, row, strict=True)) for row in history.rows]
    assert [r["city"] for r in rows] == ["Paris", "Lyon", "Lyon"]
    assert [r["email"] for r in rows] == ["ann@example.com", "ann@example.com", "ann.lee@example.com"]
    assert [Path(r["_source_file"]).name for r in rows] == [
        "customers_2026_01_05.csv", "customers_2026_01_06.csv", "customers_2026_01_07.csv"]
    # Validity chains: each version ends where the next begins, and only the last is current.
    assert [str(r["_valid_from"]) for r in rows] == [
        "2026-01-05 10:00:00", "2026-01-06 10:00:00", "2026-01-07 10:00:00"]
    assert [r["_valid_to"] for r in rows[:-1]] == [r["_valid_from"] for r in rows[1:]]
    assert rows[-1]["_valid_to"] is None
    assert [r["_is_current"] for r in rows] == [False, False, True]
    first = rows[0]["_version"]
    assert [r["_version"] - first for r in rows] == [0, 1, 2]  # consecutive version numbers, oldest first
    # Each version names the batch that wrote it and the table version that batch committed.
    assert len({r["_batch_id"] for r in rows}) == 3
    log = DeltaTable(f"{lake.tables_root}/silver/customers").history()
    written_by = {h["version"]: h.get("shoplake.batch_id") for h in log}
    assert [written_by.get(v) for v in history.table_versions] == [r["_batch_id"] for r in rows]
    assert history.tracked == ["email", "phone", "city", "country", "segment", "lifecycle_stage"]
    assert "first_name" not in history.columns  # untracked columns are not what a version is about


def test_history_on_the_command_line(lake: Settings, wide: None) -> None:
    result = shoplake(lake, "history", "silver/customers", "--key", "1")
    assert result.exit_code == 0, result.output
    assert "silver/customers customer_id=1: 3 version(s), SCD2" in result.output
    versions = [line for line in result.output.splitlines() if "customers_2026_01_0" in line]
    assert len(versions) == 3, result.output
    for line, day in zip(versions, ("05", "06", "07"), strict=True):
        assert f"customers_2026_01_{day}.csv row 1" in line
        assert f"2026-01-{day} 10:00:00" in line


def test_values_are_shown_as_text_not_markup_or_escape_codes(lake: Settings, wide: None) -> None:
    result = shoplake(lake, "history", "silver/customers", "--key", "4")
    assert result.exit_code == 0, result.output
    assert "[bold red]Oslo[/bold red]\\x1b[2J" in result.output
    assert "\x1b" not in result.output


def test_composite_key_takes_each_column_by_name(lake: Settings) -> None:
    history = api.history(lake, "silver/fx_rates", ["rate_date=2026-01-05", "currency=EUR"])
    assert not history.scd2 and history.mode == "upsert"
    assert [row[history.columns.index("rate")] for row in history.rows] == [1.10]
    partial = api.history(lake, "silver/fx_rates", ["currency=EUR"])
    assert sorted(str(row[0]) for row in partial.rows) == ["2026-01-05", "2026-01-06"]
    bare = shoplake(lake, "history", "silver/fx_rates", "--key", "EUR")
    assert bare.exit_code == 2
    assert "the key of silver/fx_rates is rate_date, currency; give each column as COLUMN=VALUE" in bare.output
    unknown = shoplake(lake, "history", "silver/fx_rates", "--key", "day=2026-01-05")
    assert unknown.exit_code == 2 and "silver/fx_rates has no column day" in unknown.output


def test_a_table_that_is_not_scd2_says_what_it_keeps(lake: Settings) -> None:
    result = shoplake(lake, "history", "silver/orders", "--key", "100")
    assert result.exit_code == 0, result.output
    assert "silver/orders order_id=100: 1 row(s), upsert" in result.output
    assert "silver/orders is an upsert table, not SCD2: it keeps one row per key, the latest by updated_at" \
        in " ".join(result.output.split())
    bronze = api.history(lake, "bronze/orders", ["100"])
    assert bronze.mode == "append" and len(bronze.rows) == 1
    assert bronze.note is not None and "not SCD2: it keeps every row delivered" in bronze.note


def test_missing_key_table_and_quarantined_key_are_told_apart(lake: Settings) -> None:
    with pytest.raises(KeyNotFound) as raised:
        api.history(lake, "silver/customers", ["999"])
    assert raised.value.message == "no row of silver/customers has customer_id 999"
    missing = shoplake(lake, "history", "silver/customers", "--key", "999")
    assert missing.exit_code == 1
    assert missing.output.startswith("error: no row of silver/customers has customer_id 999\n")
    # order 101 failed a reference check: not in silver, but its row is in quarantine
    quarantined = shoplake(lake, "history", "silver/orders", "--key", "101")
    assert quarantined.exit_code == 1
    assert "no row of silver/orders has order_id 101: 1 row(s) of it are in quarantine/orders" in quarantined.output
    no_table = shoplake(lake, "history", "silver/nope", "--key", "1")
    assert no_table.exit_code == 2
    assert "there is no table silver/nope" in no_table.output and "tables in silver:" in no_table.output
    bad_ref = shoplake(lake, "history", "customers", "--key", "1")
    assert bad_ref.exit_code == 2 and "is not a lake table" in bad_ref.output
    for result in (missing, quarantined, no_table, bad_ref):
        assert "Traceback" not in result.output
