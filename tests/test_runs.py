"""The run history: what each batch did (stage seconds, rows, Delta versions), as `status --runs` shows it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from shoplake import api
from shoplake.cli import app
from shoplake.config import load_settings
from shoplake.console import console
from shoplake.runs import RunRecord, recent_runs
from tests.conftest import FIXTURES, copy_fixture

runner = CliRunner()


def second_day(landing: Path) -> int:
    """The mini orders and their items again as the next day's (other ids, other dates); returns their rows."""
    written = 0
    for feed, ids in (("orders", ("order_id",)), ("order_items", ("order_item_id", "order_id"))):
        with (FIXTURES / "mini" / f"{feed}_2026_01_05.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        with (landing / f"{feed}_2026_01_06.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (v or "").replace("2026-01-05", "2026-01-06") for k, v in row.items()}
                                | {k: str(int(float(row[k])) + 1000) for k in ids})
        written += len(rows)
    return written


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A project that ran three batches: the mini fixture, a second day of orders, a batch that failed."""
    root = tmp_path_factory.mktemp("runs")
    (root / "landing").mkdir()
    (root / "shoplake.yml").write_text("landing: landing\nlake: lake\narchive: archive\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        copy_fixture("mini", root / "landing")
        assert runner.invoke(app, ["run"]).exit_code == 1  # its shipping file is binary
        day_two = second_day(root / "landing")
        assert runner.invoke(app, ["run"]).exit_code == 0
        shutil.copy(FIXTURES / "mini" / "orders_2026_01_05.csv", root / "landing" / "orders_2026_01_09.csv")
        (root / "landing" / "trigger_2026_01_09.json").write_text(json.dumps({"files": ["missing.csv"]}))
        assert runner.invoke(app, ["run"]).exit_code == 1
    return root, day_two


def records(root: Path) -> list[RunRecord]:
    return recent_runs(load_settings(root / "shoplake.yml"))


def test_every_batch_is_recorded_newest_first_with_the_ledgers_status(project: tuple[Path, int]) -> None:
    root, _ = project
    ledger = api.status(load_settings(root / "shoplake.yml")).batches
    runs = records(root)
    assert [r.batch_id for r in runs] == [b["batch_id"] for b in ledger]  # both newest first
    assert [r.status for r in runs] == [b["status"] for b in ledger] == ["failed", "succeeded", "succeeded"]
    assert "missing.csv" in (runs[0].error or "")
    assert runs[0].tables == {}  # a batch that failed before writing moved no version


def test_a_run_keeps_its_rows_and_stage_seconds(project: tuple[Path, int]) -> None:
    root, day_two = project
    first, second = records(root)[:0:-1]
    assert (second.files, second.rows_read) == (2, day_two)
    assert second.rows_loaded + second.rows_quarantined + second.rows_duplicate == day_two
    assert first.files == 5 and first.files_failed == 1  # the binary shipping file
    assert first.rows_read == first.rows_loaded + first.rows_quarantined + first.rows_duplicate > 0
    for run in (first, second):
        assert {"read", "check", "write", "gold"} <= set(run.seconds)
        assert run.total_seconds is not None and run.total_seconds >= sum(run.seconds.values()) > 0


def test_a_run_keeps_the_delta_versions_it_wrote(project: tuple[Path, int]) -> None:
    root, _ = project
    first, second = records(root)[:0:-1]
    silver = DeltaTable(str(root / "lake" / "silver" / "orders"))
    assert second.tables["silver.orders"] == (first.tables["silver.orders"][1], silver.version())
    assert first.tables["silver.orders"][0] is None  # created by the first batch
    assert "bronze.orders" in second.tables and "gold.fact_sales" in second.tables
    assert "silver.customers" in first.tables and "silver.customers" not in second.tables  # no customers file


def test_status_runs_shows_each_run_with_its_timings_and_versions(project: tuple[Path, int],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = project
    monkeypatch.chdir(root)
    monkeypatch.setattr(console, "width", 1000)  # one line per row: the test reads rows, not wrapped cells
    result = runner.invoke(app, ["status", "--runs"])
    assert result.exit_code == 0, result.output
    first, second = records(root)[:0:-1]
    lines = result.output.splitlines()
    for run in (first, second):
        rows = [line for line in lines if run.batch_id in line]
        assert len(rows) == 2  # one in the runs table, one in the versions table
        timings = "/".join(f"{run.seconds[s]:.1f}" for s in ("read", "check", "write", "gold"))
        assert timings in rows[0] and "succeeded" in rows[0]
        before, after = run.tables["silver.orders"]
        assert f"silver.orders {'new' if before is None else before}->{after}" in rows[1]
    assert "missing.csv" in result.output
    one = runner.invoke(app, ["status", "--runs", "--limit", "1"]).output
    assert records(root)[0].batch_id in one and first.batch_id not in one


def test_status_runs_on_a_lake_without_run_history_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from shoplake.landing.ledger import Ledger

    (tmp_path / "shoplake.yml").write_text("landing: landing\nlake: lake\n")
    monkeypatch.chdir(tmp_path)
    Ledger(load_settings(tmp_path / "shoplake.yml").state_db_url).close()  # a state store from before the history
    result = runner.invoke(app, ["status", "--runs"])
    assert result.exit_code == 0, result.output
    assert "no runs recorded yet" in result.output
