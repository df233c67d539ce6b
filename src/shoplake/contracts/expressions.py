"""Checks on the SQL a contract or model author writes: parsed with sqlglot, never pasted as text."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

DIALECT = "duckdb"  # rules and models are written once, in DuckDB's dialect

# Functions that return a boolean, so a rule may consist of just a call to one of them.
_BOOLEAN_FUNCTIONS = {"regexp_matches", "starts_with", "ends_with", "contains", "isfinite", "isnan"}


_STATEMENTS = (
    exp.Query, exp.DDL, exp.DML, exp.Command, exp.Use, exp.Set, exp.Pragma,
    exp.Drop, exp.Create, exp.Insert, exp.Delete, exp.Update, exp.Merge, exp.Alter,
)


class ExpressionProblem(ValueError):
    """An expression a user wrote is not acceptable; the message says why."""


def parse_expression(text: str) -> exp.Expr:
    """Parse one SQL expression (no statements, no queries)."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionProblem("empty expression")
    try:
        parsed = [e for e in sqlglot.parse(text, read=DIALECT) if e is not None]
    except ParseError as error:
        raise ExpressionProblem(f"cannot parse {text!r}: {_first_line(error)}") from None
    if len(parsed) != 1:
        raise ExpressionProblem(f"{text!r} holds {len(parsed)} statements; write one expression")
    node = parsed[0]
    if isinstance(node, _STATEMENTS):
        raise ExpressionProblem(f"{text!r} is a statement; write an expression over the row's columns")
    if node.find(exp.Query, exp.Subquery):
        raise ExpressionProblem(f"{text!r} contains a query; a rule sees one row at a time")
    return node


def parse_boolean(text: str) -> exp.Expr:
    """Parse a row rule: one expression whose value is true, false or NULL."""
    node = parse_expression(text)
    inner = node.unnest() if isinstance(node, exp.Paren) else node
    if not _is_boolean(inner):
        raise ExpressionProblem(f"{text!r} is not a boolean expression (write a comparison or a test)")
    return node


def column_names(node: exp.Expr) -> set[str]:
    return {column.name for column in node.find_all(exp.Column)}


def _is_boolean(node: exp.Expr) -> bool:
    if isinstance(node, (exp.Predicate, exp.Connector, exp.Not, exp.Boolean)):
        return True
    if isinstance(node, exp.Paren):
        return _is_boolean(node.this)
    if isinstance(node, exp.Func):
        return node.sql_name().lower() in _BOOLEAN_FUNCTIONS or isinstance(node, exp.RegexpLike)
    return False


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
