"""Machine-readable runs: `--log-format json` turns shoplake's log into one JSON event per line on stderr,
and every command run leaves a JSON summary (`<lake>/_state/runs/<run_id>.json`) that its last event names.

Events are the records of the `shoplake` loggers: the notifier's (`shoplake.events`, see notify.py), the
batch hook below, and the run's start and end (`tracked`, around every CLI command). The schemas are in the
README ("Machine-readable runs"); `SCHEMA` versions them.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from shoplake.hooks import BatchContext, BatchHook
from shoplake.landing.ledger import FAILED
from shoplake.notify import FILE_FAILED, Event

if TYPE_CHECKING:
    from shoplake.config import Settings
    from shoplake.outcomes import BatchOutcome

SCHEMA = 1  # bumped when a field changes meaning or goes away (new fields may come at any time)
FORMATS = ("text", "json")
# What an exit code means, in the summary and the last event (0 ok, 1 failed batch or check, 2 configuration).
STATUSES = {0: "succeeded", 1: "failed", 2: "configuration_error", 130: "interrupted"}
# The notifier's kinds as events: a file that could not be loaded is rejected (it went to archive/failed/).
EVENT_NAMES = {FILE_FAILED: "file_rejected"}

log = logging.getLogger("shoplake.events")
Command = TypeVar("Command", bound=Callable[..., Any])


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Run:
    """The command being run: what its summary will say."""

    run_id: str
    command: str
    argv: list[str]
    started_at: datetime
    settings: Settings | None = None
    batches: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    retryable: bool = False  # the error is one a plain retry can cure (a lock held, a network blip)


_state: dict[str, Any] = {"run": None}


def current() -> Run | None:
    run: Run | None = _state["run"]
    return run


def new_run_id() -> str:
    """Sortable by time, unique across machines: `20260105T063000Z-1a2b3c4d`."""
    return f"{utc_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def event_payload(record: logging.LogRecord) -> dict[str, Any]:
    """A log record as an event: a shoplake event keeps its fields, any other record is a `log` event."""
    payload: dict[str, Any] | None = getattr(record, "shoplake", None)
    notified: Event | None = getattr(record, "shoplake_event", None)
    if notified is not None:
        payload = {"event": EVENT_NAMES.get(notified.kind, notified.kind), "level": notified.urgency,
                   "message": notified.message, "batch_id": notified.batch_id, "file": notified.file,
                   "details": notified.details}
    if payload is None:
        payload = {"event": "log", "level": record.levelname.lower(), "logger": record.name,
                   "message": record.getMessage()}
    run = current()
    head = {"schema": SCHEMA, "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "run_id": run.run_id if run else None}
    return {**head, **payload}


class JsonFormatter(logging.Formatter):
    """One event, one line of JSON: values that are not JSON (dates, paths) as their text."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(event_payload(record), default=str, ensure_ascii=False)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the stderr of the moment (a test runner swaps it), not the one at start."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_handler = _Stderr()
_handler.setFormatter(JsonFormatter())


def configure(log_format: str) -> None:
    """`text` (the default): the console as it is; `json`: every `shoplake` log record as a JSON line on
    stderr, and nothing of shoplake's log elsewhere (stderr stays parseable)."""
    import typer

    if log_format not in FORMATS:
        raise typer.BadParameter(f"{log_format!r} is not one of {', '.join(FORMATS)}", param_hint="--log-format")
    root = logging.getLogger("shoplake")
    _state["json"] = log_format == "json"
    if _state["json"]:
        if _handler not in root.handlers:
            root.addHandler(_handler)
        root.setLevel(logging.INFO)
        root.propagate = False
    elif _handler in root.handlers:
        root.removeHandler(_handler)
        root.setLevel(logging.NOTSET)
        root.propagate = True


def emit(event: str, message: str, **fields: Any) -> None:
    """An event on `shoplake.events` at INFO: a JSON line in json mode, quiet otherwise."""
    log.info("%s: %s", event, message, extra={"shoplake": {"event": event, "level": "info", "message": message,
                                                          **fields}})


def note_settings(settings: Settings) -> None:
    """The settings the command works on: where its summary goes."""
    run = current()
    if run is not None:
        run.settings = settings


def summary_path(run: Run) -> Path | None:
    """`<lake>/_state/runs/<run_id>.json` (a remote lake: under work_dir); None before settings are known."""
    if run.settings is None:
        return None
    return run.settings.scratch / "_state" / "runs" / f"{run.run_id}.json"


