"""Read access to the lake's tables for people: counts, small samples and filtered pages, through the engine seam."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlglot import exp

from shoplake.config import Settings
from shoplake.contracts.expressions import ExpressionProblem, column_names, parse_boolean
from shoplake.engines import Engine, open_engine
from shoplake.errors import ConfigError, EngineError
from shoplake.layers.sql import col, lit, select, table

LAYERS = ("bronze", "silver", "quarantine", "gold")
# A table name is one folder of its layer: no separators, no `..`, so it never leaves the lake.
_TABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
# What a quarantined row carries besides its raw values, and how `quarantine_rows` shows it.
_QUARANTINE_META = ("_source_file", "_row_number", "_batch_id", "_ingested_at", "_failed_rules", "_errors")


@dataclass(frozen=True)
class Page:
    """Some rows of a lake table: the columns shown, the rows (at most the limit) and how many matched."""

    table: str  # layer/name
    columns: list[str]
    rows: list[tuple[Any, ...]]
    matched: int


def query_table(config: Settings, layer: str, name: str, query: exp.Select | None = None) -> list[tuple[Any, ...]]:
    """Rows of `query` over <lake>/<layer>/<name> (exposed as layer.name); all rows when no query."""
    engine = _engine(config)
    try:
        if not engine.attach_delta(f"{config.tables_root}/{layer}/{name}", layer, name):
            return []
        return engine.fetch(query or select("*").from_(table(name, layer)))
    finally:
        engine.close()


def top_reasons(config: Settings, feed: str, limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent failed rules of a feed's quarantine."""
    rule = exp.Explode(this=col("_failed_rules"))
    inner = select(exp.alias_(rule, "rule", quoted=True)).from_(table(feed, "quarantine"))
    query = (select(col("rule"), exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True))
             .from_(exp.alias_(inner.subquery(), "r")).group_by(col("rule"))
             .order_by(exp.Ordered(this=col("n"), desc=True)).limit(limit))
    return [(str(r), int(n)) for r, n in query_table(config, "quarantine", feed, query)]


def parse_table_ref(text: str) -> tuple[str, str]:
    """`silver/orders` (or `silver.orders`) as (layer, name); a usage error naming the layers otherwise."""
    layer, sep, name = text.replace(".", "/", 1).partition("/")
    if not sep or layer not in LAYERS or not _TABLE_NAME.fullmatch(name):
        raise ConfigError(f"{text!r} is not a lake table; write LAYER/TABLE, LAYER one of {', '.join(LAYERS)}",
                          hint="for example: shoplake show silver/orders")
    return layer, name


def show_table(config: Settings, layer: str, name: str, *, where: str | None = None, limit: int = 20) -> Page:
    """Up to `limit` rows of a lake table, those for which `where` (a row rule's SQL, checked like one) is true."""
    parse_table_ref(f"{layer}/{name}")

    def condition(columns: list[str]) -> exp.Expr | None:
        return None if where is None else _where(where, f"{layer}/{name}", columns)
    return _page(config, layer, name, condition, limit=limit)


def quarantine_rows(config: Settings, feed: str, *, rule: str | None = None, file: str | None = None,
                    limit: int = 20) -> Page:
    """A feed's quarantined rows, oldest first: file, row, every reason (a list), then the raw values as they came.

    `rule` keeps rows that failed that rule (a name as `quarantine show` lists it); `file` keeps rows of
    one file, given as its path in landing or its bare name."""
    parse_table_ref(f"quarantine/{feed}")

    def condition(columns: list[str]) -> exp.Expr | None:
        tests: list[exp.Expr] = []
        if rule is not None:
            tests.append(exp.ArrayContains(this=col("_failed_rules"), expression=lit(rule)))
        if file is not None:
            source = col("_source_file")
            tests.append(exp.or_(exp.EQ(this=source, expression=lit(file)),
                                 exp.EndsWith(this=source.copy(), expression=lit("/" + file))))
        return exp.and_(*tests) if tests else None

    def shown(columns: list[str]) -> list[tuple[str, exp.Expr]]:
        raw = [c for c in columns if c not in _QUARANTINE_META]
        return [("file", col("_source_file")), ("row", col("_row_number")), ("reasons", col("_errors")),
                *((c, col(c)) for c in raw)]

    order: list[exp.Expr] = [col("_ingested_at"), col("_source_file"), col("_row_number")]
    return _page(config, "quarantine", feed, condition, limit=limit, shown=shown, order=order)


def _page(config: Settings, layer: str, name: str, condition: Callable[[list[str]], exp.Expr | None], *,
          limit: int, shown: Callable[[list[str]], list[tuple[str, exp.Expr]]] | None = None,
          order: list[exp.Expr] | None = None) -> Page:
    path = f"{config.tables_root}/{layer}/{name}"
    engine = _engine(config)
    try:
        if not engine.attach_delta(path, layer, name):
            raise ConfigError(f"there is no table {layer}/{name} in the lake at {config.tables_root}",
                              hint=_tables_hint(config, layer))
        columns = engine.table_columns(path)
        where = condition(columns)
        projection = shown(columns) if shown else [(c, col(c)) for c in columns]
        query = select(*(exp.alias_(e, c, quoted=True) for c, e in projection)).from_(table(name, layer))
        count = select(exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True)).from_(table(name, layer))
        if where is not None:
            query, count = query.where(where), count.where(where.copy())
        if order:
            query = query.order_by(*order)
        try:
            matched = int(engine.fetch(count)[0][0])
            rows = engine.fetch(query.limit(limit))
        except EngineError as error:
            if where is None:
                raise
            raise ConfigError(f"the condition cannot be evaluated on {layer}/{name}: {error.message}",
                              hint="compare columns with values of their type (every bronze and quarantine "
                              "column is text)") from None
        return Page(table=f"{layer}/{name}", columns=[c for c, _ in projection], rows=rows, matched=matched)
    finally:
        engine.close()


def _where(text: str, shown: str, columns: list[str]) -> exp.Expr:
    """`--where` parsed and checked like a row rule: one boolean expression over the table's own columns."""
    try:
        node = parse_boolean(text)
    except ExpressionProblem as problem:
        raise ConfigError(f"--where: {problem}", hint="write a condition over the table's columns, "
                          "as in a contract rule: \"status = 'cancelled'\"") from None
    known = {c.lower() for c in columns}
    unknown = sorted(n for n in column_names(node) if n.lower() not in known)
    if unknown:
        raise ConfigError(f"--where: unknown column(s) {', '.join(unknown)} in {shown}",
                          hint=f"its columns: {', '.join(columns)}")
    return node


def _tables_hint(config: Settings, layer: str) -> str:
    root = Path(config.tables_root) / layer if "://" not in config.tables_root else None
    names = sorted(p.name for p in root.iterdir() if (p / "_delta_log").is_dir()) if root and root.is_dir() else []
    if names:
        return f"tables in {layer}: {', '.join(names)}"
    return "`shoplake status` shows what has loaded; a table appears with its feed's first file"


def _engine(config: Settings) -> Engine:
    return open_engine(config.engine, temp_dir=config.scratch / "_tmp", memory_limit=config.memory_limit,
                       spark_master=config.spark_master, spark_conf=config.spark_conf)
