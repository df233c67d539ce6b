"""`shoplake publish`: the lake's gold (and, seed-style, silver and bronze) into PostgreSQL now, under the
lake's lease so that no batch is half-written meanwhile; exit 1 when a table failed, 2 without a target."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table


def register(app: typer.Typer) -> None:
    from shoplake.cli import ConfigOpt, LakeOpt, _settings, handle_errors
    from shoplake.console import _cell, console, say

    @app.command()
    @handle_errors
    def publish(
        to: str = typer.Option(None, "--to", help="postgresql://user@host:port/database (default: publish.url of "
                               "shoplake.yml); the password comes from PGPASSWORD or ~/.pgpass."),
        lake: str = LakeOpt,
        config: Path = ConfigOpt,
    ) -> None:
        """Publish gold to PostgreSQL with keys, foreign keys, indexes and comments; only what changed."""
        from pydantic import ValidationError

        from shoplake.config import Publish
        from shoplake.errors import ConfigError
        from shoplake.pipeline import Session
        from shoplake.publish import publish as publish_lake

        settings = _settings(config, existing_lake=True, lake=lake)
        if to is not None:  # checked here, before the lake's lease is taken (a configuration error touches nothing)
            try:
                Publish.model_validate({"url": to})
            except ValidationError as error:
                raise ConfigError(f"--to: {error.errors(include_url=False)[0]['msg']}") from None
        elif settings.publish is None:
            raise ConfigError("nothing to publish to", hint="pass --to postgresql://user@host/db or set publish: "
                              "in shoplake.yml")
        with Session(settings):
            report = publish_lake(settings, to=to)
        table = Table(title=f"published to {report.target}")
        for name in ("table", "version", "action", "rows copied", "partitions", "seconds"):
            table.add_column(name)
        for t in report.tables:
            table.add_row(_cell(f"{t.schema}.{t.table}"), str(t.version), t.action, str(t.rows_copied),
                          "" if t.partitions is None else str(t.partitions), f"{t.seconds:.2f}")
        console.print(table)
        if report.skipped:
            say(f"not in the lake yet: {', '.join(report.skipped)}")
        say(f"{report.rows_copied} row(s) copied in {report.seconds:.1f} s")
