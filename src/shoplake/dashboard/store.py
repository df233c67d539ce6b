"""The pipeline-health page's reads of the operational store (batches, stages, the file ledger, rule and
check results) and of the quarantine, read-only and cached until a batch or a file changes the store."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from shoplake.config import Settings
from shoplake.landing import ledger
from shoplake.monitor_store import open_store
from shoplake.quality.history import check_results
from shoplake.runs import run_stages

LIMIT = 500  # newest rows of the ledger and the batches shown


class StoreMissing(Exception):
    """The operational store cannot be read (no batch ran yet, or it does not answer)."""


def marker(settings: Settings) -> tuple[Any, ...]:
    """What changes whenever a batch or a file changes the store: the cache key of every read below (the
    settings themselves are not hashed: an app reads one lake). Two small aggregate queries, run on every
    rerun; `open_store` never creates an empty store."""
    engine, problem = open_store(settings)
    if engine is None:
        raise StoreMissing(problem.message if problem else "the operational store cannot be read")
    try:
        with engine.connect() as conn:
            b, f = ledger.batches.c, ledger.files.c
            batches = conn.execute(sa.select(sa.func.count(), sa.func.max(b.started_at), sa.func.max(b.finished_at),
                                             sa.func.count(b.finished_at))).one()
            files = conn.execute(sa.select(sa.func.count(), sa.func.max(f.detected_at), sa.func.max(f.processed_at),
                                           sa.func.count(f.archived_path))).one()
    finally:
        engine.dispose()
    return (settings.state_db_url, *batches, *files)


def _read(settings: Settings, query: sa.Select[Any]) -> pd.DataFrame:
    engine, problem = open_store(settings)
    if engine is None:
        raise StoreMissing(problem.message if problem else "the operational store cannot be read")
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            froms = [t for t in query.get_final_froms() if isinstance(t, sa.Table)]
            if any(not inspector.has_table(t.name) for t in froms):  # created with its first batch or check
                return pd.DataFrame(columns=[c.name for c in query.selected_columns])
            return pd.DataFrame(conn.execute(query).mappings().all(), columns=[c.name for c in query.selected_columns])
    finally:
        engine.dispose()


@st.cache_data(show_spinner=False, max_entries=32)
def batches(_settings: Settings, stamp: tuple[Any, ...]) -> pd.DataFrame:
    """The newest batches, each with its seconds per stage (from the run history) as columns."""
    b = ledger.batches.c
    rows = _read(_settings, sa.select(b.batch_id, b.business_date, b.kind, b.engine, b.status, b.files, b.rows_read,
                                     b.rows_loaded, b.rows_quarantined, b.started_at, b.finished_at, b.error)
                 .order_by(b.started_at.desc()).limit(LIMIT))
    stages = _read(_settings, sa.select(run_stages.c.batch_id, run_stages.c.stage, run_stages.c.seconds)
                   .where(run_stages.c.batch_id.in_(rows.batch_id.tolist())))
    if stages.empty:
        return rows
    wide = stages.pivot_table(index="batch_id", columns="stage", values="seconds", aggfunc="sum")
    wide.columns = [f"{c}_s" for c in wide.columns]
    return rows.merge(wide, left_on="batch_id", right_index=True, how="left")


@st.cache_data(show_spinner=False, max_entries=32)
def files(_settings: Settings, stamp: tuple[Any, ...]) -> pd.DataFrame:
    """The file ledger, newest first: where each file came from and went, and its reconciled counts."""
    f = ledger.files.c
    return _read(_settings, sa.select(f.relative, f.feed, f.business_date, f.status, f.batch_id, f.rows_read,
                                     f.rows_loaded, f.rows_quarantined, f.rows_duplicate, f.archived_path,
                                     f.detected_at, f.processed_at, f.error)
                 .order_by(f.file_id.desc()).limit(LIMIT))


@st.cache_data(show_spinner=False, max_entries=32)
def rules(_settings: Settings, stamp: tuple[Any, ...]) -> pd.DataFrame:
    """Rows failed per batch, feed and rule (every rule a quarantined row failed counts)."""
    r = ledger.rule_results.c
    return _read(_settings, sa.select(r.batch_id, r.feed, r.rule, r.severity, r.failed_rows)
                 .order_by(r.batch_id.desc(), r.feed, r.failed_rows.desc()))


@st.cache_data(show_spinner=False, max_entries=32)
def checks(_settings: Settings, stamp: tuple[Any, ...]) -> pd.DataFrame:
    """Every stored check result, newest first."""
    c = check_results.c
    return _read(_settings, sa.select(c.checked_at, c.batch_id, c.check_name, c.severity, c.passed, c.failing_rows,
                                     c.description).order_by(c.checked_at.desc(), c.check_name).limit(LIMIT * 4))
