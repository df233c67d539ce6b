"""Run history: every batch's stage timings, row counts and Delta versions written, kept in the operational
store once the batch is committed or rolled back, and shown by `shoplake status --runs`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from rich.table import Table
from rich.text import Text

from shoplake.hooks import BatchContext, BatchHook
from shoplake.landing import ledger as L

if TYPE_CHECKING:
    from shoplake.config import Settings

# Own metadata, not the ledger's: these tables are created on first use (`checkfirst`), beside the ledger's.
metadata = sa.MetaData()

runs = sa.Table(
    "run_history", metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # load | reprocess | replay
    sa.Column("engine", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),  # succeeded | failed | rolled_back
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.DateTime),  # UTC, as the ledger's batch row has it
    sa.Column("finished_at", sa.DateTime, nullable=False, index=True),
    sa.Column("files", sa.Integer, nullable=False),
    sa.Column("files_failed", sa.Integer, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
    sa.Column("rows_duplicate", sa.BigInteger, nullable=False),
)

run_stages = sa.Table(
    "run_stages", metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("stage", sa.String(40), primary_key=True),  # read | check | write | gold | audit
    sa.Column("seconds", sa.Float, nullable=False),
)

# One row per table whose Delta version the batch changed; a rolled-back batch's tables were restored since.
run_tables = sa.Table(
    "run_tables", metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),  # layer.table, e.g. silver.orders
    sa.Column("version_before", sa.BigInteger),  # NULL: the batch created the table
    sa.Column("version_after", sa.BigInteger),  # NULL: the table is gone (it was created and rolled back)
)

STAGE_ORDER = ("read", "check", "write", "gold", "audit")


def table_name(lake: str, path: str) -> str:
    """A table's name as readers say it: `silver.orders` for <lake>/silver/orders."""
    inner = path[len(lake) + 1:] if path.startswith(lake.rstrip("/") + "/") else "/".join(path.split("/")[-2:])
    return inner.replace("/", ".")


def changed_tables(batch: BatchContext) -> dict[str, tuple[int | None, int | None]]:
    """The tables whose version the batch moved: path -> (version before, version after)."""
    return {path: (batch.versions_before.get(path), after) for path, after in batch.versions_written.items()
            if after != batch.versions_before.get(path)}


@dataclass(frozen=True)
class RunRecord:
    """One batch as the run history holds it."""

    batch_id: str
    business_date: date
    kind: str
    engine: str
    status: str
    error: str | None
    started_at: datetime | None
    finished_at: datetime
    files: int
    files_failed: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    tables: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)  # name -> (before, after)

    @property
    def total_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RunHistory(BatchHook):
    """Writes a batch's run record once its fate is decided (committed or rolled back)."""

    def committed(self, batch: BatchContext) -> None:
        self._record(batch, batch.outcome.status, batch.outcome.error)

    def rolled_back(self, batch: BatchContext, error: str) -> None:
        row = batch.ledger.batch(batch.batch_id)
        # A batch that failed in its stages is `failed` in the ledger; one interrupted and recovered is
        # `rolled_back`: the history keeps the ledger's word for it.
        status = row["status"] if row and row["status"] in (L.FAILED, L.ROLLED_BACK) else L.ROLLED_BACK
        self._record(batch, status, error)

    def _record(self, batch: BatchContext, status: str, error: str | None) -> None:
        engine = batch.ledger.engine
        metadata.create_all(engine, checkfirst=True)
        ledger_row = batch.ledger.batch(batch.batch_id) or {}
        files = batch.outcome.files
        values = dict(
            batch_id=batch.batch_id, business_date=batch.business_date, kind=batch.kind,
            engine=ledger_row.get("engine") or batch.settings.engine, status=status, error=error,
            started_at=ledger_row.get("started_at"), finished_at=ledger_row.get("finished_at") or L.now(),
            files=len(files), files_failed=sum(1 for f in files if f.status == L.FAILED),
            rows_read=sum(f.rows_read for f in files), rows_loaded=sum(f.rows_loaded for f in files),
            rows_quarantined=sum(f.rows_quarantined for f in files),
            rows_duplicate=sum(f.rows_duplicate for f in files))
        stages = [dict(batch_id=batch.batch_id, stage=stage, seconds=seconds)
                  for stage, seconds in batch.seconds.items()]
        tables = [dict(batch_id=batch.batch_id, path=path, name=table_name(batch.lake, path), version_before=before,
                       version_after=after) for path, (before, after) in changed_tables(batch).items()]
        # Replaced whole: a batch's record is written once, but a retried hook must not leave two.
        with engine.begin() as conn:
            for table in (run_tables, run_stages, runs):
                conn.execute(sa.delete(table).where(table.c.batch_id == batch.batch_id))
            conn.execute(sa.insert(runs), [values])
            if stages:
                conn.execute(sa.insert(run_stages), stages)
            if tables:
                conn.execute(sa.insert(run_tables), tables)


