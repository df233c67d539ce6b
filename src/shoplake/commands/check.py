"""`shoplake check`: every check on the lake's current tables now (exit 1 when an error check fails), or
`--history`: the results stored for the last batches."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from shoplake.hooks import CheckResult

SHOWN_SAMPLES = 3  # sample rows printed per failing check (all 20 are in the history and the report)


def _passed(passed: bool | None) -> Text:
    if passed is None:
        return Text("skipped", style="dim")
    return Text("yes", style="green") if passed else Text("NO", style="bold red")


def register(app: typer.Typer) -> None:
    from shoplake.cli import ConfigOpt, EngineOpt, LakeOpt, _settings, handle_errors
    from shoplake.console import _cell, _shown, console, say

    def print_samples(results: list[CheckResult]) -> None:
        for result in results:
            if result.passed:
                continue
            say(Text.assemble((f"{result.name}", "bold"), f": {_shown(result.description)}"))
            for row in result.samples[:SHOWN_SAMPLES]:
                say(Text("  " + _shown(json.dumps(row, default=str))))

    @app.command()
    @handle_errors
    def check(
        lake: str = LakeOpt,
        engine: str = EngineOpt,
        config: Path = ConfigOpt,
        history: bool = typer.Option(False, "--history", help="Show the stored results of the last batches."),
        batches: int = typer.Option(5, "--batches", min=1, help="With --history: how many batches."),
    ) -> None:
        """Run every check (built-in, generated from the models' keys, the project's checks/) on the lake now."""
        settings = _settings(config, existing_lake=True, lake=lake, engine=engine)
        if history:
            from shoplake.landing.ledger import Ledger
            from shoplake.quality.history import results_history

            store = Ledger(settings.state_db_url)
            try:
                stored = results_history(store, batches=batches)
            finally:
                store.close()
            table = Table(title=f"check results of the last {batches} audited batches (newest first)")
            for name in ("batch", "checked at", "check", "severity", "passed", "rows"):
                table.add_column(name)
            for row in stored:
                table.add_row(row.batch_id, row.checked_at.isoformat(sep=" ", timespec="seconds"),
                              _cell(row.check_name), row.severity, _passed(row.passed), str(row.failing_rows))
            console.print(table)
            if not stored:
                say("no batch has been audited yet")
            return
        from shoplake.quality.audit import check_lake

        found = check_lake(settings)
        table = Table(title="checks on the lake's current tables")
        for name in ("check", "severity", "passed", "rows"):
            table.add_column(name)
        for r in found.run.results:
            table.add_row(_cell(r.name), r.severity, _passed(r.passed), str(r.failing_rows))
        severities = {c.name: c.severity for c in found.checks}
        for name, why in found.run.skipped.items():
            table.add_row(_cell(name), severities.get(name, ""), _passed(None), _cell(why))
        console.print(table)
        print_samples(found.run.results)
        failed = found.run.failed_errors
        runs = len(found.run.results)
        say(f"{runs} checks run, {sum(not r.passed for r in found.run.results)} failed "
            f"({len(failed)} error, {sum(not r.passed and r.severity != 'error' for r in found.run.results)} warn), "
            f"{len(found.run.skipped)} skipped")
        if failed:
            raise typer.Exit(1)
