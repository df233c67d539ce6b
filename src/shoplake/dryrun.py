"""`shoplake run --dry-run`: how every landed file would load, with nothing written anywhere.

The files go through the same layers as a batch (bronze.sniff and bronze.load_file into the engine's
scratch tables, then silver.check_feed against the lake's silver tables, read only), but no Session is
opened: no lease, no ledger, no Delta commit, no archive move, and no state store is created. The engine
spills to a temporary folder outside the project. Every waiting file is checked as one batch, so a
child file finds its parents whatever their business dates (a real run loads one date per batch).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlglot import exp

from shoplake.config import Settings
from shoplake.contracts import ContractSet, DriftPolicy, load_contracts
from shoplake.engines import Engine, open_engine
from shoplake.errors import ConfigError, FileRejected
from shoplake.landing import ledger
from shoplake.landing.files import classify, has_rows, in_progress, sha256
from shoplake.landing.storage import Entry, LocalStore, Store, open_store
from shoplake.layers import bronze, gold, silver
from shoplake.layers.checks import checked_table
from shoplake.layers.sql import alias, col, lit, select, table
from shoplake.onboarding.inputs import missing_inputs, model_inputs

DRY_RUN_BATCH = "dry-run"


@dataclass
class Reason:
    rule: str
    rows: int
    example: str  # one row's whole message, e.g. "order_id.references: order_id 5 not found in orders.order_id"
    warning: bool = False  # a warn rule: the rows still load


@dataclass
class FilePlan:
    file: str
    feed: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    reasons: list[Reason] = field(default_factory=list)
    drift: str = ""  # unexpected or missing columns
    error: str | None = None  # the whole file would be rejected
    duplicate_of: str | None = None  # a file of the same content was loaded before: a run skips this one
    missing_model_columns: list[str] = field(default_factory=list)  # "column (model, ...)" its feed lacks

    @property
    def note(self) -> str:
        if self.error:
            return f"rejected: {self.error}"
        if self.duplicate_of:
            return f"duplicate of {self.duplicate_of}: a run skips it"
        return self.drift


@dataclass
class DryRunReport:
    files: list[FilePlan] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    fatal: dict[str, int] = field(default_factory=dict)  # "<feed>.<rule>" -> rows of fail_batch rules
    missing_model_columns: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # feed -> column -> models
    skipped_models: dict[str, list[str]] = field(default_factory=dict)  # model -> feeds without file or table

    @property
    def failed(self) -> bool:
        """Whether a run would fail a file or a batch."""
        return bool(self.fatal) or any(f.error for f in self.files)


def dry_run(settings: Settings) -> DryRunReport:
    """Check every waiting file of the landing store as a run would, and report; writes nothing."""
    contracts = load_contracts(settings.contracts)
    models = gold.load_models(settings.models)
    store = open_store(settings.landing)
    if isinstance(store, LocalStore) and not store.root.is_dir():
        raise ConfigError(f"landing folder {store.root} does not exist",
                          hint="create it, or set landing in shoplake.yml or with --landing")
    report = DryRunReport()
    entries = sorted(store.list(), key=lambda e: e.relative)
    report.refused = [r.message for r in store.refused]
    with tempfile.TemporaryDirectory(prefix="shoplake-dry-run-") as scratch:
        s = settings
        engine = open_engine(s.engine, temp_dir=Path(scratch) / "engine", memory_limit=s.memory_limit,
                             threads=s.threads, spark_master=s.spark_master, spark_conf=s.spark_conf)
        try:
            in_silver = _check(engine, store, entries, contracts, settings, Path(scratch) / "cache", report)
        finally:
            engine.close()
    missing = missing_inputs(model_inputs(models), contracts)
    report.missing_model_columns = missing
    for f in report.files:
        f.missing_model_columns = [f"{c} ({', '.join(sorted(m))})" for c, m in sorted(missing.get(f.feed, {}).items())]
    fed = {f.feed for f in report.files if f.error is None} | in_silver
    for model in models:
        absent = sorted({src.removesuffix("_history") for src in model.sources} - fed)
        if absent:
            report.skipped_models[model.name] = absent
    return report


def _check(engine: Engine, landing: Store, entries: list[Entry], contracts: ContractSet, settings: Settings,
           cache: Path, report: DryRunReport) -> set[str]:
    """Bronze and silver checks of every data file, as shoplake.stages reads and checks them; returns the
    feeds that already have a silver table."""
    engine.clear()
    ingested_at = datetime.now(UTC).replace(tzinfo=None)
    loaded: dict[str, list[exp.Select]] = {}
    drifted: dict[str, list[str]] = {}
    plans: dict[str, FilePlan] = {}
    seen: dict[str, str] = {}  # sha256 -> the first file of this content in landing
    loaded_before = _ledger_lookup(settings)
    for entry in entries:
        if in_progress(entry.relative):
            continue
        recognised, feed = classify(entry.relative, contracts)
        if not recognised:
            report.unrecognised.append(landing.describe(entry.relative))
            continue
        if feed is None:
            report.triggers.append(landing.describe(entry.relative))
            continue
        contract = contracts[feed]
        plan = FilePlan(entry.relative, feed)
        report.files.append(plan)
        try:
            path = landing.local_copy(entry.relative, cache)
            if has_rows(path):
                digest = sha256(path)
                plan.duplicate_of = seen.get(digest) or loaded_before(digest, entry.relative)
                seen.setdefault(digest, landing.describe(entry.relative))
                if plan.duplicate_of:
                    continue
            layout = bronze.sniff(path, contract)
            staged = f"csv__{feed}__{len(loaded.get(feed, []))}"
            plan.rows_read, rows = bronze.load_file(engine, contract, path, layout, source_file=entry.relative,
                                                    batch_id=DRY_RUN_BATCH, ingested_at=ingested_at, staged=staged)
        except FileRejected as rejected:
            plan.error = rejected.reason
            continue
        plan.drift = layout.describe()
        plans[entry.relative] = plan
        loaded.setdefault(feed, []).append(rows)
        if layout.drifted and contract.schema_drift is DriftPolicy.QUARANTINE:
            drifted.setdefault(feed, []).append(entry.relative)
    for feed, rows_of_files in loaded.items():
        bronze.define_bronze(engine, feed, rows_of_files)
    in_silver = silver.attach_silver(engine, contracts, settings.tables_root)
    order = contracts.load_order(set(loaded))
    checked: set[str] = set()
    for feed in order:
        referenced = any(parent == feed for child in order for _, parent, _ in contracts[child].references)
        result = silver.check_feed(engine, contracts[feed], contracts, in_silver=in_silver, checked_feeds=checked,
                                   drifted_files=drifted.get(feed, []), referenced=referenced)
        checked.add(feed)
        report.fatal.update({f"{feed}.{rule}": n for rule, n in result.fatal.items()})
        for name, counts in result.files.items():
            plan = plans[name]
            plan.rows_duplicate, plan.rows_quarantined, plan.rows_loaded = (
                counts.duplicates, counts.quarantined, counts.loaded)
        for name, rule, failing, example, warning in _reasons(engine, feed):
            plans[name].reasons.append(Reason(rule, failing, example, warning))
    return in_silver


def _ledger_lookup(settings: Settings) -> Callable[[str, str], str | None]:
    """Which earlier file (if any) had this content, read from the state store without creating it or
    writing to it; a lake without a state store has loaded nothing."""
    url = make_url(settings.state_db_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or not Path(url.database).is_file():
            return lambda digest, relative: None
        url = url.set(database=f"file:{Path(url.database).resolve()}?mode=ro", query={"uri": "true"})
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)  # no connection outlives a lookup
    if not sa.inspect(engine).has_table(ledger.files.name):
        return lambda digest, relative: None
    files = ledger.files.c
    on_its_way = (ledger.LOADED, ledger.ARCHIVING, ledger.QUEUED)

    def lookup(digest: str, relative: str) -> str | None:
        # As Session.scan decides: loaded or on its way, or waiting under another name (this file itself
        # may be waiting already, noted by an earlier scan).
        earlier = sa.or_(files.status.in_(on_its_way), sa.and_(files.status == ledger.WAITING,
                                                                files.relative != relative))
        with engine.connect() as conn:
            row = conn.execute(sa.select(files.path).where(files.sha256 == digest, earlier).limit(1)).first()
        return None if row is None else str(row[0])
    return lookup


def _reasons(engine: Engine, feed: str) -> list[tuple[str, str, int, str, bool]]:
    """(file, rule, rows, one message, is a warning) for every rule a checked row of the feed failed."""
    out = []
    for name, warning in (("_errors", False), ("_warnings", True)):
        failures = select(col("_source_file"), alias(exp.Explode(this=col(name)), "e")).from_(
            table(checked_table(feed))).where(col(name).is_(exp.null()).not_())
        rule = exp.RegexpExtract(this=col("e"), expression=lit("^[^:]+"), group=lit(0))
        per_rule = select(col("_source_file"), alias(rule, "rule"), exp.Count(this=exp.Star()),
                          exp.Min(this=col("e"))).from_(exp.alias_(failures.subquery(), "f")).group_by(
            col("_source_file"), rule.copy())
        out += [(str(f), str(r), int(n), str(e), warning) for f, r, n, e in engine.fetch(per_rule)]
    return sorted(out, key=lambda r: (r[0], r[4], -r[2], r[1]))
