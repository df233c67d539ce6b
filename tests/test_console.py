"""What reaches the console: text from files shown as it is, and one line per error instead of a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from shoplake import api
from shoplake.cli import app
from tests.conftest import copy_fixture
from tests.test_watch import ledger_rows, wait_for

MINI_TRIGGER = "trigger_2026_01_05.json"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "landing").mkdir()
    (tmp_path / "shoplake.yml").write_text("landing: landing\nlake: lake\narchive: archive\n")
    return tmp_path


def shoplake(project: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m shoplake ...` in the project, as a user runs it; `path` goes first on PYTHONPATH."""
    env = {**os.environ, "COLUMNS": "200"}
    if path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (path, env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "shoplake", *args], cwd=project, capture_output=True, text=True,
                          env=env, timeout=300)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def assert_short_error(result: subprocess.CompletedProcess[str], code: int, *names: str) -> None:
    """Exit `code`, an `error:` line naming each of `names`, and no traceback."""
    text = output(result)
    assert result.returncode == code, text
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    for name in names:
        assert name in errors[0], text


# -- text from files is text, not markup ------------------------------------------------------------------

def test_a_header_with_markup_is_shown_by_run_and_status(project: Path) -> None:
    (project / "landing" / "shipping_2026_01_05.csv").write_text("[/]\n1\n")
    (project / "landing" / "shipping_2026_01_06.csv").write_text("tracking_number,[/],[bold]\n1,2,3\n")
    run = shoplake(project, "run")
    assert run.returncode == 1, output(run)  # the first file has no header row
    assert "Traceback" not in output(run), output(run)
    for _ in range(2):  # every call, not only the first
        status = shoplake(project, "status")
        assert status.returncode == 0, output(status)
        assert "'[/]'" in status.stdout, status.stdout


def test_a_file_name_with_markup_and_emoji_codes_is_shown_as_it_is(project: Path) -> None:
    copy_fixture("mini", project / "landing")
    (project / "landing" / "shipping_2026_01_05.csv").unlink()
    name = "orders_[bold]_:x:_2026_01_06.csv"
    (project / "landing" / "orders_2026_01_05.csv").rename(project / "landing" / name)
    # its items follow it to that day: alone, every item would be an orphan and fail the run (max_quarantine_rate)
    (project / "landing" / "order_items_2026_01_05.csv").rename(project / "landing" / "order_items_2026_01_06.csv")
    run = shoplake(project, "run")
    assert run.returncode == 0, output(run)
    assert name in run.stdout, run.stdout
    status = shoplake(project, "status")
    assert status.returncode == 0 and name in status.stdout, output(status)


def test_a_trigger_listing_markup_fails_its_batch_and_the_run_reports_it(project: Path) -> None:
    copy_fixture("mini", project / "landing")
    (project / "landing" / MINI_TRIGGER).write_text(json.dumps({"files": ["[/]", "[bold]x"]}))
    run = shoplake(project, "run")
    assert run.returncode == 1, output(run)
    assert "Traceback" not in output(run)
    assert "lists 2 file(s) that have not arrived: [/], [bold]x" in run.stdout, run.stdout
    assert shoplake(project, "status").returncode == 0


def test_a_hint_with_brackets_is_printed_whole(project: Path, tmp_path: Path) -> None:
    """The hint for a missing Spark is `pip install 'shoplake[spark]'`; as markup it read `pip install 'shoplake'`."""
    no_spark = tmp_path / "no_spark"
    no_spark.mkdir()
    (no_spark / "pyspark.py").write_text('raise ModuleNotFoundError("No module named \'pyspark\'", name="pyspark")\n')
    result = shoplake(project, "run", "--engine", "spark", path=str(no_spark))
    assert "Traceback" not in output(result)
    assert "pip install 'shoplake[spark]'" in result.stdout, output(result)


@pytest.mark.integration
def test_a_watcher_reports_a_trigger_listing_markup_and_keeps_watching(project: Path) -> None:
    (project / "shoplake.yml").write_text(yaml.safe_dump({
        "landing": "landing", "lake": "lake", "archive": "archive", "settle_seconds": 0.2, "scan_seconds": 1}))
    state = project / "lake" / "_state" / "shoplake.db"
    watcher = subprocess.Popen([sys.executable, "-m", "shoplake", "watch"], cwd=project, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        copy_fixture("mini", project / "landing")
        partial = project / "landing" / f".{MINI_TRIGGER}.tmp"
        partial.write_text(json.dumps({"files": ["[/]"]}))
        partial.rename(project / "landing" / MINI_TRIGGER)
        wait_for(lambda: ledger_rows(state, "SELECT 1 FROM batches WHERE status = 'failed'"), 120, "the failed batch")
        time.sleep(1.0)
        assert watcher.poll() is None, "the watcher is still watching"
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, _ = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, out
    assert "Traceback" not in out, out
    assert "that have not arrived: [/]" in out and "stopped after 1 batch(es)" in out, out


# -- one line instead of a traceback ----------------------------------------------------------------------

def test_a_damaged_state_database_is_a_usage_error_naming_it(project: Path) -> None:
    state = project / "lake" / "_state" / "shoplake.db"
    state.parent.mkdir(parents=True)
    state.write_bytes(os.urandom(4096))
    for command in ("status", "run"):
        assert_short_error(shoplake(project, command), 2, str(state), "damaged")
    debug = shoplake(project, "--debug", "status")
    assert debug.returncode != 0 and "Traceback" in debug.stderr, "--debug shows the traceback"


def test_a_lake_that_is_a_regular_file_is_a_usage_error(project: Path) -> None:
    (project / "lake").write_text("not a folder\n")
    for command in ("status", "run"):
        assert_short_error(shoplake(project, command), 2, str(project / "lake"), "is a file, not a folder")


def test_status_of_a_folder_without_a_lake_says_so_and_creates_nothing(project: Path) -> None:
    assert_short_error(shoplake(project, "status", "--lake", "typo"), 2, "there is no lake at typo")
    assert not (project / "typo").exists()
    (project / "empty").mkdir()
    assert_short_error(shoplake(project, "status", "--lake", "empty"), 2, "there is no lake at empty")
    assert list((project / "empty").iterdir()) == []


def test_an_unexpected_error_is_one_line_and_debug_reraises(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    assert CliRunner().invoke(app, ["run"]).exit_code == 0  # a lake to show

    def broken(*args: object, **kwargs: object) -> api.Status:
        raise RuntimeError("boom [/]\nsecond line")

    monkeypatch.setattr(api, "status", broken)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "error: unexpected error, RuntimeError: boom [/]", result.output
    assert "rerun with --debug" in result.output and "Traceback" not in result.output
    debug = CliRunner().invoke(app, ["--debug", "status"])
    assert isinstance(debug.exception, RuntimeError)
