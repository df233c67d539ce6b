"""The dashboard's reads of gold tables: SQL templates with placeholders, run through DuckDB and cached per
Delta version of the tables they read (a new batch changes a version, and the next read sees it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlglot
import streamlit as st
from sqlglot import exp

from shoplake.config import Settings
from shoplake.contracts.expressions import DIALECT
from shoplake.engines.dashboard_reads import read_arrow, table_version

# A table a template reads, as `gold.name` (the only layer a page reads besides quarantine; never bronze).
_TABLE = re.compile(r"\b(gold|quarantine)\.([a-z_][a-z0-9_]*)\b")


@dataclass(frozen=True)
class Lake:
    """What a read needs to know about the lake: plain values, so that they hash as a cache key."""

    root: str
    scratch: str
    currency: str
    memory_limit: str

    @classmethod
    def of(cls, settings: Settings) -> Lake:
        return cls(root=settings.tables_root, scratch=str(settings.scratch / "_tmp"),
                   currency=settings.reporting_currency, memory_limit=settings.memory_limit)


class MissingTable(Exception):
    """A gold table a page needs is not in the lake yet (no batch has built it)."""

    def __init__(self, tables: list[str]) -> None:
        super().__init__(", ".join(tables))
        self.tables = tables


def versions(lake: Lake, tables: tuple[tuple[str, str], ...]) -> tuple[int | None, ...]:
    """The Delta version of each table: opening a table's log is milliseconds, so it is read on every rerun."""
    return tuple(table_version(f"{lake.root}/{layer}/{name}") for layer, name in tables)


def query(lake: Lake, template: str, **values: Any) -> pd.DataFrame:
    """The rows of a SQL template (DuckDB's dialect, `:name` placeholders filled by sqlglot as literals)."""
    tree = sqlglot.parse_one(template, dialect=DIALECT)
    filled = exp.replace_placeholders(tree, **values)
    assert isinstance(filled, exp.Query)
    sql = filled.sql(dialect=DIALECT)
    tables = tuple(dict.fromkeys(_TABLE.findall(template)))
    stamp = versions(lake, tables)
    missing = [f"{layer}/{name}" for (layer, name), v in zip(tables, stamp, strict=True) if v is None]
    if missing:
        raise MissingTable(missing)
    return _cached(lake, tables, stamp, sql)


@st.cache_data(show_spinner=False, max_entries=256)
def _cached(lake: Lake, tables: tuple[tuple[str, str], ...], stamp: tuple[int | None, ...], sql: str) -> pd.DataFrame:
    # `stamp` is only the cache key: a table's new version is a new entry, an old one ages out.
    tree = sqlglot.parse_one(sql, dialect=DIALECT)
    assert isinstance(tree, exp.Query)
    result = read_arrow(lake.root, tables, tree, scratch=Path(lake.scratch), memory_limit=lake.memory_limit)
    if result is None:
        raise MissingTable([f"{layer}/{name}" for layer, name in tables])
    return result.to_pandas()
