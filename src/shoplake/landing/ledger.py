"""The operational store: a ledger row per file, a row per batch, rule results, the Delta versions a
batch started from, and the lake's lock; via SQLAlchemy Core.

SQLite in the lake by default, PostgreSQL by URL; one code path for both.

A file is `waiting` from the moment it is seen until a batch takes it (`queued`); when the batch has
written every table its files become `archiving` (counts final, archive path chosen) and then `loaded`
once moved; `failed` and `duplicate` files are archived under failed/. A batch goes
running -> committed (every table written) -> succeeded, or -> failed / rolled_back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shoplake.errors import ConfigError, LakeBusy
from shoplake.faults import STATE_TRANSACTIONS

metadata = sa.MetaData()

files = sa.Table(
    "files", metadata,
    sa.Column("file_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False),  # where the file was found (path or URI)
    sa.Column("relative", sa.Text, nullable=False, index=True),  # its path inside the landing store
    sa.Column("archived_path", sa.Text),  # where it is now (path or URI)
    sa.Column("archive_key", sa.Text),  # its path inside the archive store
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("feed", sa.String(100)),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),  # see the module's docstring
    sa.Column("batch_id", sa.String(40), index=True),
    sa.Column("mtime", sa.Float),
    sa.Column("outcome", sa.String(20)),  # while archiving: the status the file gets once moved
    sa.Column("replaces", sa.String(40)),  # reprocessing: the batch whose rows of this file are replaced
    sa.Column("rows_read", sa.BigInteger),
    sa.Column("rows_loaded", sa.BigInteger),
    sa.Column("rows_quarantined", sa.BigInteger),
    sa.Column("rows_duplicate", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("detected_at", sa.DateTime, nullable=False),
    sa.Column("processed_at", sa.DateTime),
    # When `shoplake maintain` deleted the archived file past its retention (archive_key is then cleared;
    # archived_path keeps where it was, and the row keeps what it loaded).
    sa.Column("archive_deleted_at", sa.DateTime),
)

batches = sa.Table(
    "batches", metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("business_date", sa.Date, nullable=False),
    sa.Column("engine", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # running | committed | succeeded | failed | rolled_back
    sa.Column("kind", sa.String(20), nullable=False, default="load"),  # load | reprocess | replay
    sa.Column("replaces", sa.String(40)),  # reprocess: the batch whose rows this one replaces
    sa.Column("outcome", sa.String(20)),  # once committed: succeeded or failed
    sa.Column("owner", sa.String(200)),  # the process that ran it (host:pid)
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

batch_tables = sa.Table(
    "batch_tables", metadata,
    sa.Column("batch_id", sa.String(40), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("version_before", sa.BigInteger),  # NULL: the table did not exist before the batch
)

locks = sa.Table(
    "locks", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),  # the holder; empty once released
    sa.Column("expires_at", sa.DateTime, nullable=False),
    # A counter that only grows: every take and every Delta commit of the holder draws the next value,
    # so a commit carries a number no earlier holder can reach (a fencing token).
    sa.Column("fence", sa.BigInteger),
)

table_state = sa.Table(
    "table_state", metadata,
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),  # the Delta version after the last batch that wrote it
    sa.Column("batch_id", sa.String(40)),
)

# What each gold model was last computed from in a committed batch: its query and the settings models read,
# hashed. A batch computes a model incrementally only when they are unchanged (an edited model or a new
# time zone recomputes it whole once).
model_signatures = sa.Table(
    "model_signatures", metadata,
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("signature", sa.String(64), nullable=False),
)

# Columns added after a table was first created: added to an older state store when it is opened.
_ADDED_COLUMNS = {"locks": [locks.c.fence], "files": [files.c.archive_deleted_at]}

# Every status a row can hold, defined once here; code compares statuses with these names, never literals.
WAITING = "waiting"
QUEUED = "queued"
ARCHIVING = "archiving"
LOADED = "loaded"
FAILED = "failed"  # a file or a batch that failed (not the archive's failed/ folder: archive.FAILED_FOLDER)
DUPLICATE = "duplicate"
REPROCESSED = "reprocessed"  # a file row whose file was sent through again (a new row follows it)
FILE_STATUSES = (WAITING, QUEUED, ARCHIVING, LOADED, FAILED, DUPLICATE, REPROCESSED)

RUNNING = "running"
COMMITTED = "committed"
SUCCEEDED = "succeeded"
ROLLED_BACK = "rolled_back"
BATCH_STATUSES = (RUNNING, COMMITTED, SUCCEEDED, FAILED, ROLLED_BACK)


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
    archive_deleted_at: datetime | None = None  # maintain deleted the archived file (past its retention)


@dataclass(frozen=True)
class Waiting:
    """A file seen in landing and not yet taken by a batch."""

    file_id: int
    relative: str
    path: str
    feed: str | None
    business_date: date
    size: int
    sha256: str
    mtime: float | None
    detected_at: datetime
    replaces: str | None


def _clock_fence(previous: int) -> int:
    """A fence value above `previous` and, when the clock allows, above every value drawn before a
    state store was lost (microseconds since the epoch grow faster than a holder draws values)."""
    return max(previous + 1, int(datetime.now(UTC).timestamp() * 1_000_000))


def database_url(url: str) -> str:
    """A state store URL as SQLAlchemy opens it: `postgresql://` (and `postgres://`) through psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def _busy(owner: str, expires_at: datetime) -> LakeBusy:
    return LakeBusy(f"the lake is in use by {owner} (lease until {expires_at:%Y-%m-%d %H:%M:%S} UTC)",
                    hint="one shoplake process writes a lake at a time; stop the other one or wait for its "
                    "lease to run out")


