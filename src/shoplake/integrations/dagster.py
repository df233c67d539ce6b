"""Dagster `Definitions` for a shoplake project: an asset per silver feed and per gold model, materialised
together by one shoplake run, with shoplake's quality checks as asset checks and row counts as metadata.

    # definitions.py, loaded by `dagster dev -f definitions.py`
    from shoplake.integrations.dagster import definitions
    defs = definitions("shoplake.yml")

One run loads every waiting file and rebuilds gold (shoplake decides what a batch touches), so the assets are
one multi-asset that cannot be subset. A batch that fails fails the step (nothing of it was committed); each
check's result is the one of the run's last batch that ran it (none ran: the checks run on the lake as it is).
"""

# No `from __future__ import annotations`: Dagster inspects the asset function's `context` annotation as a type.
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from sqlglot import exp

from shoplake import api
from shoplake.config import Settings, load_settings
from shoplake.contracts import load_contracts
from shoplake.engines import open_engine
from shoplake.hooks import CheckResult
from shoplake.landing.ledger import FAILED, SUCCEEDED, Ledger
from shoplake.layers import gold
from shoplake.layers.gold import HISTORY
from shoplake.pipeline import RunReport
from shoplake.quality.audit import Suite, check_lake, load_suite
from shoplake.quality.checks import GOLD, SILVER, Check
from shoplake.quality.history import results_history

GROUP = "shoplake"


def project_settings(project: Settings | str | Path) -> Settings:
    """A Settings as given, or the settings of a shoplake.yml path."""
    return project if isinstance(project, Settings) else load_settings(Path(project))


def silver_key(table: str, feeds: set[str]) -> dg.AssetKey:
    """A silver table's asset: an SCD2 feed's history table is part of its feed's asset."""
    feed = table[: -len(HISTORY)] if table.endswith(HISTORY) and table[: -len(HISTORY)] in feeds else table
    return dg.AssetKey([SILVER, feed])


def check_name(name: str) -> str:
    """A Dagster name (letters, digits, `_`) for a check name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def check_targets(check: Check, order: list[str], feeds: set[str]) -> list[dg.AssetKey]:
    """The asset a check belongs to: the most downstream gold model it reads, else the silver feed it reads;
    a check on the batch's files (`shoplake.files`) belongs to every silver feed."""
    models = [name for schema, name in check.reads if schema == GOLD and name in order]
    if models:
        return [dg.AssetKey([GOLD, max(models, key=order.index)])]
    tables = sorted(name for schema, name in check.reads if schema == SILVER)
    if tables:
        return [silver_key(tables[0], feeds)]
    return [dg.AssetKey([SILVER, feed]) for feed in sorted(feeds)]


def asset_specs(suite: Suite) -> tuple[list[dg.AssetSpec], list[dg.AssetCheckSpec], dict[dg.AssetCheckKey, Check]]:
    """Specs of the assets (dependencies from the models' SQL) and of the checks, with the check each runs."""
    feeds = {c.feed for c in suite.contracts}
    order = [m.name for m in suite.models]  # run order: a model after those it reads
    specs = [dg.AssetSpec(dg.AssetKey([SILVER, feed]), group_name=GROUP, kinds={"delta"},
                          description=f"silver.{feed}: the {feed} feed, validated") for feed in sorted(feeds)]
    for model in suite.models:
        deps = sorted({silver_key(t, feeds) for t in model.sources}
                      | {dg.AssetKey([GOLD, m]) for m in model.depends_on}, key=lambda k: k.to_user_string())
        specs.append(dg.AssetSpec(dg.AssetKey([GOLD, model.name]), deps=deps, group_name=GROUP, kinds={"delta"},
                                  description=model.description or f"gold.{model.name}",
                                  metadata={"grain": model.grain, "key": ", ".join(model.key)}))
    checks: dict[dg.AssetCheckKey, Check] = {}
    check_specs = []
    for check in suite.checks:
        for target in check_targets(check, order, feeds):
            spec = dg.AssetCheckSpec(check_name(check.name), asset=target, description=check.description or None)
            if spec.key not in checks:
                checks[spec.key] = check
                check_specs.append(spec)
    return specs, check_specs, checks