def recent_runs(settings: Settings, limit: int = 20) -> list[RunRecord]:
    """The last `limit` batches of the run history, newest first (none before the first batch recorded)."""
    engine = sa.create_engine(settings.state_db_url)
    try:
        if not sa.inspect(engine).has_table(runs.name):
            return []
        with engine.connect() as conn:
            rows = conn.execute(sa.select(runs).order_by(runs.c.finished_at.desc(), runs.c.batch_id.desc())
                                .limit(limit)).mappings().all()
            ids = [r["batch_id"] for r in rows]
            seconds: dict[str, dict[str, float]] = {i: {} for i in ids}
            for s in conn.execute(sa.select(run_stages).where(run_stages.c.batch_id.in_(ids))).mappings():
                seconds[s["batch_id"]][s["stage"]] = s["seconds"]
            tables: dict[str, dict[str, tuple[int | None, int | None]]] = {i: {} for i in ids}
            for t in conn.execute(sa.select(run_tables).where(run_tables.c.batch_id.in_(ids))
                                  .order_by(run_tables.c.name)).mappings():
                tables[t["batch_id"]][t["name"]] = (t["version_before"], t["version_after"])
    finally:
        engine.dispose()
    return [RunRecord(**dict(r), seconds=seconds[r["batch_id"]], tables=tables[r["batch_id"]]) for r in rows]


def print_runs(settings: Settings, limit: int = 20) -> None:
    """`shoplake status --runs`: the last runs with their stage timings, rows and the tables they wrote."""
    from shoplake.console import _colour, _shown, console, say

    records = recent_runs(settings, limit)
    if not records:
        say("no runs recorded yet (the run history starts with the first batch a shoplake with it runs)")
        return
    stages = [s for s in STAGE_ORDER if any(s in r.seconds for r in records)]
    stages += sorted({s for r in records for s in r.seconds} - set(stages))
    table = Table(title=f"runs (newest first, last {len(records)}; UTC; seconds per stage: {'/'.join(stages)})")
    for name in ("batch", "date", "kind", "status", "finished", "total s", "stage s", "files",
                 "read = loaded+quar.+dup."):
        table.add_column(name, justify="left" if name in ("batch", "date", "kind", "status", "finished") else "right",
                         no_wrap=True)
    for r in records:
        total = r.total_seconds
        table.add_row(r.batch_id, str(r.business_date), r.kind, _colour(r.status), f"{r.finished_at:%m-%d %H:%M:%S}",
                      "" if total is None else f"{total:.1f}",
                      "/".join("-" if s not in r.seconds else f"{r.seconds[s]:.1f}" for s in stages),
                      f"{r.files:,}" + (f" ({r.files_failed} failed)" if r.files_failed else ""),
                      f"{r.rows_read:,} = {r.rows_loaded:,}+{r.rows_quarantined:,}+{r.rows_duplicate:,}")
    console.print(table)
    versions = Table(title="tables written: Delta version before -> after (new: created by the batch)")
    for name in ("batch", "status", "tables", "versions"):
        versions.add_column(name, overflow="fold", no_wrap=name != "versions")
    for r in records:
        if r.tables:
            moved = (f"{name} {_version(before, 'new')}->{_version(after, 'gone')}"
                     for name, (before, after) in r.tables.items())
            versions.add_row(r.batch_id, _colour(r.status), _layers(r.tables), Text(_shown(", ".join(moved))))
    console.print(versions)
    for r in (r for r in records if r.error):
        say(Text.assemble((f"{r.batch_id} {r.status}:", "red"), " ", _shown(r.error or "")))


def _layers(tables: dict[str, tuple[int | None, int | None]]) -> str:
    """`bronze 4 silver 5 gold 13`: how many tables of each layer the batch wrote."""
    counts: dict[str, int] = {}
    for name in tables:
        layer = name.split(".", 1)[0]
        counts[layer] = counts.get(layer, 0) + 1
    order = ("bronze", "quarantine", "silver", "gold")
    ranked = sorted(counts.items(), key=lambda c: (order.index(c[0]) if c[0] in order else len(order), c[0]))
    return " ".join(f"{layer} {n}" for layer, n in ranked) or "-"


def _version(version: int | None, missing: str) -> str:
    return missing if version is None else str(version)
