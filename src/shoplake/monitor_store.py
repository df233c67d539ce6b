"""What the monitor reads: whether the lake and the operational store answer, and the store's files, batches
and lease, gathered per feed; read-only (a missing store is reported, never created)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shoplake.config import Settings
from shoplake.errors import ConfigError
from shoplake.landing import ledger as store
from shoplake.landing.storage import S3Store
from shoplake.monitor_findings import Check, Code, Finding, Level

# A file that reached the lake, is on its way there, or repeats one that did: the feed delivered that date.
ARRIVED = (store.WAITING, store.QUEUED, store.ARCHIVING, store.LOADED, store.DUPLICATE)
# A file whose rows are in the lake (archiving: counts final, the move to processed/ pending).
LOADED = (store.ARCHIVING, store.LOADED)
# A file that shows the lake holds the feed's current data: loaded, or the same content as a loaded one (an
# unchanged catalogue sent again is fresh news that nothing changed).
CURRENT = (*LOADED, store.DUPLICATE)
LAG_FILES = 14  # a feed's usual arrival delay is the median over its newest files, this many


@dataclass
class DayRows:
    """A feed's loaded files of one business date, summed."""

    rows_read: int = 0
    rows_quarantined: int = 0
    files: int = 0


@dataclass
class FeedHistory:
    """One feed as the ledger knows it: per business date in the window, and its newest file of all time."""

    feed: str
    loaded: dict[date, DayRows] = field(default_factory=dict)  # business date -> its loaded files
    arrived: set[date] = field(default_factory=set)  # dates with a file loaded, on its way, or a duplicate
    failed: dict[date, str] = field(default_factory=dict)  # dates with a failed file -> its error
    arrivals: list[tuple[date, datetime]] = field(default_factory=list)  # (business date, detected_at), by date
    newest_date: date | None = None  # the newest business date delivered, all time
    last_loaded_at: datetime | None = None  # when the newest loaded (or duplicate) file was detected (UTC)
    last_loaded_date: date | None = None  # the newest business date loaded (or sent again unchanged)


@dataclass
class Snapshot:
    """What the monitor judges: every feed's history, recent batches and the lease rows."""

    feeds: dict[str, FeedHistory]
    batches: list[dict[str, Any]]
    locks: list[dict[str, Any]]
    newest_date: date | None  # the newest business date of any delivered file
    window_start: date | None  # the oldest business date read (baselines reach this far back)

    def judged(self, days: int) -> list[date]:
        """The business dates the checks judge: the last `days` calendar days up to the newest delivered."""
        if self.newest_date is None:
            return []
        return [self.newest_date - timedelta(days=back) for back in range(days - 1, -1, -1)]


def parse_url(url: str) -> sa.URL:
    try:
        return sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise ConfigError("state_url is not a database URL", hint="write it like sqlite:///path/shoplake.db or "
                          "postgresql+psycopg://user@host/db") from None


def describe_url(url: str) -> str:
    return parse_url(url).render_as_string(hide_password=True)


def lake_finding(settings: Settings) -> Finding | None:
    """A critical finding when the lake's folder or bucket cannot be listed; None when it can."""
    lake = settings.lake
    where = str(lake)
    try:
        if isinstance(lake, Path):
            if not lake.is_dir():
                problem = "is a file, not a folder" if lake.exists() else "does not exist"
                return _unreachable(Code.LAKE_UNREACHABLE, f"the lake {where} {problem}", where)
            with os.scandir(lake) as entries:
                next(entries, None)
        elif lake.startswith("s3://"):
            bucket = S3Store(lake)
            bucket.client.list_objects_v2(Bucket=bucket.bucket, Prefix=bucket.prefix, MaxKeys=1)
        # Other URIs (abfss://, gs://) are read by the engines' Delta clients only; no listing to try here.
    except ConfigError:
        raise
    except Exception as error:
        return _unreachable(Code.LAKE_UNREACHABLE, f"the lake {where} cannot be listed: {_first_line(error)}", where)
    return None


