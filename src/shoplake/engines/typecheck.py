"""Binds contract SQL to a feed's typed columns when the contract loads, so a type error never reaches a batch.

The row is one row of NULLs with the types silver casts to, a temporary table of a cursor on an empty
in-memory DuckDB that can read no file and change no setting; each expression is bound and evaluated
against it (constant folding happens then too, so `amount > 'abc'` fails here, as in every batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import TracebackType

import duckdb
from sqlglot import exp

DIALECT = "duckdb"
_VALUE = "_value"
_SEALED: dict[str, str | int | float | bool] = {
    "enable_external_access": False,  # no file, no URL, no extension download
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "threads": 1,
    "memory_limit": "128MB",
}


class BindProblem(ValueError):
    """An expression does not bind or evaluate over the typed row; the message is DuckDB's first line."""


class TypedRow:
    """One row of a feed's typed columns to bind expressions against; derived columns join it as added."""

    def __init__(self, columns: Mapping[str, str]) -> None:
        self._con = _sealed_database().cursor()  # own temporary tables, at a fraction of a database's cost
        # A stored row, not a constant: over constant NULLs the optimizer folds `NULL > 'abc'` to NULL
        # and never casts 'abc', which every batch would.
        row = exp.select(*[
            exp.alias_(exp.Cast(this=exp.null(), to=exp.DataType.build(sql_type, dialect=DIALECT)),
                       exp.to_identifier(name, quoted=True))
            for name, sql_type in columns.items()
        ])
        self._views = 0
        self._run(f"CREATE TEMP TABLE {self._view_name()} AS {row.sql(dialect=DIALECT)}")

    def __enter__(self) -> TypedRow:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def type_of(self, expression: exp.Expr) -> str:
        """The SQL type of `expression` over the row (`BOOLEAN`, `DECIMAL(18,2)`, ...)."""
        query = exp.select(exp.alias_(expression.copy(), exp.to_identifier(_VALUE, quoted=True))).from_(
            exp.to_table(self._view_name(), dialect=DIALECT))
        try:
            relation = self._con.sql(query.sql(dialect=DIALECT))
            (value_type,) = relation.types
            relation.fetchall()
        except duckdb.Error as error:
            raise BindProblem(_first_line(error)) from None
        return str(value_type)

    def add(self, name: str, expression: exp.Expr) -> str:
        """Bind a derived column, then make it part of the row (as silver computes it over the typed row)."""
        value_type = self.type_of(expression)
        derived = exp.select("*", exp.alias_(expression.copy(), exp.to_identifier(name, quoted=True))).from_(
            exp.to_table(self._view_name(), dialect=DIALECT))
        self._views += 1
        self._run(f"CREATE TEMP VIEW {self._view_name()} AS {derived.sql(dialect=DIALECT)}")
        return value_type

    def _view_name(self) -> str:
        return f"row_{self._views}"

    def _run(self, sql: str) -> None:
        try:
            self._con.execute(sql)
        except duckdb.Error as error:
            raise BindProblem(_first_line(error)) from None

    def close(self) -> None:
        self._con.close()


@cache
def _sealed_database() -> duckdb.DuckDBPyConnection:
    """One empty in-memory database per process, sealed before first use."""
    con = duckdb.connect(":memory:", config=dict(_SEALED))
    con.execute("SET lock_configuration = true")
    return con


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0].rstrip(".") if lines else type(error).__name__
