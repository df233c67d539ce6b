"""`shoplake show` and `shoplake quarantine show` on a real lake, and the places `reprocess` and `replay` take."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import Result
from deltalake import DeltaTable
from typer.testing import CliRunner

from shoplake.cli import app
from shoplake.config import Settings
from shoplake.pipeline import run
from tests.conftest import copy_fixture

runner = CliRunner()
HOSTILE = "[bold red]boom[/bold red]\x1b[2J"  # markup and a clear-screen escape, as a sender may write them


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake built by the pipeline from the mini fixture, plus a day whose only order has a hostile status."""
    root = tmp_path_factory.mktemp("show")
    landing = root / "landing"
    landing.mkdir()
    copy_fixture("mini", landing)
    (landing / "orders_2026_01_06.csv").write_text(
        "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
        f"105,1,{HOSTILE},1,10.00,USD,2026-01-06 09:00:00,2026-01-06 09:00:00\n", encoding="utf-8")
    run(Settings(landing=landing, lake=root / "lake", archive=root / "archive"))
    return root / "lake"


def shoplake(*args: str) -> Result:
    return runner.invoke(app, list(args))


def lines(result: Result) -> list[str]:
    return result.output.splitlines()


def test_quarantine_show_gives_file_row_every_reason_and_the_raw_values(lake: Path) -> None:
    result = shoplake("quarantine", "show", "orders", "--lake", str(lake))
    assert result.exit_code == 0, result.output
    assert lines(result)[0] == "quarantine/orders: 4 of 4 row(s)"
    out = lines(result)
    at = out.index("orders_2026_01_05.csv row 6")
    assert out[at + 1:at + 4] == [
        "  reason: status.accepted_values: status 'teleported' is not one of created, processing, shipped, "
        "delivered, cancelled, returned",
        "  reason: created_not_in_future: created_at lies in the future",
        "  order_id=104, customer_id=1, status=teleported, num_items=1, order_amount=15.00, currency=USD, "
        "created_at=2099-01-05 11:00:00, updated_at=2026-01-05 12:00:00, _rescued=NULL",
    ]
    assert "orders_2026_01_05.csv row 2" in out and "orders_2026_01_05.csv row 3" in out


def test_quarantine_show_filters_by_rule_file_and_limit(lake: Path) -> None:
    by_rule = shoplake("quarantine", "show", "orders", "--rule", "customer_id.references", "--lake", str(lake))
    assert by_rule.exit_code == 0, by_rule.output
    assert lines(by_rule)[0] == "quarantine/orders: 2 of 2 row(s)"
    # A row's heading is its file and row; its reasons (indented) may name other rows.
    assert [line for line in lines(by_rule) if line.startswith("orders_")] == [
        "orders_2026_01_05.csv row 2", "orders_2026_01_05.csv row 3"]
    assert "customer_id 2 is in quarantine (customers): customers_2026_01_05.csv row 2" in by_rule.output
    by_file = shoplake("quarantine", "show", "orders", "--file", "orders_2026_01_06.csv", "--lake", str(lake))
    assert lines(by_file)[0] == "quarantine/orders: 1 of 1 row(s)"
    limited = shoplake("quarantine", "show", "orders", "--limit", "1", "--lake", str(lake))
    assert lines(limited)[0] == "quarantine/orders: 1 of 4 row(s)"
    unknown = shoplake("quarantine", "show", "orders", "--rule", "no_such_rule", "--lake", str(lake))
    assert unknown.exit_code == 0
    assert lines(unknown)[0] == "quarantine/orders: 0 of 0 row(s)"
    assert "rules failed in quarantine/orders: " in unknown.output and "created_not_in_future" in unknown.output


def test_values_reach_the_console_as_text_not_markup_or_escape_codes(lake: Path) -> None:
    result = shoplake("quarantine", "show", "orders", "--file", "orders_2026_01_06.csv", "--lake", str(lake))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    assert "status=[bold red]boom[/bold red]\\x1b[2J," in result.output
    table = shoplake("show", "bronze/orders", "--where", "order_id = '105'", "--lake", str(lake))
    assert table.exit_code == 0, table.output
    assert "\x1b" not in table.output
    cell = "".join(line.split("│")[3].strip() for line in lines(table) if line.startswith("│"))
    assert cell == "[boldred]boom[/boldred]\\x1b[2J", "the status cell, wrapped over lines, is the value as text"


def test_show_prints_a_lake_table_filtered_by_a_checked_condition(lake: Path) -> None:
    result = shoplake("show", "silver/orders", "--where", "status = 'delivered' and num_items > 1",
                      "--lake", str(lake))
    assert result.exit_code == 0, result.output
    assert "silver/orders: 1 of 1 row(s)" in result.output
    assert "delivered" in result.output and "40.00" in result.output
    everything = shoplake("show", "silver/orders", "--lake", str(lake))
    assert "silver/orders: 2 of 2 row(s)" in everything.output
    limited = shoplake("show", "gold.agg_daily_sales", "--limit", "1", "--lake", str(lake))
    assert limited.exit_code == 0, limited.output
    assert "gold/agg_daily_sales: 1 of 1 row(s)" in limited.output


