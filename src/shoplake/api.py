"""The public facade: what a notebook, a scheduler or the CLI calls."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoplake.config import Settings, load_settings
from shoplake.contracts import ContractSet, load_contracts
from shoplake.landing.ledger import FileRow, Ledger
from shoplake.pipeline import Progress, RunReport
from shoplake.pipeline import run as _run


def settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from shoplake.yml, SHOPLAKE_* variables and the given overrides."""
    return load_settings(config_file, **overrides)


def run(config: Settings | None = None, *, progress: Progress | None = None, **overrides: Any) -> RunReport:
    """Load every waiting file of the landing folder; see RunReport for what happened to each."""
    return _run(config or load_settings(**overrides), progress)


def contracts(config: Settings | None = None) -> ContractSet:
    """The contracts in force: the built-in pack with the project's overrides."""
    return load_contracts((config or load_settings()).contracts)


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
