"""Common table expressions a query reads more than once, split out to be computed once on Spark.

Spark inlines every deterministic CTE at each place it is read: a CTE read three times is computed three
times, and the plan the optimizer works on grows with each copy (the SCD2 query's plan took a minute at
a few hundred rows). The Spark engine computes such a CTE first, keeps its rows, and lets the query read
them, as DuckDB does by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from sqlglot import exp

_names = count(1)


def _references(node: exp.Expr, name: str) -> list[exp.Expr]:
    """The FROM and JOIN sources in `node` that read the table `name`: a Table, or an identifier (with or
    without an alias), as the layers build some of them."""
    found: list[exp.Expr] = []
    for clause in node.find_all(exp.From, exp.Join):
        source = clause.this
        named = source.this if isinstance(source, exp.Alias) else source
        if isinstance(named, exp.Table):
            if not named.db and not named.catalog and named.name == name:
                found.append(named)
        elif isinstance(named, exp.Identifier) and named.name == name:
            found.append(source)
    return found


def _read_as(source: exp.Expr, table: str) -> exp.Table:
    """A table in place of `source`, under the name (or alias) `source` was read by."""
    if isinstance(source, exp.Table):
        alias = source.alias or source.name
    else:
        alias = source.alias if isinstance(source, exp.Alias) else source.name
    return exp.Table(this=exp.to_identifier(table, quoted=True),
                     alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))


def _read_by(node: exp.Expr, ctes: list[exp.CTE]) -> list[exp.CTE]:
    """The CTEs of `ctes` that `node` reads, directly or through one another, in their order."""
    needed: set[str] = set()
    waiting = [node]
    while waiting:
        reader = waiting.pop()
        for cte in ctes:
            if cte.alias not in needed and _references(reader, cte.alias):
                needed.add(cte.alias)
                waiting.append(cte.this)
    return [c for c in ctes if c.alias in needed]


def split_shared_ctes(query: exp.Query, keep: Callable[[str, exp.Query], None]) -> exp.Query:
    """`query` with each CTE that it reads more than once replaced by a table of its rows: `keep(name,
    cte_query)` computes and keeps them under `name`, in order (a kept CTE may read an earlier one).
    CTEs read once stay inlined. `query` itself is not changed."""
    with_ = query.args.get("with_")
    if not isinstance(with_, exp.With) or with_.args.get("recursive"):
        return query
    query = query.copy()
    with_ = query.args["with_"]
    for cte in list(with_.expressions):
        name = cte.alias
        if len(_references(query, name)) - len(_references(cte, name)) < 2:
            continue
        inlined = [c for c in with_.expressions if c is not cte]
        own = cte.this.copy()
        earlier = _read_by(own, inlined[:with_.expressions.index(cte)])
        if earlier:
            own_with = own.args.get("with_")
            own.set("with_", exp.With(expressions=[*(c.copy() for c in earlier),
                                                   *(own_with.expressions if own_with else [])]))
        kept = f"_cte{next(_names)}_{name}"
        keep(kept, own)
        cte.pop()
        for source in _references(query, name):
            source.replace(_read_as(source, kept))
    # What only the kept CTEs read is read by nothing now.
    body = query.copy()
    body.set("with_", None)
    still = _read_by(body, list(with_.expressions))
    query.set("with_", exp.With(expressions=still) if still else None)
    return query
