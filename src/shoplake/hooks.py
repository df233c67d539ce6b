"""What happens around a batch's transaction: the points where the audit, run history, lineage and alerts
attach, without the stage code knowing about any of them.

A batch's transaction calls every hook in order:
  started      the batch is in the ledger and its files are queued; nothing is written yet
  written      every table the batch writes (bronze, quarantine, silver, gold) is written; the batch is
               not committed, and the ledger still records every table's previous version
  audit        each hook may return check results; one failed error-level result fails the batch
  audited      every hook sees all the results (stored, reported)
  committed    the batch is committed in the ledger: its versions are the ones readers see
  rolled_back  the batch failed (a rule, an audit, a write error) and every table is back at the version
               it had before the batch; `error` says why
A hook that raises in `started`, `written` or `audit` fails the batch; an exception in `audited`,
`committed` or `rolled_back` is logged and never undoes a decision already taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from shoplake.config import Settings
    from shoplake.contracts import ContractSet
    from shoplake.engines import Engine
    from shoplake.landing.ledger import Ledger
    from shoplake.layers.gold import Model
    from shoplake.outcomes import BatchOutcome

Severity = Literal["error", "warn"]


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one batch: the rows its query returned (the offending rows)."""

    name: str
    severity: Severity
    passed: bool
    failing_rows: int
    description: str = ""
    samples: tuple[dict[str, Any], ...] = ()  # up to 20 offending rows, values as text


@dataclass
class BatchContext:
    """What a hook may read about the batch; filled in as the transaction moves on."""

    batch_id: str
    business_date: date
    kind: str  # load | reprocess | replay
    settings: Settings
    engine: Engine
    ledger: Ledger
    lake: str
    outcome: BatchOutcome
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds spent by this batch
    versions_before: dict[str, int | None] = field(default_factory=dict)  # table path -> version before
    versions_written: dict[str, int | None] = field(default_factory=dict)  # table path -> version after
    checks: list[CheckResult] = field(default_factory=list)  # the audit's results, once audited


class BatchHook:
    """A hook does nothing unless it overrides a method; subclass and override what you need."""

    def started(self, batch: BatchContext) -> None:
        return None

    def written(self, batch: BatchContext) -> None:
        return None

    def audit(self, batch: BatchContext) -> list[CheckResult]:
        return []

    def audited(self, batch: BatchContext, results: list[CheckResult]) -> None:
        return None

    def committed(self, batch: BatchContext) -> None:
        return None

    def rolled_back(self, batch: BatchContext, error: str) -> None:
        return None


def batch_hooks(settings: Settings, *, contracts: ContractSet | None = None,
                models: list[Model] | None = None) -> list[BatchHook]:
    """The hooks every batch of a session runs, in order (each module adds its own here); `contracts`
    and `models`: the session's, loaded once (each hook loads the settings' own without them)."""
    hooks: list[BatchHook] = []
    from shoplake.quality.audit import AuditHook  # write-audit-publish: the checks gate gold (quality/)
    hooks.append(AuditHook(settings, contracts=contracts, models=models))
    from shoplake.lineage import run_observers  # run history, and OpenLineage events when `lineage:` is set
    hooks.extend(run_observers(settings))
    from shoplake.publish import publish_hooks  # gold to PostgreSQL once committed, when `publish:` is set
    hooks.extend(publish_hooks(settings))
    from shoplake.jsonlog import JsonEvents  # batch_started / batch_finished events, the run's JSON summary
    hooks.append(JsonEvents())
    return hooks
