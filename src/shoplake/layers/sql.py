"""Small builders for the SQL the layers generate: sqlglot nodes with quoted identifiers, never pasted text."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from shoplake.contracts.expressions import DIALECT


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def lit(value: str | int | float | bool | None) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def alias(expression: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(expression, ident(name))


def cast(expression: exp.Expr, type_sql: str, *, safe: bool = False) -> exp.Expr:
    data_type = exp.DataType.build(type_sql, dialect=DIALECT)
    return exp.TryCast(this=expression, to=data_type) if safe else exp.Cast(this=expression, to=data_type)


def func(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.func(name, *args, dialect=DIALECT)


def concat(*parts: exp.Expr | str) -> exp.Expr:
    """Text concatenation that treats NULL parts as empty, on every engine."""
    return exp.Concat(
        expressions=[lit(p) if isinstance(p, str) else cast(p, "VARCHAR") for p in parts],
        safe=True,
        coalesce=True,
    )


def table(name: str, schema: str | None = None) -> exp.Table:
    return exp.table_(ident(name), db=ident(schema) if schema else None)


def select(*columns: exp.Expr | str) -> exp.Select:
    return exp.select(*(exp.Star() if c == "*" else c for c in columns))


def and_all(conditions: Iterable[exp.Expr]) -> exp.Expr:
    items = list(conditions)
    return exp.and_(*items) if items else exp.true()


def compact_list(items: list[exp.Expr]) -> exp.Expr:
    """A list of the non-NULL items, e.g. the messages of the checks a row failed."""
    if not items:
        return exp.cast(exp.Array(expressions=[]), exp.DataType.build("VARCHAR[]", dialect=DIALECT))
    x = exp.to_identifier("x")
    return exp.ArrayFilter(
        this=exp.Array(expressions=items),
        expression=exp.Lambda(this=exp.Not(this=exp.Is(this=exp.column(x), expression=exp.null())), expressions=[x]),
    )


def render(expression: exp.Expr) -> str:
    return expression.sql(dialect=DIALECT)