def open_store(settings: Settings) -> tuple[sa.Engine | None, Finding | None]:
    """The operational store's engine once a query worked, else a critical finding (a URL that is not one,
    or a driver that is not installed, is a ConfigError: a setting to fix, not an outage)."""
    url = settings.state_db_url
    parsed = parse_url(url)
    shown = describe_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = Path(parsed.database)
        if not database.is_file():
            # Connecting would create an empty store: one that says nothing went wrong.
            return None, _unreachable(Code.STORE_UNREACHABLE, f"the state store {shown} does not exist", shown)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.NoSuchModuleError, ImportError) as error:
        raise ConfigError(f"state_url {shown}: {_first_line(error)}",
                          hint="install the database driver the URL names") from None
    try:
        with engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(store.batches)).scalar()
    except sa.exc.SQLAlchemyError as error:
        engine.dispose()
        cause = getattr(error, "orig", None) or error
        return None, _unreachable(Code.STORE_UNREACHABLE,
                                  f"the state store {shown} does not answer: {_first_line(cause)}", shown)
    return engine, None


def read_snapshot(engine: sa.Engine, settings: Settings, now: datetime) -> Snapshot:
    """Every feed's files in the window the checks need, its newest files of all time, recent batches."""
    files = store.files
    m = settings.monitor
    with engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(files.c.business_date))
                              .where(files.c.status.in_(ARRIVED))).scalar()
        start = newest - timedelta(days=7 * m.volume_weeks + m.check_days) if isinstance(newest, date) else None
        rows = conn.execute(sa.select(
            files.c.feed, files.c.business_date, files.c.status, files.c.rows_read, files.c.rows_quarantined,
            files.c.detected_at, files.c.replaces, files.c.error,
        ).where(files.c.feed.is_not(None), files.c.business_date >= (start or date.min))
            .order_by(files.c.business_date, files.c.file_id)).all()
        newest_per_feed = conn.execute(sa.select(files.c.feed, sa.func.max(files.c.business_date))
                                       .where(files.c.feed.is_not(None), files.c.status.in_(ARRIVED))
                                       .group_by(files.c.feed)).all()
        last_loaded = conn.execute(sa.select(files.c.feed, sa.func.max(files.c.detected_at),
                                             sa.func.max(files.c.business_date))
                                   .where(files.c.feed.is_not(None), files.c.status.in_(CURRENT))
                                   .group_by(files.c.feed)).all()
        batches = conn.execute(sa.select(store.batches).where(sa.or_(
            store.batches.c.status.in_([store.RUNNING, store.COMMITTED]),
            store.batches.c.business_date >= (start or date.min),
            store.batches.c.started_at >= now - timedelta(days=m.check_days),
        )).order_by(store.batches.c.started_at)).mappings().all()
        locks = conn.execute(sa.select(store.locks)).mappings().all()

    feeds: dict[str, FeedHistory] = {}

    def history(feed: str) -> FeedHistory:
        return feeds.setdefault(feed, FeedHistory(feed))

    for row in rows:
        feed = history(row.feed)
        if row.status in LOADED:
            day = feed.loaded.setdefault(row.business_date, DayRows())
            day.rows_read += row.rows_read or 0
            day.rows_quarantined += row.rows_quarantined or 0
            day.files += 1
        if row.status in ARRIVED:
            feed.arrived.add(row.business_date)
        elif row.status == store.FAILED:
            feed.failed.setdefault(row.business_date, row.error or "failed")
        if row.replaces is None:  # a file sent through again arrived long ago: its delay says nothing
            feed.arrivals.append((row.business_date, row.detected_at))
    for feed_name, newest_date in newest_per_feed:
        history(feed_name).newest_date = newest_date
    for feed_name, detected_at, business_date in last_loaded:
        feed = history(feed_name)
        feed.last_loaded_at, feed.last_loaded_date = detected_at, business_date
    for feed in feeds.values():
        feed.arrivals = feed.arrivals[-LAG_FILES:]
    return Snapshot(feeds=feeds, batches=[dict(b) for b in batches], locks=[dict(lock) for lock in locks],
                    newest_date=newest if isinstance(newest, date) else None, window_start=start)


def _unreachable(code: Code, message: str, where: str) -> Finding:
    return Finding(Check.REACHABILITY, code, Level.CRITICAL, message, numbers={"location": where})


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:300]
