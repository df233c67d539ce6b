"""`shoplake check`: every check on the lake's current tables, exit 1 when an error check fails (0 for a
warning), 2 for a bad check file; `--history` shows what the batches' audits stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shoplake.cli import app
from shoplake.config import Settings
from shoplake.pipeline import run
from tests.conftest import copy_fixture

runner = CliRunner()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with shoplake.yml and an empty checks/ folder, whose lake the mini fixture loaded."""
    root = tmp_path_factory.mktemp("check_command")
    (root / "landing").mkdir()
    (root / "checks").mkdir()
    copy_fixture("mini", root / "landing")
    (root / "shoplake.yml").write_text("landing: landing\nlake: lake\narchive: archive\n")
    run(Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive"))
    return root


def shoplake(project: Path, *args: str) -> Result:
    return runner.invoke(app, ["check", "--config", str(project / "shoplake.yml"), *args], env={"COLUMNS": "200"})


def rows_of(output: str, name: str) -> list[list[str]]:
    """The cells of the table rows naming `name`."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if f" {name} " in line]


def test_a_clean_lake_passes_every_check(project: Path) -> None:
    result = shoplake(project)
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output
    assert rows_of(result.output, "fact_sales_key_unique") == [["fact_sales_key_unique", "error", "yes", "0"]]


def test_a_failing_error_check_exits_1_and_shows_its_rows(project: Path) -> None:
    check = project / "checks" / "no_returns.sql"
    check.write_text("-- severity: error\n-- description: no returned item\n"
                     "select order_item_id, item_status from gold.fact_sales where is_returned\n")
    try:
        result = shoplake(project)
    finally:
        check.unlink()
    assert result.exit_code == 1, result.output
    assert rows_of(result.output, "no_returns") == [["no_returns", "error", "NO", "1"]]
    assert '{"order_item_id": "1003", "item_status": "returned"}' in result.output


def test_a_failing_warning_exits_0(project: Path) -> None:
    check = project / "checks" / "warned.yml"
    check.write_text("- name: returned_items\n  severity: warn\n"
                     "  sql: select order_item_id from gold.fact_sales where is_returned\n")
    try:
        result = shoplake(project)
    finally:
        check.unlink()
    assert result.exit_code == 0, result.output
    assert "1 failed (0 error, 1 warn)" in result.output


def test_a_bad_check_file_exits_2_naming_file_and_line(project: Path) -> None:
    check = project / "checks" / "broken.sql"
    check.write_text("-- severity: error\nselect *\nfrom gold.nothing_here\n")
    try:
        result = shoplake(project)
    finally:
        check.unlink()
    assert result.exit_code == 2, result.output
    assert "broken.sql:3: reads gold.nothing_here" in result.output


def test_history_shows_the_stored_results_of_the_batches(project: Path) -> None:
    result = shoplake(project, "--history")
    assert result.exit_code == 0, result.output
    [row] = rows_of(result.output, "files_reconcile")
    assert row[0].startswith("20260105-") and row[2:] == ["files_reconcile", "error", "yes", "0"]
