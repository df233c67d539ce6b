"""The CLI as a user meets it: commands, the settings file, messages and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplake.cli import app
from tests.conftest import copy_fixture

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shop's project folder with a shoplake.yml, as the working directory."""
    (tmp_path / "landing").mkdir()
    (tmp_path / "shoplake.yml").write_text("landing: landing\nlake: lake\narchive: archive\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_generate_then_run_from_the_settings_file(project: Path) -> None:
    generated = runner.invoke(app, ["generate", "--out", "landing", "--days", "1", "--scale", "0.001"])
    assert generated.exit_code == 0, generated.output
    assert (project / "landing" / "orders_2026_01_05.csv").is_file()
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    assert "orders_2026_01_05.csv" in result.output and "agg_daily_sales" in result.output
    assert (project / "lake" / "gold" / "agg_daily_sales" / "_delta_log").is_dir()
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0
    assert "orders_2026_01_05.csv" in status.output and "succeeded" in status.output


def test_a_failed_file_makes_the_exit_code_1(project: Path) -> None:
    copy_fixture("mini", project / "landing")  # its shipping file is binary
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 1
    assert "binary" in result.output


def test_an_unknown_engine_is_a_usage_error(project: Path) -> None:
    result = runner.invoke(app, ["run", "--engine", "sparkk"])
    assert result.exit_code == 2
    assert "unknown engine 'sparkk'" in result.output


def test_a_broken_contract_is_reported_with_its_file(project: Path) -> None:
    (project / "contracts").mkdir()
    (project / "contracts" / "orders.yml").write_text(
        "feed: orders\nfiles: ['orders_*.csv']\nprimary_key: [order_id]\n"
        "columns:\n  order_id: {type: integer}\nrules:\n  - {name: bad, expr: 'amount > 0'}\n")
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "contracts/orders.yml" in result.output and "unknown column(s) amount" in result.output


def test_a_missing_landing_folder_is_a_usage_error(project: Path) -> None:
    result = runner.invoke(app, ["run", "--landing", "nowhere"])
    assert result.exit_code == 2
    assert "landing folder nowhere does not exist" in result.output


@pytest.mark.integration
def test_demo_shows_rows_reasons_and_kpis(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--folder", str(tmp_path / "demo"), "--scale", "0.002"])
    assert result.exit_code == 0, result.output
    for heading in ("rows per feed", "top quarantine reasons", "headline KPIs (gold.agg_daily_sales, in USD)",
                    "sales without rate", "customers by lifecycle stage (gold.agg_customer_metrics)",
                    "funnel per day (gold.agg_funnel_daily)", "delivery SLA per carrier (gold.agg_delivery_sla)",
                    "tables:"):
        assert heading in result.output
    # the demo names a customer with several versions, and that command shows them
    hint = next(line for line in result.output.splitlines() if line.startswith("a customer's versions: "))
    key = hint.split("--key ")[1].split()[0]
    lake = str(tmp_path / "demo" / "lake")
    history = runner.invoke(app, ["history", "silver/customers", "--key", key, "--lake", lake])
    assert history.exit_code == 0, history.output
    assert "version(s), SCD2" in history.output
    assert int(history.output.split(" version(s), SCD2")[0].rsplit(" ", 1)[1]) >= 2
    assert (tmp_path / "demo" / "lake" / "silver" / "orders").is_dir()
    assert not any((tmp_path / "demo" / "landing").iterdir())