def row_counts(settings: Settings, keys: list[dg.AssetKey]) -> dict[dg.AssetKey, tuple[int, int | None]]:
    """Rows and Delta version of each asset's table, read once the run is committed (absent: no table yet)."""
    engine = open_engine(settings.engine, temp_dir=settings.scratch / "_tmp", memory_limit=settings.memory_limit,
                         threads=settings.threads, spark_master=settings.spark_master, spark_conf=settings.spark_conf)
    counts = {}
    try:
        for key in keys:
            layer, name = key.path
            path = f"{settings.tables_root}/{layer}/{name}"
            if engine.attach_delta(path, layer, name):
                [(rows,)] = engine.fetch(exp.select(exp.func("count", exp.Star())).from_(exp.table_(name, layer)))
                counts[key] = (int(rows), engine.table_version(path))
    finally:
        engine.close()
    return counts


def latest_results(settings: Settings, report: RunReport) -> dict[str, CheckResult]:
    """Each check's result in the last batch of the run that ran it; no batch ran: the lake's checks now."""
    results: dict[str, CheckResult] = {}
    if report.batches:
        ledger = Ledger(settings.state_db_url)
        try:
            for batch in report.batches:  # oldest first: a later batch's verdict wins
                for r in results_history(ledger, batch_id=batch.batch_id):
                    results[r.check_name] = CheckResult(r.check_name, "warn" if r.severity == "warn" else "error",
                                                        r.passed, r.failing_rows, r.description)
        finally:
            ledger.close()
    if not results:
        results = {r.name: r for r in check_lake(settings).run.results}
    return results


def check_result(key: dg.AssetCheckKey, check: Check, result: CheckResult | None) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.WARN if check.severity == "warn" else dg.AssetCheckSeverity.ERROR
    if result is None:  # its inputs had no data: nothing to check, which is not a failure
        return dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=True, severity=severity,
                                   metadata={"skipped": "its input tables have no rows yet", "check": check.name})
    return dg.AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=result.passed, severity=severity,
                               metadata={"failing_rows": result.failing_rows, "check": check.name,
                                         "source": check.source})


def definitions(project: Settings | str | Path, *, name: str = "shoplake_run") -> dg.Definitions:
    """Definitions for a project (a Settings or a shoplake.yml path): the assets, their checks and a job."""
    settings = project_settings(project)
    contracts = load_contracts(settings.contracts)
    suite = load_suite(settings, contracts=contracts, models=gold.load_models(settings.models, contracts=contracts))
    specs, check_specs, checks = asset_specs(suite)

    @dg.multi_asset(name=name, specs=specs, check_specs=check_specs, can_subset=False,
                    description="Load every waiting file of the landing store (shoplake run)")
    def shoplake_run(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult]:
        report = api.run(settings)
        failed = [b for b in report.batches if b.status != SUCCEEDED]
        batches = [b.batch_id for b in report.batches]
        if failed:
            raise dg.Failure(description="; ".join(f"batch {b.batch_id} {b.status}: {b.error}" for b in failed),
                             metadata={"batches": batches})
        counts = row_counts(settings, [s.key for s in specs])
        loaded: dict[str, int] = {}
        rejected = []
        for b in report.batches:
            for f in b.files:
                loaded[f.feed or ""] = loaded.get(f.feed or "", 0) + f.rows_loaded
                if f.status == FAILED:
                    rejected.append(f.file)
        for spec in specs:
            layer, table = spec.key.path
            rows, version = counts.get(spec.key, (0, None))
            metadata: dict[str, Any] = {"dagster/row_count": rows, "delta_version": version,
                                        "path": f"{settings.tables_root}/{layer}/{table}", "batches": batches}
            if layer == SILVER:
                metadata["rows_loaded_this_run"] = loaded.get(table, 0)
                metadata["files_rejected"] = [f for f in rejected if _feed_of(report, f) == table]
            elif table in report.gold_skipped:
                metadata["skipped"] = report.gold_skipped[table]
            yield dg.MaterializeResult(asset_key=spec.key, metadata=metadata)
        results = latest_results(settings, report)
        for key, check in checks.items():
            yield check_result(key, check, results.get(check.name))
        context.log.info(f"shoplake run: {len(batches)} batch(es), {len(rejected)} file(s) rejected")

    return dg.Definitions(assets=[shoplake_run], jobs=[dg.define_asset_job(name, selection=[shoplake_run])])


def _feed_of(report: RunReport, file: str) -> str | None:
    return next((f.feed for b in report.batches for f in b.files if f.file == file), None)