@pytest.mark.parametrize(("args", "message"), [
    (["silver/orders", "--where", "amount > 0"], "error: --where: unknown column(s) amount in silver/orders"),
    (["silver/orders", "--where", "status = 'x'; drop table orders"], "error: --where: "),
    (["silver/orders", "--where", "order_id in (select 1)"], "contains a query"),
    (["silver/orders", "--where", "order_amount"], "is not a boolean expression"),
    (["silver/orders", "--where", "order_id > 'abc'"], "the condition cannot be evaluated on silver/orders"),
    (["silver/orderz"], "error: there is no table silver/orderz in the lake"),
    (["../etc/passwd"], "is not a lake table; write LAYER/TABLE"),
    (["silver/../../x"], "is not a lake table; write LAYER/TABLE"),
])
def test_a_bad_table_or_condition_is_one_usage_error(lake: Path, args: list[str], message: str) -> None:
    result = shoplake("show", *args, "--lake", str(lake))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_missing_table_names_the_tables_there_are(lake: Path) -> None:
    result = shoplake("show", "silver/orderz", "--lake", str(lake))
    assert "hint: tables in silver: customers, order_items, orders, products" in result.output


def test_show_on_a_lake_that_is_not_there_creates_nothing(tmp_path: Path) -> None:
    for args in (["show", "silver/orders"], ["quarantine", "show", "orders"]):
        result = shoplake(*args, "--lake", str(tmp_path / "typo"))
        assert result.exit_code == 2, result.output
        assert "there is no lake at" in result.output
    assert not (tmp_path / "typo").exists()


def test_reprocess_and_replay_take_landing_lake_and_archive_like_run(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No shoplake.yml, and places that are not the defaults: each command is told where everything is."""
    drop, lake, kept = tmp_path / "drop", tmp_path / "tables", tmp_path / "kept"
    drop.mkdir()
    copy_fixture("mini", drop)
    (drop / "shipping_2026_01_05.csv").unlink()  # binary: it would fail its batch
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    places = ["--landing", str(drop), "--lake", str(lake), "--archive", str(kept)]
    first = shoplake("run", *places)
    assert first.exit_code == 0, first.output
    archived = kept / "processed" / "2026-01-05" / "orders_2026_01_05.csv"
    assert archived.is_file()
    again = shoplake("reprocess", "--file", "orders_2026_01_05.csv", *places)
    assert again.exit_code == 0, again.output
    assert "orders_2026_01_05.csv" in again.output and archived.is_file() and not any(drop.iterdir())
    replay = shoplake("quarantine", "replay", "orders", *places)
    assert replay.exit_code == 0, replay.output
    assert "orders: 0 row(s) moved to silver, 3 stay in quarantine" in replay.output
    assert not (elsewhere / "archive").exists() and not (elsewhere / "lake").exists()
    shutil.rmtree(lake)


@pytest.fixture(scope="module")
def travelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake whose silver/orders gains a row in a second batch: version 0 holds 2 orders, version 1 holds 3."""
    root = tmp_path_factory.mktemp("as_of")
    landing = root / "landing"
    landing.mkdir()
    copy_fixture("mini", landing)
    (landing / "orders_2026_01_06.csv").write_text(
        "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n"
        "106,1,created,1,10.00,USD,2026-01-06 09:00:00,2026-01-06 09:00:00\n", encoding="utf-8")
    run(Settings(landing=landing, lake=root / "lake", archive=root / "archive"))
    return root / "lake"


def test_show_as_of_a_version_or_a_moment_shows_the_table_as_it_was(travelled: Path) -> None:
    log = {h["version"]: h["timestamp"] for h in DeltaTable(str(travelled / "silver" / "orders")).history()}
    assert sorted(log) == [0, 1]
    old = shoplake("show", "silver/orders", "--as-of", "0", "--lake", str(travelled))
    assert old.exit_code == 0, old.output
    assert "silver/orders at version 0 (committed " in old.output and ": 2 of 2 row(s)" in old.output
    assert "106" not in old.output
    now = shoplake("show", "silver/orders", "--lake", str(travelled))
    assert "silver/orders: 3 of 3 row(s)" in now.output
    # A moment picks the last version committed by then: version 0's own commit time, in UTC and with an offset.
    moment = datetime.fromtimestamp(log[0] / 1000, UTC)
    for text in (moment.isoformat(), moment.astimezone(timezone(timedelta(hours=2))).isoformat()):
        at = shoplake("show", "silver/orders", "--as-of", text, "--lake", str(travelled))
        assert at.exit_code == 0, at.output
        assert "at version 0 " in at.output and ": 2 of 2 row(s)" in at.output
    later = shoplake("show", "silver/orders", "--as-of", (moment + timedelta(days=1)).isoformat(),
                     "--lake", str(travelled))
    assert "at version 1 " in later.output and ": 3 of 3 row(s)" in later.output
    filtered = shoplake("show", "silver/orders", "--as-of", "1", "--where", "order_id = 106", "--lake", str(travelled))
    assert "at version 1 " in filtered.output and ": 1 of 1 row(s)" in filtered.output


@pytest.mark.parametrize(("as_of", "message"), [
    ("7", "error: --as-of 7: silver/orders has no version 7"),
    ("2020-01-01", "error: --as-of 2020-01-01: silver/orders did not exist yet at 2020-01-01 00:00:00 UTC"),
    ("last tuesday", "error: --as-of 'last tuesday' is neither a version number nor an ISO timestamp"),
])
def test_show_as_of_a_version_or_moment_the_table_lacks_is_a_usage_error(travelled: Path, as_of: str,
                                                                         message: str) -> None:
    result = shoplake("show", "silver/orders", "--as-of", as_of, "--lake", str(travelled))
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message)
    assert "Traceback" not in result.output
    if as_of != "last tuesday":
        assert "hint: silver/orders has versions 0 to 1, committed " in result.output
