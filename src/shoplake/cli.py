"""The command line: parse options, call the library, show the outcome; exit codes mean something.

0 everything loaded, 1 a batch or file failed, 2 a usage or configuration error.

The console never reads markup: file names, headers, values and messages come from outside and are shown
as they are (a header `[/]` is text, not a closing tag), so styling is applied with `Text` objects only.
"""

from __future__ import annotations

import functools
import logging
import shutil
import signal
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import make_url

from shoplake import api, jsonlog
from shoplake.config import Settings
from shoplake.console import (
    _cell,
    _colour,
    _self_command,
    _shown,
    console,
    history_hint,
    print_batch,
    print_dry_run,
    print_feeds,
    print_history,
    print_kpis,
    print_maintain,
    print_marts,
    print_page,
    print_quarantine,
    print_run,
    say,
)
from shoplake.errors import ConfigError, ShoplakeError
from shoplake.tables import parse_table_ref, quarantine_rows, show_table, top_reasons

app = typer.Typer(help="shoplake: an online shop's file drops in, validated Delta tables and KPIs out.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
# markup and emoji off: text from files and messages is printed as it is (see the module's docstring)
Command = TypeVar("Command", bound=Callable[..., Any])
_state = {"debug": False}


def handle_errors(command: Command) -> Command:
    """One error handler: a plain message and a meaningful exit code; --debug re-raises.

    An error shoplake did not expect is shown the same way (one line, exit 1) rather than as a traceback."""
    command = jsonlog.tracked(command)  # run_started / run_finished events and the run's JSON summary

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except Exception as error:
            if _state["debug"]:
                raise
            known = error if isinstance(error, ShoplakeError) else _unexpected(error)
            say(Text.assemble(("error:", "bold red"), " ", str(known)))
            raise typer.Exit(known.exit_code) from None
    return wrapper  # type: ignore[return-value]


def _unexpected(error: Exception) -> ShoplakeError:
    """An error without a shoplake message, put in one line that says what to do."""
    if isinstance(error, OSError) and error.filename:
        what = f"{error.filename}: {error.strerror or type(error).__name__}"
    else:
        lines = str(error).strip().splitlines()
        what = f"{type(error).__name__}: {lines[0] if lines else 'no message'}"
    return ShoplakeError(f"unexpected error, {what}"[:400],
                         hint="rerun with --debug for the traceback; if the cause is not on your side, report it")


class _ConsoleLog(logging.Handler):
    """Warnings of the landing store (entries it refuses to read) as lines on the console."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            say(Text.assemble((f"{record.levelname.lower()}:", "yellow"), " ", record.getMessage()))
        except Exception:
            self.handleError(record)


_landing_log = _ConsoleLog(logging.WARNING)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of short messages."),
         log_format: str = typer.Option("text", "--log-format", envvar="SHOPLAKE_LOG_FORMAT",
                                        help="text, or json: one JSON event per line on stderr.")) -> None:
    _state["debug"] = debug
    jsonlog.configure(log_format)
    landing_logger = logging.getLogger("shoplake.landing")
    if _landing_log not in landing_logger.handlers:
        landing_logger.addHandler(_landing_log)


ConfigOpt = typer.Option(None, "--config", "-c", help="Settings file (default: ./shoplake.yml if present).")
LandingOpt = typer.Option(None, help="Where files land: a folder or s3://bucket/prefix.")
LakeOpt = typer.Option(None, help="Where the Delta tables live: a folder or s3://bucket/prefix.")
ArchiveOpt = typer.Option(None, help="Where processed/ and failed/ files go (default: next to landing).")
EngineOpt = typer.Option(None, help="Compute engine: duckdb (default) or spark.")


def _settings(config: Path | None, *, existing_lake: bool = False, **overrides: Any) -> Settings:
    """The settings, with the places they name checked first; `existing_lake`: the command reads a lake
    and must not create one."""
    settings = api.settings(config, **overrides)
    jsonlog.note_settings(settings)
    _check_places(settings, existing_lake=existing_lake)
    return settings


def _check_places(settings: Settings, *, existing_lake: bool) -> None:
    """Folders that are files, a lake that is not there, a state store that is not a database: each is
    one usage error naming it, before anything is created or read."""
    for what, place in (("landing", settings.landing), ("archive", settings.archive_dir), ("lake", settings.lake),
                        ("work_dir", settings.work_dir)):
        if isinstance(place, Path) and place.exists() and not place.is_dir():
            raise ConfigError(f"{what} {place.resolve()} is a file, not a folder",
                              hint=f"point {what} at a folder (in shoplake.yml, SHOPLAKE_{what.upper()} or an option)")
    url = make_url(settings.state_db_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return  # a database server: it answers for itself
    state = Path(url.database)
    if not state.exists():
        if existing_lake:
            raise ConfigError(f"there is no lake at {settings.lake} (it has no state store {state})",
                              hint="check --lake or lake in shoplake.yml; `shoplake run` creates a lake")
        return
    try:
        if state.is_dir():
            raise sqlite3.DatabaseError("a folder, not a file")
        with closing(sqlite3.connect(f"{state.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"the lake's state store {state} is damaged ({error})",
                          hint="restore it from a backup; moving it aside starts an empty ledger, in which files "
                          "loaded before are no longer known") from None


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    with Progress(TextColumn("{task.description:<48}", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(step: str, done: int, total: int) -> None:
            bar.update(task, description=step[:48], completed=done, total=total)
        yield update


@app.command()
@handle_errors
def run(
    landing: str = LandingOpt,
    lake: str = LakeOpt,
    archive: str = ArchiveOpt,
    engine: str = EngineOpt,
    config: Path = ConfigOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show how each file would load; write nothing."),
) -> None:
    """Load every waiting file now, one batch per business date: bronze, silver + quarantine, gold."""
    settings = _settings(config, landing=landing, lake=lake, archive=archive, engine=engine)
    if dry_run:
        print_dry_run(api.dry_run(settings))
        return
    with progress_bar() as update:
        report = api.run(settings, progress=update)
    print_run(report)
    if report.failed:
        raise typer.Exit(1)




@app.command()
@handle_errors
def init(
    folder: Path = typer.Argument(Path("."), help="The project folder (created if missing)."),
    export: Path = typer.Option(None, "--from", help="A folder of CSV files: write contracts that fit them."),
) -> None:
    """Create a project: shoplake.yml, contracts/, landing/ and a README; never overwrites a file."""
    report = api.init(folder, export=export)
    for line in report.lines:
        say(line)
    for path in report.written:
        say(f"wrote {path}")
    dry = f" --landing {export}" if export else ""
    say(Text.assemble("next: ", (f"cd {folder} && {_self_command()} run --dry-run{dry}", "bold")))


@app.command()
@handle_errors
def watch(
    landing: str = LandingOpt,
    lake: str = LakeOpt,
    archive: str = ArchiveOpt,
    engine: str = EngineOpt,
    config: Path = ConfigOpt,
) -> None:
    """Run batches as files arrive (trigger file, max_files or max_wait), until Ctrl-C or SIGTERM.

    The first signal lets the batch in flight finish; a second one abandons it (rolled back)."""
    settings = _settings(config, landing=landing, lake=lake, archive=archive, engine=engine)
    watcher = api.watcher(settings, on_batch=print_batch)
    signals = {"count": 0}

    def stop(signum: int, frame: Any) -> None:
        signals["count"] += 1
        if signals["count"] == 1:
            say("stopping: the batch in flight finishes first (signal again to abandon it)")
            watcher.stop.set()
        else:
            raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    b = settings.batching
    say(f"watching {settings.landing} (batch on a trigger file, {b.max_files} files with "
                  f"{', '.join(b.required)}, or {b.max_wait_minutes:g} min after they are all in; "
                  f"files settle {settings.settle_seconds:g} s)")
    try:
        batches = watcher.run()
    except KeyboardInterrupt:
        say(Text.assemble(("abandoned:", "yellow"),
                                    " the batch in flight was rolled back; its files wait for the next start"))
        raise typer.Exit(130) from None
    say(f"stopped after {len(batches)} batch(es)")




@app.command()
@handle_errors
def reprocess(
    batch: str = typer.Option(None, "--batch", help="Every file of this batch."),
    file: str = typer.Option(None, "--file", help="One archived file (its path, archived path or name)."),
    failed: bool = typer.Option(False, "--failed", help="Every file in archive/failed (not duplicates)."),
    landing: str = LandingOpt,
    lake: str = LakeOpt,
    archive: str = ArchiveOpt,
    engine: str = EngineOpt,
    config: Path = ConfigOpt,
) -> None:
    """Load archived files again (after a contract fix), replacing the rows they loaded before."""
    settings = _settings(config, existing_lake=True, landing=landing, lake=lake, archive=archive, engine=engine)
    with progress_bar() as update:
        report = api.reprocess(settings, batch=batch, file=file, failed=failed, progress=update)
    print_run(report)
    if report.failed:
        raise typer.Exit(1)


quarantine_app = typer.Typer(help="Look at and replay quarantined rows.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("replay")
@handle_errors
def quarantine_replay(
    feed: str = typer.Argument(..., help="The feed whose quarantine to check again."),
    landing: str = LandingOpt,
    lake: str = LakeOpt,
    archive: str = ArchiveOpt,
    engine: str = EngineOpt,
    config: Path = ConfigOpt,
) -> None:
    """Check a feed's quarantined rows against the current contract: rows that pass move to silver."""
    settings = _settings(config, existing_lake=True, landing=landing, lake=lake, archive=archive, engine=engine)
    with progress_bar() as update:
        report = api.replay_quarantine(settings, feed, progress=update)
    for batch in report.batches:
        moved = sum(f.rows_loaded for f in batch.files)
        stay = sum(f.rows_quarantined for f in batch.files)
        say(Text.assemble(f"{feed}: {moved:,} row(s) moved to silver, {stay:,} stay in quarantine "
                                    f"(batch {batch.batch_id}, ", _colour(batch.status), ")"))
        if batch.error:
            say(Text(batch.error, style="red"))
    if report.failed:
        raise typer.Exit(1)


@quarantine_app.command("show")
@handle_errors
def quarantine_show(
    feed: str = typer.Argument(..., help="The feed whose quarantined rows to show."),
    rule: str = typer.Option(None, "--rule", help="Only rows that failed this rule (e.g. status.accepted_values)."),
    file: str = typer.Option(None, "--file", help="Only rows of this file (its path in landing or its name)."),
    limit: int = typer.Option(20, "--limit", min=1, help="Show at most this many rows."),
    lake: str = LakeOpt,
    engine: str = EngineOpt,
    config: Path = ConfigOpt,
) -> None:
    """Show quarantined rows as they came: file, row, every reason, and the raw values."""
    settings = _settings(config, existing_lake=True, lake=lake, engine=engine)
    page = quarantine_rows(settings, feed, rule=rule, file=file, limit=limit)
    say(f"{page.table}: {len(page.rows):,} of {page.matched:,} row(s)")
    # one block per row, every reason on its own line: reasons are sentences, too long for a table cell
    for source, row_number, reasons, *values in page.rows:
        say(Text.assemble("\n", (f"{_shown(source)} row {row_number}", "bold")))
        for reason in reasons or []:
            say(Text.assemble("  ", ("reason:", "red"), " ", _shown(reason)))
        say(Text("  " + ", ".join(f"{_shown(name)}={_cell(value).plain}"
                                  for name, value in zip(page.columns[3:], values, strict=True))))
    if rule is not None and not page.matched:
        rules = [name for name, _ in top_reasons(settings, feed, limit=50)]
        say(f"rules failed in quarantine/{feed}: {', '.join(rules) if rules else 'none'}")


@app.command()
@handle_errors
def show(
    name: str = typer.Argument(..., metavar="LAYER/TABLE", help="e.g. silver/orders or gold/agg_daily_sales."),
    where: str = typer.Option(None, "--where", help="Only rows for which this SQL condition over the table's "
                              "columns holds, written like a contract rule: \"status = 'cancelled'\"."),
    limit: int = typer.Option(20, "--limit", min=1, help="Show at most this many rows."),
    as_of: str = typer.Option(None, "--as-of", metavar="VERSION|TIMESTAMP", help="The table as it was at a Delta "
                              "version, or at a moment (ISO, UTC unless an offset is given)."),
    lake: str = LakeOpt,
    engine: str = EngineOpt,
    config: Path = ConfigOpt,
) -> None:
    """Show rows of any lake table (bronze, silver, quarantine or gold), now or as it was."""
    layer, table = parse_table_ref(name)
    settings = _settings(config, existing_lake=True, lake=lake, engine=engine)
    print_page(show_table(settings, layer, table, where=where, limit=limit, as_of=as_of))


@app.command()
@handle_errors
def history(
    name: str = typer.Argument(..., metavar="LAYER/TABLE", help="e.g. silver/customers."),
    key: list[str] = typer.Option(..., "--key", help="The key's value, or COLUMN=VALUE for each column of a "
                                  "composite key (repeat --key)."),
    lake: str = LakeOpt,
    engine: str = EngineOpt,
    config: Path = ConfigOpt,
) -> None:
    """Show a key's versions in an SCD2 table (validity, tracked values, batch and file), or its rows in another."""
    parse_table_ref(name)
    settings = _settings(config, existing_lake=True, lake=lake, engine=engine)
    print_history(api.history(settings, name, key))


@app.command()
@handle_errors
def maintain(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be deleted; change nothing."),
    landing: str = LandingOpt,
    lake: str = LakeOpt,
    archive: str = ArchiveOpt,
    engine: str = EngineOpt,
    config: Path = ConfigOpt,
) -> None:
    """Compact small files, vacuum old table versions and delete archived files past retention (`maintenance:`)."""
    settings = _settings(config, existing_lake=True, landing=landing, lake=lake, archive=archive, engine=engine)
    with progress_bar() as update:
        report = api.maintain(settings, dry_run=dry_run, progress=update)
    print_maintain(report)










@app.command()
@handle_errors
def status(config: Path = ConfigOpt, lake: str = LakeOpt, limit: int = 30,
           runs: bool = typer.Option(False, "--runs", help="The last LIMIT runs: stage timings, rows, Delta versions.")
           ) -> None:
    """Show the file ledger and recent batches (or, with --runs, the run history)."""
    settings = _settings(config, lake=lake, existing_lake=True)
    if runs:
        from shoplake.runs import print_runs

        return print_runs(settings, limit)
    state = api.status(settings, limit=limit)
    batches = Table(title="batches (newest first)")
    for name in ("batch", "date", "engine", "status", "files", "read", "loaded", "quarantined", "error"):
        batches.add_column(name)
    for b in state.batches:
        batches.add_row(b["batch_id"], str(b["business_date"]), b["engine"], _colour(b["status"]), str(b["files"]),
                        str(b["rows_read"]), str(b["rows_loaded"]), str(b["rows_quarantined"]), (b["error"] or "")[:60])
    console.print(batches)
    files = Table(title="file ledger (newest first)")
    for name in ("file", "feed", "date", "status", "read", "loaded", "quar.", "dup.", "error / archived to"):
        files.add_column(name)
    for f in state.files:
        files.add_row(Path(f.path).name, f.feed or "-", str(f.business_date), _colour(f.status),
                      *(str(v) if v is not None else "" for v in
                        (f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)),
                      (f.error or (f"deleted {f.archive_deleted_at:%Y-%m-%d} (maintain): {f.archived_path}"
                                   if f.archive_deleted_at else f.archived_path) or "")[:70])
    console.print(files)


@app.command()
@handle_errors
def generate(
    out: Path = typer.Option(Path("landing"), help="Folder to write the files into."),
    days: int = typer.Option(2, min=1),
    scale: float = typer.Option(0.01, min=0.0001, help="1 = 1M orders, 2.5M items, 200k customers a day."),
    defect_rate: float = typer.Option(0.0, min=0.0, max=0.5, help="Share of rows carrying a realistic defect."),
    seed: int = typer.Option(42),
    start: str = typer.Option("2026-01-05", help="First business date (YYYY-MM-DD)."),
) -> None:
    """Write realistic sample feeds: one file per feed and day, plus a trigger file per day."""
    from shoplake.generate import generate as make

    with progress_bar() as update:
        report = make(out, days=days, scale=scale, defect_rate=defect_rate, seed=seed,
                      start=date.fromisoformat(start), progress=update)
    say(f"wrote {len(report.files)} files to {out}")


@app.command()
@handle_errors
def demo(
    folder: Path = typer.Option(Path("demo"), help="Replaced on each demo: landing/, lake/, archive/ under it."),
    scale: float = typer.Option(0.01),
    days: int = typer.Option(2),
) -> None:
    """Generate two days of feeds with defects, run them, and show what landed where."""
    from shoplake.generate import generate as make

    if folder.exists():
        shutil.rmtree(folder)
    landing = folder / "landing"
    say(Text.assemble(("1/2", "bold"), f" generating {days} days at scale {scale} with 2% defects into "
                                f"{landing}"))
    with progress_bar() as update:
        make(landing, days=days, scale=scale, defect_rate=0.02, seed=7, progress=update)
    settings = Settings(landing=landing, lake=folder / "lake", archive=folder / "archive")
    say(Text.assemble(("2/2", "bold"), " running the pipeline"))
    with progress_bar() as update:
        report = api.run(settings, progress=update)
    print_feeds(report)
    print_quarantine(settings, report)
    print_kpis(settings)
    print_marts(settings)
    say(f"\ntables: {settings.tables_root}/{{bronze,silver,quarantine,gold}}/<name> (Delta Lake)")
    say(f"archive: {settings.archive_dir}   ledger: {settings.state_db_url}")
    say(Text.assemble("next: ", (f"{_self_command()} status --lake {settings.lake}", "bold")))
    hint = history_hint(settings)
    if hint:
        say(Text.assemble("a customer's versions: ", (hint, "bold")))


from shoplake.commands import check as check_command  # noqa: E402  (commands/ register themselves)
from shoplake.commands import dashboard as dashboard_command  # noqa: E402
from shoplake.commands import monitor as monitor_command  # noqa: E402
from shoplake.commands import publish as publish_command  # noqa: E402

check_command.register(app)
dashboard_command.register(app)
monitor_command.register(app)
publish_command.register(app)

if __name__ == "__main__":
    app()
