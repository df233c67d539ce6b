"""`shoplake monitor`: the lake's health report as JSON, a short summary, alerts; exit 1 when anything is critical."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import typer
from rich.text import Text

from shoplake.config import Settings
from shoplake.errors import ConfigError
from shoplake.monitor_findings import Code, Level
from shoplake.notify import LogNotifier, Notifiers

STDOUT = "-"  # --out -: the JSON report on standard output instead of the summary


def register(app: typer.Typer) -> None:
    from shoplake import api
    from shoplake.cli import ConfigOpt, LakeOpt, handle_errors
    from shoplake.console import _shown, say

    @app.command()
    @handle_errors
    def monitor(
        lake: str = LakeOpt,
        config: Path = ConfigOpt,
        out: str = typer.Option(None, "--out", help="Where the JSON report goes (default: <lake>/monitor/"
                                "report.json; - for standard output)."),
        at: str = typer.Option(None, "--at", help="Judge as of this UTC time (ISO 8601), e.g. a lake of past dates."),
        notify: bool = typer.Option(True, "--notify/--no-notify", help="Send the findings to the alert channels."),
    ) -> None:
        """Check the lake and its store, batches, freshness, volume and quarantine rate of every feed."""
        from shoplake import monitor as monitoring

        settings = api.settings(config, lake=lake)
        moment = _moment(at)
        report = monitoring.monitor(settings, now=moment)
        path = None if out == STDOUT else Path(out) if out else monitoring.default_report_path(settings)
        if path is not None:
            monitoring.write_report(report, path)
        if notify:
            monitoring.notify(report, _channels(settings, store_ok=not any(
                f.code == Code.STORE_UNREACHABLE for f in report.findings)))
        if out == STDOUT:
            sys.stdout.write(json.dumps(report.as_json(), indent=2) + "\n")
        else:
            style = {"ok": "green", "warning": "yellow", "critical": "bold red"}[report.status]
            say(Text.assemble(("monitor:", "bold"), " ", (report.status, style),
                              f" ({len(report.critical)} critical, {len(report.warnings)} warning) "
                              f"lake {_shown(report.lake)}, store {_shown(report.state_store)}"))
            for finding in report.findings:
                colour = "red" if finding.level == Level.CRITICAL else "yellow"
                say(Text.assemble((f"  {finding.level.value:<8}", colour), f" {finding.check.value:<12} ",
                                  _shown(finding.message)))
            checks = ", ".join(f"{name} {state}" for name, state in report.checks.items())
            say(f"checks: {checks}")
            say(f"report: {path}" if path is not None else
                "report: not written (the lake folder is missing; --out names a place)")
        if report.exit_code:
            raise typer.Exit(report.exit_code)


def _moment(at: str | None) -> datetime | None:
    if at is None:
        return None
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        raise ConfigError(f"--at {at!r} is not a time", hint="write it like 2026-01-12T06:00 (UTC) or with a zone, "
                          "2026-01-12T07:00+01:00") from None


def _channels(settings: Settings, *, store_ok: bool) -> Notifiers:
    """The configured alert channels without the log (the summary shows every finding already); none when
    the store cannot be read, since the channels remember there what they sent."""
    from shoplake.alerts import alert_notifiers

    if not store_ok:
        return Notifiers([])
    channels = alert_notifiers(settings)
    return Notifiers([n for n in channels.notifiers if not isinstance(n, LogNotifier)])
