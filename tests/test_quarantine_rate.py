"""A file whose rows mostly went to quarantine is not a quiet success: above its contract's
max_quarantine_rate (default 0.5) the run summary flags it and the run exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shoplake import api
from shoplake.cli import app
from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.errors import ContractError
from shoplake.pipeline import FileOutcome, RunReport
from tests.conftest import FIXTURES

TICKETS = """\
feed: tickets
files: ["tickets_*.csv"]
primary_key: [ticket_id]
columns:
  ticket_id: {{type: integer, required: true}}
  status: {{type: string, required: true, accepted_values: [open, closed]}}
{extra}"""


def with_tickets(workspace: Settings, tmp_path: Path, statuses: list[str], extra: str = "") -> Settings:
    folder = tmp_path / "contracts"
    folder.mkdir(exist_ok=True)
    (folder / "tickets.yml").write_text(TICKETS.format(extra=extra))
    assert isinstance(workspace.landing, Path)
    rows = "".join(f"{i},{status}\n" for i, status in enumerate(statuses, start=1))
    (workspace.landing / "tickets_2026_01_05.csv").write_text("ticket_id,status\n" + rows)
    workspace.contracts = [folder]
    return workspace


def only_file(report: RunReport) -> FileOutcome:
    [batch] = report.batches
    [f] = batch.files
    return f


def cli_run(settings: Settings) -> tuple[int, str]:
    args = ["run", "--landing", str(settings.landing), "--lake", str(settings.lake), "--archive", str(settings.archive)]
    if settings.contracts:
        config = Path(str(settings.lake)).parent / "shoplake.yml"
        config.write_text(f"contracts: [{settings.contracts[0]}]\n")
        args += ["--config", str(config)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    return result.exit_code, result.output


def test_the_default_limit_is_half_of_a_file() -> None:
    assert {c.feed: c.max_quarantine_rate for c in load_contracts()}["orders"] == 0.5


def test_a_file_with_every_row_quarantined_fails_the_run_and_is_flagged(workspace: Settings) -> None:
    assert isinstance(workspace.landing, Path)
    name = "orders_2026_01_05.csv"  # alone: every order's customer is unknown, so every row is quarantined
    (workspace.landing / name).write_bytes((FIXTURES / "mini" / name).read_bytes())
    code, output = cli_run(workspace)
    assert code == 1, output
    flagged = [line for line in output.splitlines() if line.startswith("too many rows quarantined:")]
    assert len(flagged) == 1, output
    assert f"{name}: 5 of 6 rows (83%) went to quarantine, above max_quarantine_rate 0.5 of feed orders" in flagged[0]
    # the batch itself succeeded: its valid rows (none) and its quarantine are written, the file is archived
    assert not any(line.startswith("batch ") and "failed" in line for line in output.splitlines()), output
    report = api.status(workspace)
    assert [(f.path.rsplit("/", 1)[-1], f.status, f.rows_quarantined) for f in report.files] == [(name, "loaded", 5)]


@pytest.mark.parametrize(("statuses", "flagged"), [
    (["open", "closed", "lost", "lost"], False),  # exactly half: allowed
    (["open", "lost", "lost", "lost"], True),
    (["lost", "lost", "lost", "lost"], True),
    (["open", "closed", "open", "closed"], False),
])
def test_the_rate_is_quarantined_rows_over_rows_read(workspace: Settings, tmp_path: Path, statuses: list[str],
                                                     flagged: bool) -> None:
    report = api.run(with_tickets(workspace, tmp_path, statuses))
    f = only_file(report)
    assert (f.rows_quarantined, f.max_quarantine_rate) == (statuses.count("lost"), 0.5)
    assert f.too_quarantined is flagged
    assert report.failed is flagged


def test_a_contract_may_allow_a_file_to_be_quarantined_whole(workspace: Settings, tmp_path: Path) -> None:
    settings = with_tickets(workspace, tmp_path, ["lost", "lost"], extra="max_quarantine_rate: 1\n")
    code, output = cli_run(settings)
    assert code == 0, output
    assert "too many rows quarantined" not in output


def test_a_stricter_contract_flags_fewer_quarantined_rows(workspace: Settings, tmp_path: Path) -> None:
    settings = with_tickets(workspace, tmp_path, ["open"] * 9 + ["lost"], extra="max_quarantine_rate: 0.05\n")
    code, output = cli_run(settings)
    assert code == 1, output
    assert "1 of 10 rows (10%) went to quarantine, above max_quarantine_rate 0.05 of feed tickets" in output


def test_a_replay_is_not_judged_by_the_rate(workspace: Settings, tmp_path: Path) -> None:
    settings = with_tickets(workspace, tmp_path, ["lost", "lost", "lost"])
    assert api.run(settings).failed
    replay = api.replay_quarantine(settings, "tickets")  # the rows are still wrong: they stay in quarantine
    [batch] = replay.batches
    assert sum(f.rows_quarantined for f in batch.files) == 3
    assert not replay.failed


@pytest.mark.parametrize("value", ["1.5", "-0.1", "lots"])
def test_a_rate_outside_0_to_1_is_a_contract_error(tmp_path: Path, value: str) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "tickets.yml").write_text(TICKETS.format(extra=f"max_quarantine_rate: {value}\n"))
    with pytest.raises(ContractError, match="max_quarantine_rate"):
        load_contracts([folder])


def test_the_watch_summary_of_a_batch_flags_the_file_too(workspace: Settings, tmp_path: Path) -> None:
    from shoplake.cli import console, print_batch

    report = api.run(with_tickets(workspace, tmp_path, ["lost", "open"] + ["lost"] * 2))
    with console.capture() as captured:
        print_batch(report.batches[0])
    assert "too many rows quarantined: tickets_2026_01_05.csv: 3 of 4 rows (75%)" in captured.get()
