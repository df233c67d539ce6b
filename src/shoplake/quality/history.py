"""Quality history: each check's result per batch in the operational store (table `check_results`), and
the per-batch JSON validation report written next to the archive (`validation-reports/<batch_id>.json`)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shoplake.hooks import CheckResult
from shoplake.landing.ledger import Ledger, now
from shoplake.landing.storage import LocalStore, S3Store, Store

REPORTS_FOLDER = "validation-reports"

metadata = sa.MetaData()

check_results = sa.Table(
    "check_results", metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("check_name", sa.String(200), primary_key=True),
    sa.Column("severity", sa.String(10), nullable=False),  # error | warn
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("failing_rows", sa.BigInteger, nullable=False),
    sa.Column("samples", sa.Text, nullable=False),  # JSON list of up to 20 offending rows, values as text
    sa.Column("description", sa.Text),  # the check's, or why it could not run
    sa.Column("checked_at", sa.DateTime, nullable=False),
)


@dataclass(frozen=True)
class StoredResult:
    batch_id: str
    check_name: str
    severity: str
    passed: bool
    failing_rows: int
    samples: list[dict[str, Any]]
    description: str
    checked_at: datetime


def _ensure(ledger: Ledger) -> None:
    check_results.create(ledger.engine, checkfirst=True)


def store_results(ledger: Ledger, batch_id: str, results: list[CheckResult], *,
                  checked_at: datetime | None = None) -> None:
    """Replace the batch's stored results with these (a batch audited again keeps its last verdict)."""
    _ensure(ledger)
    stamp = checked_at or now()
    rows = [dict(batch_id=batch_id, check_name=r.name, severity=r.severity, passed=r.passed,
                 failing_rows=r.failing_rows, samples=json.dumps(list(r.samples)), description=r.description,
                 checked_at=stamp) for r in results]
    with ledger.engine.begin() as conn:
        conn.execute(check_results.delete().where(check_results.c.batch_id == batch_id))
        if rows:
            conn.execute(check_results.insert(), rows)


def results_history(ledger: Ledger, *, batches: int = 5, check: str | None = None,
                    batch_id: str | None = None) -> list[StoredResult]:
    """The stored results of the last `batches` audited batches (newest first), or of one batch; one
    check's only when `check` is given."""
    _ensure(ledger)
    c = check_results.c
    with ledger.engine.connect() as conn:
        if batch_id is None:
            latest = (sa.select(c.batch_id, sa.func.max(c.checked_at).label("at")).group_by(c.batch_id)
                      .order_by(sa.desc("at")).limit(batches))
            chosen = [row.batch_id for row in conn.execute(latest)]
        else:
            chosen = [batch_id]
        query = sa.select(check_results).where(c.batch_id.in_(chosen))
        if check is not None:
            query = query.where(c.check_name == check)
        rows = conn.execute(query.order_by(c.checked_at.desc(), c.batch_id, c.check_name)).mappings().all()
    return [StoredResult(batch_id=r["batch_id"], check_name=r["check_name"], severity=r["severity"],
                         passed=bool(r["passed"]), failing_rows=int(r["failing_rows"]),
                         samples=json.loads(r["samples"]), description=r["description"] or "",
                         checked_at=r["checked_at"]) for r in rows]


def validation_report(batch_id: str, business_date: date, status: str, results: list[CheckResult],
                      skipped: dict[str, str], *, checked_at: datetime | None = None) -> dict[str, Any]:
    """The batch's validation report: every check's verdict with its count and samples."""
    failed_errors = [r.name for r in results if not r.passed and r.severity == "error"]
    return {
        "batch_id": batch_id,
        "business_date": business_date.isoformat(),
        "status": status,  # passed | failed (an error check failed: gold stays at its previous version)
        "checked_at": (checked_at or now()).isoformat(timespec="seconds"),
        "checks_run": len(results),
        "checks_failed": sum(not r.passed for r in results),
        "failed_errors": failed_errors,
        "checks": [{"name": r.name, "severity": r.severity, "passed": r.passed, "failing_rows": r.failing_rows,
                    "description": r.description, "samples": list(r.samples)} for r in results],
        "skipped": skipped,
    }


def report_key(batch_id: str) -> str:
    return f"{REPORTS_FOLDER}/{batch_id}.json"


def write_report(archive: Store, report: dict[str, Any]) -> str:
    """Write the report into the archive store; returns where it is (a path or URI)."""
    key = report_key(str(report["batch_id"]))
    text = json.dumps(report, indent=2, default=str)
    if isinstance(archive, LocalStore):
        target = archive.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".json.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)  # a reader never sees half a report
    elif isinstance(archive, S3Store):
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "report.json"
            source.write_text(text, encoding="utf-8")
            archive.upload(source, key)
    else:
        raise TypeError(f"cannot write a validation report to {archive.describe(key)}")
    return archive.describe(key)
