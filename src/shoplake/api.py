"""The public facade: what a notebook, a scheduler or the CLI calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoplake.config import Settings, load_settings
from shoplake.contracts import ContractSet, load_contracts
from shoplake.landing.ledger import FileRow, Ledger
from shoplake.notify import Notifier, Notifiers
from shoplake.pipeline import BatchOutcome, Progress, RunReport
from shoplake.pipeline import run as _run
from shoplake.reprocess import replay_quarantine as _replay
from shoplake.reprocess import reprocess as _reprocess
from shoplake.watch import Watcher

if TYPE_CHECKING:
    from shoplake.dryrun import DryRunReport
    from shoplake.maintain import MaintainReport
    from shoplake.onboarding import InitReport
    from shoplake.tables import KeyHistory


def settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from shoplake.yml, SHOPLAKE_* variables and the given overrides."""
    return load_settings(config_file, **overrides)


def run(config: Settings | None = None, *, progress: Progress | None = None,
        notifiers: list[Notifier] | None = None, **overrides: Any) -> RunReport:
    """Load every waiting file of the landing store now; see RunReport for what happened to each."""
    return _run(config or load_settings(**overrides), progress,
                Notifiers(notifiers) if notifiers is not None else None)


def watcher(config: Settings | None = None, *, on_batch: Callable[[BatchOutcome], None] | None = None,
            notifiers: list[Notifier] | None = None) -> Watcher:
    """A watcher for the landing store; `.run()` blocks until `.stop` is set (from another thread or a
    signal handler)."""
    return Watcher(config or load_settings(), on_batch=on_batch,
                   notifiers=Notifiers(notifiers) if notifiers is not None else None)


def watch(config: Settings | None = None, **overrides: Any) -> list[BatchOutcome]:
    """Run batches as files arrive, until interrupted; returns the batches run."""
    return watcher(config or load_settings(**overrides)).run()


def reprocess(config: Settings | None = None, *, batch: str | None = None, file: str | None = None,
              failed: bool = False, progress: Progress | None = None) -> RunReport:
    """Load archived files again (a batch, one file, or every failed file), replacing their earlier rows."""
    return _reprocess(config or load_settings(), batch=batch, file=file, failed=failed, progress=progress)


def replay_quarantine(config: Settings | None, feed: str, *, progress: Progress | None = None) -> RunReport:
    """Check a feed's quarantined rows again: those that pass move to silver, the rest keep new reasons."""
    return _replay(config or load_settings(), feed, progress=progress)


def dry_run(config: Settings | None = None, **overrides: Any) -> DryRunReport:
    """How every waiting file would load (feed, rows, quarantine reasons, missing model columns); writes nothing."""
    from shoplake.dryrun import dry_run as _dry_run

    return _dry_run(config or load_settings(**overrides))


def init(folder: Path, *, export: Path | None = None) -> InitReport:
    """Create a project in `folder`; with `export`, overlay contracts fitted to that folder's CSV files."""
    from shoplake.onboarding import init_project

    return init_project(folder, export=export)


def contracts(config: Settings | None = None) -> ContractSet:
    """The contracts in force: the built-in pack with the project's overrides."""
    return load_contracts((config or load_settings()).contracts)


def maintain(config: Settings | None = None, *, dry_run: bool = False,
             progress: Progress | None = None) -> MaintainReport:
    """Compact and vacuum every lake table and delete archived files past their retention (`maintenance:`
    settings); holds the lake like a batch. `dry_run`: list what would be deleted, change nothing."""
    from shoplake.maintain import maintain as _maintain

    return _maintain(config or load_settings(), dry_run=dry_run, progress=progress)


def history(config: Settings | None, table: str, key: list[str]) -> KeyHistory:
    """A key's versions in an SCD2 table, or its rows in another (`table` as LAYER/TABLE; `key` one value
    or COLUMN=VALUE parts)."""
    from shoplake.tables import key_history, parse_table_ref

    layer, name = parse_table_ref(table)
    return key_history(config or load_settings(), layer, name, key)


@dataclass(frozen=True)
class Status:
    files: list[FileRow]
    batches: list[dict[str, Any]]


def status(config: Settings | None = None, *, limit: int = 50) -> Status:
    """The file ledger (newest first) and recent batches."""
    config = config or load_settings()
    ledger = Ledger(config.state_db_url)
    try:
        return Status(files=ledger.file_rows(limit), batches=ledger.batch_rows(limit))
    finally:
        ledger.close()
