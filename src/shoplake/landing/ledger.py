"""The operational store: a ledger row per file, a row per batch, and rule results, via SQLAlchemy Core.

SQLite in the lake by default, PostgreSQL by URL; one code path for both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

files = sa.Table(
    "files", metadata,
    sa.Column("file_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False),  # where the file was found
    sa.Column("archived_path", sa.Text),  # where it is now
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("feed", sa.String(100)),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # pending | loaded | failed | duplicate
    sa.Column("batch_id", sa.String(40), index=True),
    sa.Column("rows_read", sa.BigInteger),
    sa.Column("rows_loaded", sa.BigInteger),
    sa.Column("rows_quarantined", sa.BigInteger),
    sa.Column("rows_duplicate", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("detected_at", sa.DateTime, nullable=False),
    sa.Column("processed_at", sa.DateTime),
)

batches = sa.Table(
    "batches", metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("engine", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # running | succeeded | failed
    sa.Column("files", sa.Integer, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False, default=0),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False, default=0),
    sa.Column("error", sa.Text),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
)

rule_results = sa.Table(
    "rule_results", metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("feed", sa.String(100), primary_key=True),
    sa.Column("rule", sa.String(200), primary_key=True),
    sa.Column("severity", sa.String(20), nullable=False),
    sa.Column("failed_rows", sa.BigInteger, nullable=False),
)

LOADED = "loaded"
FAILED = "failed"
DUPLICATE = "duplicate"


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class FileRow:
    path: str
    feed: str | None
    business_date: date
    status: str
    batch_id: str | None
    rows_read: int | None
    rows_loaded: int | None
    rows_quarantined: int | None
    rows_duplicate: int | None
    error: str | None
    archived_path: str | None


class Ledger:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url)
        metadata.create_all(self.engine)

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    def loaded_file_with_hash(self, digest: str) -> str | None:
        """The path of an earlier file with this content that was loaded, if any."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(files.c.path).where(files.c.sha256 == digest, files.c.status == LOADED).limit(1)
            ).first()
        return None if row is None else str(row[0])

    def record_file(self, **values: Any) -> int:
        values.setdefault("detected_at", now())
        with self._tx() as conn:
            result = conn.execute(files.insert().values(**values))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def update_file(self, file_id: int, **values: Any) -> None:
        with self._tx() as conn:
            conn.execute(files.update().where(files.c.file_id == file_id).values(**values))

    def start_batch(self, batch_id: str, business_date: date, engine: str, n_files: int) -> None:
        with self._tx() as conn:
            conn.execute(batches.insert().values(
                batch_id=batch_id, business_date=business_date, engine=engine, status="running",
                files=n_files, rows_read=0, rows_loaded=0, rows_quarantined=0, started_at=now()))

    def finish_batch(self, batch_id: str, status: str, *, error: str | None = None, **counts: int) -> None:
        with self._tx() as conn:
            conn.execute(batches.update().where(batches.c.batch_id == batch_id).values(
                status=status, error=error, finished_at=now(), **counts))

    def record_rules(self, batch_id: str, feed: str, failures: dict[str, int], severities: dict[str, str]) -> None:
        if not failures:
            return
        with self._tx() as conn:
            conn.execute(rule_results.insert(), [
                {"batch_id": batch_id, "feed": feed, "rule": rule, "severity": severities.get(rule, "quarantine"),
                 "failed_rows": n} for rule, n in failures.items()])

    def file_rows(self, limit: int = 200) -> list[FileRow]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(
                files.c.path, files.c.feed, files.c.business_date, files.c.status, files.c.batch_id,
                files.c.rows_read, files.c.rows_loaded, files.c.rows_quarantined, files.c.rows_duplicate,
                files.c.error, files.c.archived_path,
            ).order_by(files.c.file_id.desc()).limit(limit)).all()
        return [FileRow(*row) for row in rows]

    def batch_rows(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(batches).order_by(batches.c.started_at.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def close(self) -> None:
        self.engine.dispose()
