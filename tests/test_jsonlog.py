"""`--log-format json`: every stderr line of a CLI run is a JSON event, and the run's summary matches them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES

SHOPLAKE = Path(sys.executable).with_name("shoplake")


def shoplake(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Run the installed CLI; its exit code and every stderr line parsed as JSON (a line that is not fails)."""
    done = subprocess.run([str(SHOPLAKE), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]
    assert len(events) == len(lines)
    return done.returncode, events


@pytest.fixture(scope="module")
def mini_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("jsonlog")
    shutil.copytree(FIXTURES / "mini", root / "landing")
    code, events = shoplake("--log-format", "json", "run", "--landing", str(root / "landing"),
                            "--lake", str(root / "lake"))
    return root, code, events


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def test_a_run_is_framed_by_started_and_finished_with_one_run_id(mini_run: tuple[Path, int, list[dict[str, Any]]]
                                                                 ) -> None:
    _, code, events = mini_run
    assert kinds(events)[0] == "run_started" and kinds(events)[-1] == "run_finished"
    assert kinds(events).count("batch_started") == kinds(events).count("batch_finished") == 1
    assert len({e["run_id"] for e in events}) == 1 and events[0]["run_id"]
    assert all(e["schema"] == 1 and e["ts"].endswith("+00:00") for e in events)
    assert events[0]["command"] == "run"
    # the fixture's shipping file is binary: rejected, so the run fails with exit 1
    rejected = [e for e in events if e["event"] == "file_rejected"]
    assert [Path(e["file"]).name for e in rejected] == ["shipping_2026_01_05.csv"]
    finished = events[-1]
    assert (code, finished["exit_code"], finished["status"]) == (1, 1, "failed")
    assert finished["files_rejected"] == 1 and finished["batches"] == 1


def test_batch_finished_counts_reconcile_with_the_summary(mini_run: tuple[Path, int, list[dict[str, Any]]]) -> None:
    root, _, events = mini_run
    batch = next(e for e in events if e["event"] == "batch_finished")
    assert batch["rows_read"] == batch["rows_loaded"] + batch["rows_quarantined"] + batch["rows_duplicate"]
    assert batch["rows_loaded"] > 0 and batch["files"] == 5 and batch["files_failed"] == 1
    assert batch["checks"] > 0 and batch["checks_failed"] == []
    summary_path = Path(events[-1]["summary"])
    assert summary_path.parent == root / "lake" / "_state" / "runs"
    summary = json.loads(summary_path.read_text())
    assert summary["run_id"] == events[0]["run_id"] and summary["exit_code"] == 1
    assert summary["status"] == "failed" and summary["command"] == "run"
    [recorded] = summary["batches"]
    assert recorded["batch_id"] == batch["batch_id"]
    # the summary's per-file rows add up to the batch event's totals
    for key in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate"):
        assert sum(f[key] for f in recorded["files_detail"]) == batch[key] == summary["totals"][key]
    assert [Path(f["file"]).name for f in summary["files_rejected"]] == ["shipping_2026_01_05.csv"]


def test_a_command_without_batches_succeeds_with_exit_0(mini_run: tuple[Path, int, list[dict[str, Any]]]) -> None:
    root, _, _ = mini_run
    code, events = shoplake("status", "--lake", str(root / "lake"), env={"SHOPLAKE_LOG_FORMAT": "json"})
    assert code == 0 and kinds(events) == ["run_started", "run_finished"]
    assert events[-1]["status"] == "succeeded" and events[-1]["batches"] == 0
    assert json.loads(Path(events[-1]["summary"]).read_text())["status"] == "succeeded"


def test_a_configuration_error_exits_2_and_says_why(tmp_path: Path) -> None:
    code, events = shoplake("--log-format", "json", "show", "silver/orders", "--lake", str(tmp_path / "nowhere"))
    assert code == 2 and kinds(events) == ["run_started", "run_finished"]
    finished = events[-1]
    assert finished["status"] == "configuration_error" and finished["exit_code"] == 2
    assert finished["retryable"] is False
    assert "there is no lake" in finished["error"]
    assert finished["summary"] is None and not (tmp_path / "nowhere").exists()  # no lake made for a summary


def test_an_unknown_log_format_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run([str(SHOPLAKE), "--log-format", "yaml", "status"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--log-format" in done.stderr


def test_text_mode_keeps_stderr_free_of_events_and_still_writes_the_summary(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "mini", tmp_path / "landing")
    done = subprocess.run([str(SHOPLAKE), "run", "--landing", str(tmp_path / "landing"), "--lake",
                           str(tmp_path / "lake")], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "SHOPLAKE_LOG_FORMAT"})
    assert done.returncode == 1
    assert '"event"' not in done.stderr and done.stderr.startswith("file_failed: ")  # as before: a log line
    [path] = (tmp_path / "lake" / "_state" / "runs").glob("*.json")
    summary = json.loads(path.read_text())
    assert summary["exit_code"] == 1 and len(summary["batches"]) == 1
