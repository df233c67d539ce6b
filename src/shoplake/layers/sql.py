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
    return exp.TryCast(this=expression, to=data_type, safe=True) if safe else exp.Cast(this=expression, to=data_type)


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


def failures_list(checks: list[exp.Case]) -> exp.Expr:
    """The messages of the checks a row failed, or NULL when it failed none.

    Each check is `CASE WHEN <failed> THEN <message> END`. The list is only built for rows that failed
    something: most rows pass, and a NULL costs nothing where a list per row would.
    """
    if not checks:
        return cast(exp.null(), "VARCHAR[]")
    x = exp.to_identifier("x")
    messages = exp.ArrayFilter(
        this=exp.Array(expressions=checks),
        expression=exp.Lambda(this=exp.Not(this=exp.Is(this=exp.column(x), expression=exp.null())), expressions=[x]),
    )
    any_failed = exp.or_(*[check.args["ifs"][0].this.copy() for check in checks])
    return exp.Case(ifs=[exp.If(this=any_failed, true=messages)])
