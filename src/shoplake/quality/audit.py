"""Write-audit-publish: every check runs on the tables a batch wrote before the batch commits; a failed
error-level check fails the batch, so its transaction restores every table and gold stays at the
version readers saw. `check_lake` runs the same checks on demand, on the lake's current tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shoplake.config import Settings
from shoplake.contracts import ContractSet, LoadMode, load_contracts
from shoplake.engines import open_engine
from shoplake.hooks import BatchContext, BatchHook, CheckResult
from shoplake.landing import ledger as ledger_module
from shoplake.landing.storage import open_store
from shoplake.layers import gold
from shoplake.layers.gold import HISTORY, Model
from shoplake.quality import history
from shoplake.quality.checks import GOLD, SILVER, Check, load_checks
from shoplake.quality.generated import generated_checks
from shoplake.quality.runner import AuditedFile, CheckRun, run_checks

PASSED = "passed"
FAILED = "failed"


@dataclass(frozen=True)
class Suite:
    """The checks in force and what they run against: the contracts and models of the settings."""

    checks: list[Check]
    contracts: ContractSet
    models: list[Model]


def load_suite(settings: Settings, *, contracts: ContractSet | None = None,
               models: list[Model] | None = None) -> Suite:
    """The built-in, generated and project checks; a bad check file is a CheckError (configuration).
    `contracts`, `models`: the settings' own, when the caller has loaded them already."""
    contracts = contracts if contracts is not None else load_contracts(settings.contracts)
    models = models if models is not None else gold.load_models(settings.models, contracts=contracts)
    known = {(GOLD, m.name) for m in models} | {(SILVER, c.feed) for c in contracts} | {
        (SILVER, c.feed + HISTORY) for c in contracts if c.load.mode is LoadMode.SCD2}
    return Suite(load_checks(list(settings.checks), generated_checks(models, contracts), known), contracts, models)


class AuditHook(BatchHook):
    """Audits every batch (`audit`) and keeps the verdict (`audited`): results in `check_results`, the
    validation report in `<archive>/validation-reports/<batch_id>.json`."""

    def __init__(self, settings: Settings, *, contracts: ContractSet | None = None,
                 models: list[Model] | None = None) -> None:
        # Loaded when the session starts, so a bad check file stops the run before a file is touched.
        self.suite = load_suite(settings, contracts=contracts, models=models)
        self.archive = open_store(settings.archive_dir)
        self.skipped: dict[str, dict[str, str]] = {}  # batch -> check -> why it did not run
        self.reports: dict[str, str] = {}  # batch -> where its validation report is

    def audit(self, batch: BatchContext) -> list[CheckResult]:
        files = [AuditedFile.of(f) for f in batch.outcome.files
                 if f.status not in (ledger_module.FAILED, ledger_module.WAITING)]
        run = run_checks(batch.engine, self.suite.checks, lake=batch.lake, contracts=self.suite.contracts,
                         models=self.suite.models, parameters=batch.settings.model_parameters(), files=files)
        self.skipped[batch.batch_id] = run.skipped
        return run.results

    def audited(self, batch: BatchContext, results: list[CheckResult]) -> None:
        checked_at = ledger_module.now()
        history.store_results(batch.ledger, batch.batch_id, results, checked_at=checked_at)
        status = FAILED if any(not r.passed and r.severity == "error" for r in results) else PASSED
        report = history.validation_report(batch.batch_id, batch.business_date, status, results,
                                           self.skipped.pop(batch.batch_id, {}), checked_at=checked_at)
        self.reports[batch.batch_id] = history.write_report(self.archive, report)


@dataclass
class LakeCheck:
    """`shoplake check`: the verdict on the lake's current tables."""

    run: CheckRun
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.run.failed_errors)


def check_lake(settings: Settings) -> LakeCheck:
    """Run every check now on the lake's current tables (files: every loaded file of the ledger); reads only."""
    suite = load_suite(settings)
    store = ledger_module.Ledger(settings.state_db_url)
    try:
        loaded = store.files_where(ledger_module.files.c.status == ledger_module.LOADED)
    finally:
        store.close()
    limits = {c.feed: c.max_quarantine_rate for c in suite.contracts}
    files = [AuditedFile(file=row["relative"], feed=row["feed"], rows_read=row["rows_read"] or 0,
                         rows_loaded=row["rows_loaded"] or 0, rows_quarantined=row["rows_quarantined"] or 0,
                         rows_duplicate=row["rows_duplicate"] or 0, max_quarantine_rate=limits.get(row["feed"]))
             for row in loaded]
    engine = open_engine(settings.engine, temp_dir=Path(settings.scratch) / "_tmp", memory_limit=settings.memory_limit,
                         threads=settings.threads, spark_master=settings.spark_master, spark_conf=settings.spark_conf)
    try:
        run = run_checks(engine, suite.checks, lake=settings.tables_root, contracts=suite.contracts,
                         models=suite.models, parameters=settings.model_parameters(), files=files)
    finally:
        engine.close()
    return LakeCheck(run, suite.checks)