def batch_record(outcome: BatchOutcome, kind: str, checks: list[Any] | None = None) -> dict[str, Any]:
    """A batch as the `batch_finished` event and the summary show it."""
    files = outcome.files
    record: dict[str, Any] = {
        "batch_id": outcome.batch_id, "business_date": outcome.business_date.isoformat(), "kind": kind,
        "status": outcome.status, "reason": outcome.reason, "error": outcome.error,
        "files": len(files), "files_failed": sum(1 for f in files if f.status == FAILED),
        **{k: sum(getattr(f, k) for f in files)
           for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")}}
    if checks is not None:
        record["checks"] = len(checks)
        record["checks_failed"] = sorted(r.name for r in checks if not r.passed)
    return record


class JsonEvents(BatchHook):
    """`batch_started` and `batch_finished` events, and the batch in the run's summary."""

    def started(self, batch: BatchContext) -> None:
        emit("batch_started", f"batch {batch.batch_id} for {batch.business_date} started",
             batch_id=batch.batch_id, business_date=batch.business_date.isoformat(), kind=batch.kind)

    def committed(self, batch: BatchContext) -> None:
        self._finished(batch)

    def rolled_back(self, batch: BatchContext, error: str) -> None:
        self._finished(batch)

    def _finished(self, batch: BatchContext) -> None:
        record = batch_record(batch.outcome, batch.kind, batch.checks)
        record["files_detail"] = [
            {"file": f.file, "feed": f.feed, "status": f.status, "rows_read": f.rows_read,
             "rows_loaded": f.rows_loaded, "rows_quarantined": f.rows_quarantined,
             "rows_duplicate": f.rows_duplicate, "error": f.error, "archived_to": f.archived_to}
            for f in batch.outcome.files]
        run = current()
        if run is not None:
            run.settings = run.settings or batch.settings
            run.batches.append(record)
            run.rejected.extend(f for f in record["files_detail"] if f["status"] == FAILED)
        fields = {k: v for k, v in record.items() if k != "files_detail"}
        emit("batch_finished", f"batch {batch.batch_id} {batch.outcome.status}", **fields)


def write_summary(run: Run, exit_code: int, error: str | None, finished_at: datetime) -> Path | None:
    """The run's summary as JSON, written whole (a reader never sees half a file)."""
    path = summary_path(run)
    # No lake yet (a configuration error stopped the command before it made one): a summary must not create it.
    if path is None or run.settings is None or not Path(run.settings.scratch).is_dir():
        return None
    totals = {k: sum(b[k] for b in run.batches)
              for k in ("files", "files_failed", "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")}
    summary = {"schema": SCHEMA, "run_id": run.run_id, "command": run.command, "argv": run.argv,
               "status": STATUSES.get(exit_code, STATUSES[1]), "exit_code": exit_code, "error": error,
               "retryable": run.retryable,
               "started_at": run.started_at.isoformat(), "finished_at": finished_at.isoformat(),
               "seconds": round((finished_at - run.started_at).total_seconds(), 3),
               "lake": str(run.settings.tables_root) if run.settings else None,
               "batches": run.batches, "files_rejected": run.rejected, "totals": totals}
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".json.part")
    part.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    part.replace(path)
    return path


def exit_status(error: BaseException) -> tuple[int, str | None]:
    """The exit code an exception leaves the CLI with, and the one-line message a reader needs."""
    import click
    import typer

    from shoplake.errors import ShoplakeError

    if isinstance(error, (typer.Exit, click.exceptions.Exit)):
        return error.exit_code, None
    if isinstance(error, (KeyboardInterrupt, typer.Abort, click.exceptions.Abort)):
        return 130, "interrupted"
    if isinstance(error, SystemExit):
        return error.code if isinstance(error.code, int) else 1, None
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else type(error).__name__
    return (error.exit_code if isinstance(error, ShoplakeError) else 1), message


def start_run(command: str, argv: list[str] | None = None, settings: Settings | None = None) -> Run:
    """A run begins: the `run_started` event; batches from now on belong to it (see `finish_run`)."""
    run = Run(new_run_id(), command, list(argv or []), utc_now(), settings)
    _state["run"] = run
    emit("run_started", f"{command} started", command=command, argv=run.argv)
    return run


def finish_run(run: Run, exit_code: int, error: str | None, *, write: bool = True) -> Path | None:
    """A run ends: its summary written (`write`, and the settings known), then the `run_finished` event."""
    _state["run"] = None
    finished = utc_now()
    path = write_summary(run, exit_code, error, finished) if write else None
    status = STATUSES.get(exit_code, STATUSES[1])
    emit("run_finished", f"{run.command} {status} (exit {exit_code})", run_id=run.run_id, command=run.command,
         status=status, exit_code=exit_code, error=error, retryable=run.retryable, batches=len(run.batches),
         files_rejected=len(run.rejected),
         seconds=round((finished - run.started_at).total_seconds(), 3), summary=str(path) if path else None)
    return path


def tracked(command: Command) -> Command:
    """A CLI command with `run_started` before it and `run_finished` (status, exit code, summary) after it;
    the summary is written in json mode, and in text mode when the command ran a batch."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current() is not None:  # a command called by another: one run
            return command(*args, **kwargs)
        run = start_run(_command_path(command), sys.argv[1:])
        exit_code, error = 0, None
        try:
            return command(*args, **kwargs)
        except BaseException as failure:
            exit_code, error = exit_status(failure)
            run.retryable = bool(getattr(failure, "retryable", False))
            raise
        finally:
            finish_run(run, exit_code, error, write=bool(_state.get("json") or run.batches))
    return wrapper  # type: ignore[return-value]


def _command_path(command: Callable[..., Any]) -> str:
    """`run`, `quarantine replay`: the command as typed, else the function's name."""
    import click

    context = click.get_current_context(silent=True)
    if context is None:
        return command.__name__
    return " ".join(context.command_path.split()[1:]) or command.__name__