class Ledger:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(database_url(url))
        except (sa.exc.NoSuchModuleError, ImportError) as error:
            raise ConfigError(f"state_url: {error}",
                              hint="install the driver: pip install 'shoplake[postgres]'") from None
        try:
            metadata.create_all(self.engine)
            self._add_missing_columns()
        except sa.exc.DatabaseError as error:
            self.engine.dispose()
            raise ConfigError(f"the state store {sa.engine.make_url(url).render_as_string(hide_password=True)} "
                              f"cannot be opened: {str(error.orig).splitlines()[0]}",
                              hint="restore it from a backup, or point state_url at a working database") from None

    def _add_missing_columns(self) -> None:
        inspector = sa.inspect(self.engine)
        for table, columns in _ADDED_COLUMNS.items():
            present = {c["name"] for c in inspector.get_columns(table)}
            for column in columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    with self._tx() as conn:
                        conn.execute(sa.text(f'ALTER TABLE {table} ADD COLUMN "{column.name}" {kind}'))

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with STATE_TRANSACTIONS, self.engine.begin() as conn:
            yield conn

    def known_file_with_hash(self, digest: str, *, excluding: int | None = None) -> str | None:
        """The path of an earlier file with this content that was loaded or is on its way, if any."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(files.c.path).where(files.c.sha256 == digest, files.c.file_id != (excluding or -1),
                                              files.c.status.in_([LOADED, ARCHIVING, QUEUED, WAITING])).limit(1)
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

    def commit_batch(self, batch_id: str, file_values: dict[int, dict[str, Any]], *,
                     tables: dict[str, int | None], lock: tuple[str, str], **batch_values: Any) -> bool:
        """Every file's counts and archive path, the tables' versions and the batch `committed`, in one
        transaction that also proves the lock (name, owner) is still held; False (nothing written) if not."""
        with self._tx() as conn:
            # FOR UPDATE: on PostgreSQL no other connection takes the lock between this proof and the commit.
            holder = conn.execute(sa.select(locks.c.owner).where(locks.c.name == lock[0]).with_for_update()).scalar()
            if holder != lock[1]:
                return False
            self.record_table_states(tables, batch_id, conn)
            for file_id, values in file_values.items():
                conn.execute(files.update().where(files.c.file_id == file_id).values(**values))
            conn.execute(batches.update().where(batches.c.batch_id == batch_id).values(status=COMMITTED,
                                                                                       **batch_values))
        return True

    def files_archived(self, outcomes: dict[int, str]) -> None:
        """Moved files get their final status (`loaded` or `failed`)."""
        with self._tx() as conn:
            for file_id, status in outcomes.items():
                conn.execute(files.update().where(files.c.file_id == file_id).values(
                    status=status, outcome=None, processed_at=now()))

    def start_batch(self, batch_id: str, business_date: date, engine: str, n_files: int, *, owner: str,
                    kind: str = "load", replaces: str | None = None) -> None:
        with self._tx() as conn:
            conn.execute(batches.insert().values(
                batch_id=batch_id, business_date=business_date, engine=engine, status=RUNNING, kind=kind,
                replaces=replaces, owner=owner, files=n_files, rows_read=0, rows_loaded=0, rows_quarantined=0,
                started_at=now()))

    def record_rules(self, batch_id: str, feed: str, failures: dict[str, int], severities: dict[str, str]) -> None:
        if not failures:
            return
        with self._tx() as conn:
            conn.execute(rule_results.insert(), [
                {"batch_id": batch_id, "feed": feed, "rule": rule, "severity": severities.get(rule, "quarantine"),
                 "failed_rows": n} for rule, n in failures.items()])

    def forget_rules(self, batch_id: str) -> None:
        """A rolled-back batch's rule counts go with it: its rows were never loaded, and the batch that
        loads them again counts them anew."""
        with self._tx() as conn:
            conn.execute(rule_results.delete().where(rule_results.c.batch_id == batch_id))

    def file_rows(self, limit: int = 200) -> list[FileRow]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(
                files.c.path, files.c.feed, files.c.business_date, files.c.status, files.c.batch_id,
                files.c.rows_read, files.c.rows_loaded, files.c.rows_quarantined, files.c.rows_duplicate,
                files.c.error, files.c.archived_path, files.c.archive_deleted_at,
            ).order_by(files.c.file_id.desc()).limit(limit)).all()
        return [FileRow(*row) for row in rows]

    def batch_rows(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(batches).order_by(batches.c.started_at.desc()).limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    # -- waiting files -------------------------------------------------------------------------------
    def waiting(self) -> list[Waiting]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(
                files.c.file_id, files.c.relative, files.c.path, files.c.feed, files.c.business_date, files.c.size,
                files.c.sha256, files.c.mtime, files.c.detected_at, files.c.replaces,
            ).where(files.c.status == WAITING).order_by(files.c.file_id)).all()
        return [Waiting(**row._mapping) for row in rows]

    def note_waiting(self, noted: list[dict[str, Any]]) -> None:
        """Record files seen in landing, in one transaction; a file already waiting under that name gets
        its new size, hash and mtime (it changed), keeping the time it was first seen."""
        if not noted:
            return
        with self._tx() as conn:
            for values in noted:
                row = conn.execute(sa.select(files.c.file_id).where(
                    files.c.relative == values["relative"], files.c.status == WAITING)).first()
                if row is not None:
                    conn.execute(files.update().where(files.c.file_id == row.file_id).values(**values))
                else:
                    conn.execute(files.insert().values(status=WAITING, detected_at=now(), **values))

    def requeue(self, file_id: int, *, superseded: str, replaces: str | None) -> int:
        """An archived file goes back to landing: a waiting row that remembers where the file is now
        (`archive_key`, cleared once moved) and the old row superseded, in one transaction."""
        with self._tx() as conn:
            old = conn.execute(sa.select(files).where(files.c.file_id == file_id)).mappings().one()
            result = conn.execute(files.insert().values(
                path=old["path"], relative=old["relative"], size=old["size"], sha256=old["sha256"], feed=old["feed"],
                business_date=old["business_date"], status=WAITING, mtime=None, replaces=replaces,
                archive_key=old["archive_key"], archived_path=old["archived_path"], detected_at=now()))
            conn.execute(files.update().where(files.c.file_id == file_id).values(status=superseded))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def archive_deleted(self, archive_key: str) -> None:
        """The archived file at `archive_key` was deleted (maintain's archive retention): every row that
        points at it says so, and no longer points at it."""
        with self._tx() as conn:
            conn.execute(files.update().where(files.c.archive_key == archive_key).values(
                archive_key=None, archive_deleted_at=now()))

    def forget_waiting(self, relative: str) -> None:
        """A waiting file that left landing without being processed (deleted by its sender)."""
        with self._tx() as conn:
            conn.execute(files.delete().where(files.c.relative == relative, files.c.status == WAITING))

    def queue(self, file_ids: list[int], batch_id: str) -> None:
        with self._tx() as conn:
            conn.execute(files.update().where(files.c.file_id.in_(file_ids)).values(status=QUEUED, batch_id=batch_id))

    def batch_files(self, batch_id: str) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(files).where(files.c.batch_id == batch_id).order_by(files.c.file_id))
            return [dict(r) for r in rows.mappings()]

    def files_where(self, *conditions: Any) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(files).where(*conditions).order_by(files.c.file_id))
            return [dict(r) for r in rows.mappings()]

    # -- batches ---------------------------------------------------------------------------------------
    def batch(self, batch_id: str) -> dict[str, Any] | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(batches).where(batches.c.batch_id == batch_id)).mappings().first()
        return None if row is None else dict(row)

    def latest_loaded_date(self) -> date | None:
        with self._tx() as conn:
            value = conn.execute(sa.select(sa.func.max(batches.c.business_date)).where(
                batches.c.status == SUCCEEDED, batches.c.kind == "load")).scalar()
        return value if isinstance(value, date) else None

    def unfinished_batches(self) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(batches).where(batches.c.status.in_([RUNNING, COMMITTED]))
                                .order_by(batches.c.started_at)).mappings().all()
        return [dict(r) for r in rows]

    def set_batch(self, batch_id: str, **values: Any) -> None:
        with self._tx() as conn:
            conn.execute(batches.update().where(batches.c.batch_id == batch_id).values(**values))

    def note_table_versions(self, batch_id: str, versions: dict[str, int | None]) -> None:
        """The version each table had before the batch wrote it (first note wins: it is the one to go back to)."""
        with self._tx() as conn:
            known = {r[0] for r in conn.execute(sa.select(batch_tables.c.path).where(
                batch_tables.c.batch_id == batch_id))}
            fresh = [{"batch_id": batch_id, "path": p, "version_before": v} for p, v in versions.items()
                     if p not in known]
            if fresh:
                conn.execute(batch_tables.insert(), fresh)

    def table_versions(self, batch_id: str) -> dict[str, int | None]:
        with self._tx() as conn:
            rows = conn.execute(sa.select(batch_tables.c.path, batch_tables.c.version_before).where(
                batch_tables.c.batch_id == batch_id)).all()
        return {str(p): (None if v is None else int(v)) for p, v in rows}

    def has_batches(self) -> bool:
        with self._tx() as conn:
            return conn.execute(sa.select(batches.c.batch_id).limit(1)).first() is not None

    # -- the versions tables are at --------------------------------------------------------------------
    def table_states(self) -> dict[str, int]:
        """Each table's Delta version after the last batch (or rollback) that wrote it."""
        with self._tx() as conn:
            return {str(p): int(v) for p, v in conn.execute(sa.select(table_state.c.path, table_state.c.version))}

    def record_table_states(self, versions: Mapping[str, int | None], batch_id: str | None,
                            conn: sa.Connection | None = None) -> None:
        if conn is None:
            with self._tx() as own:
                self.record_table_states(versions, batch_id, own)
            return
        for path, version in versions.items():
            conn.execute(table_state.delete().where(table_state.c.path == path))
            if version is not None:
                conn.execute(table_state.insert().values(path=path, version=version, batch_id=batch_id))

    # -- what gold models were computed from ---------------------------------------------------------
    def model_signatures(self) -> dict[str, str]:
        with self._tx() as conn:
            return {str(m): str(v) for m, v in conn.execute(
                sa.select(model_signatures.c.model, model_signatures.c.signature))}

    def set_model_signatures(self, signatures: Mapping[str, str | None]) -> None:
        """Record (or, for None, forget) the signature of each named model."""
        with self._tx() as conn:
            for model, signature in signatures.items():
                conn.execute(model_signatures.delete().where(model_signatures.c.model == model))
                if signature is not None:
                    conn.execute(model_signatures.insert().values(model=model, signature=signature))

    # -- the lake's lock -------------------------------------------------------------------------------
    def acquire_lock(self, name: str, owner: str, seconds: float, *, dead: Callable[[str], bool]) -> int:
        """Take the lock (or renew one this owner holds); LakeBusy while another live process holds it.

        Returns the lock's fence after the take: higher than any value an earlier holder drew.
        """
        expires = now() + timedelta(seconds=seconds)
        with self._tx() as conn:
            row = conn.execute(sa.select(locks).where(locks.c.name == name).with_for_update()).first()
            if row is None:
                fence = _clock_fence(0)
                try:
                    conn.execute(locks.insert().values(name=name, owner=owner, expires_at=expires, fence=fence))
                    return fence
                except sa.exc.IntegrityError:
                    raise _busy("another process", expires) from None
            if row.owner and row.owner != owner and row.expires_at > now() and not dead(row.owner):
                raise _busy(row.owner, row.expires_at)
            fence = _clock_fence(row.fence or 0)
            taken = conn.execute(locks.update().where(
                locks.c.name == name, locks.c.owner == row.owner, locks.c.expires_at == row.expires_at
            ).values(owner=owner, expires_at=expires, fence=fence))
            if taken.rowcount != 1:
                raise _busy("another process", expires)
            return fence

    def renew_lock(self, name: str, owner: str, seconds: float) -> bool:
        """Extend the lease of a lock this owner still holds; False when it is no longer theirs.

        Never takes a lock back: one released, or taken by another process since, stays theirs. A lease
        that ran out is renewed only while nobody took it, so no other holder wrote in between.
        """
        with self._tx() as conn:
            renewed = conn.execute(locks.update().where(locks.c.name == name, locks.c.owner == owner).values(
                expires_at=now() + timedelta(seconds=seconds)))
            return renewed.rowcount == 1

    def next_fence(self, name: str, owner: str, seconds: float) -> int | None:
        """Prove the lock is still this owner's and draw the next fence value (renewing the lease);
        None when the lock is no longer theirs."""
        with self._tx() as conn:
            drawn = conn.execute(locks.update().where(locks.c.name == name, locks.c.owner == owner).values(
                fence=locks.c.fence + 1, expires_at=now() + timedelta(seconds=seconds)))
            if drawn.rowcount != 1:
                return None
            return int(conn.execute(sa.select(locks.c.fence).where(locks.c.name == name)).scalar_one())

    def release_lock(self, name: str, owner: str) -> None:
        """Give the lock up; the row stays (empty owner) so that its fence keeps growing."""
        with self._tx() as conn:
            conn.execute(locks.update().where(locks.c.name == name, locks.c.owner == owner).values(
                owner="", expires_at=now()))

    def close(self) -> None:
        self.engine.dispose()
