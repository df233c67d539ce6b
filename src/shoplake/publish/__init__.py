"""`shoplake publish`: gold (and, seed-style, silver as `production` and bronze as `staging`) copied into
PostgreSQL for BI tools, incrementally and table by table atomically; also run after every committed
batch when `publish:` is set (`PublishHook`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shoplake.config import Publish, Settings
from shoplake.errors import ConfigError, ShoplakeError
from shoplake.hooks import BatchContext, BatchHook

if TYPE_CHECKING:
    import psycopg

    from shoplake.publish.postgres import TableOutcome

log = logging.getLogger("shoplake.publish")


class PublishFailed(ShoplakeError):
    """A table could not be published; it keeps its previous contents and the next publish retries it."""

    retryable = True


@dataclass
class PublishReport:
    target: str  # the database, without a password
    tables: list[TableOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # lake tables that do not exist (yet)
    seconds: float = 0.0

    @property
    def rows_copied(self) -> int:
        return sum(t.rows_copied for t in self.tables)


def shown_url(url: str) -> str:
    """The URL without any password (there should be none: settings refuse one)."""
    scheme, _, rest = url.partition("://")
    login, at, place = rest.rpartition("@")
    return f"{scheme}://{login.split(':', 1)[0]}{at}{place}" if at else url


def connect(url: str) -> psycopg.Connection:
    """A connection to the target; its password comes from PGPASSWORD or ~/.pgpass (libpq reads both)."""
    try:
        import psycopg
    except ImportError:
        raise ConfigError("publishing to PostgreSQL needs psycopg", hint="pip install 'shoplake[postgres]'") from None
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        return psycopg.connect(plain, application_name="shoplake publish")
    except psycopg.OperationalError as error:
        first = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise PublishFailed(f"cannot connect to {shown_url(url)}: {first}",
                            hint="check the URL; the password comes from PGPASSWORD or ~/.pgpass") from None


def publish(settings: Settings, *, to: str | None = None) -> PublishReport:
    """Every lake table the settings publish, brought to its current Delta version; tables already there
    are left untouched. Raises PublishFailed naming the first table that failed (tables before it stay
    published, it and those after keep their previous state)."""
    from shoplake.contracts import load_contracts
    from shoplake.engines import postgres_io
    from shoplake.layers.gold import load_models
    from shoplake.publish import postgres
    from shoplake.publish.plan import plan

    target = settings.publish if to is None else Publish.model_validate(
        {**(settings.publish.model_dump(by_alias=True) if settings.publish else {}), "url": to})
    if target is None:
        raise ConfigError("nothing to publish to", hint="pass --to postgresql://user@host/db or set publish: in "
                          "shoplake.yml")
    started = time.perf_counter()
    contracts = load_contracts(settings.contracts)
    specs = plan(settings, target, load_models(settings.models), contracts)
    report = PublishReport(shown_url(target.url))
    conn = connect(target.url)
    try:
        postgres.ensure_state_table(conn, target.state_schema)
        for spec in specs:
            snap = postgres_io.snapshot(spec.path)
            if snap is None:
                report.skipped.append(f"{spec.layer}.{spec.name}")
                continue
            try:
                report.tables.append(postgres.publish_table(conn, spec, snap, target.state_schema))
            except Exception as error:  # any database or read error: this table was rolled back
                raise PublishFailed(f"publishing {spec.layer}.{spec.name} to {spec.qualified} failed: "
                                    f"{_first_line(error)}",
                                    hint="it keeps its previous contents; fix the cause and run shoplake publish "
                                    "(the next batch also retries it)") from error
    finally:
        conn.close()
    report.seconds = time.perf_counter() - started
    return report


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class PublishHook(BatchHook):
    """With `publish:` set, a committed batch (its audit passed) is published at once; a failure is logged
    and the next batch, or `shoplake publish`, publishes what is still behind."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def committed(self, batch: BatchContext) -> None:
        try:
            report = publish(batch.settings)
        except ShoplakeError as error:
            log.warning("batch %s: publish failed: %s", batch.batch_id, error)
            return
        changed = [t for t in report.tables if t.action != "unchanged"]
        log.info("batch %s: published %d table(s), %d row(s) copied to %s", batch.batch_id, len(changed),
                 report.rows_copied, report.target)


def publish_hooks(settings: Settings) -> list[BatchHook]:
    return [PublishHook(settings)] if settings.publish is not None else []
