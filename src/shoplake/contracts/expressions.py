"""Checks on the SQL a contract or model author writes: parsed with sqlglot, never pasted as text.

A row rule or derived column is one expression over one row of its feed: it may use an allow-list
of constructs and row-level functions, nothing else (no aggregate, window, parameter, qualified name,
table or file). A gold model is a whole query (checked in layers/gold.py): any function except those
that read files, settings or state outside the lake, which `reads_outside` names for both.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from shoplake.contracts.model import SQL_TYPES, Contract

DIALECT = "duckdb"  # rules and models are written once, in DuckDB's dialect

# Functions that return a boolean, so a rule may consist of just a call to one of them.
_BOOLEAN_FUNCTIONS = {"regexp_matches", "starts_with", "ends_with", "contains", "isfinite", "isnan"}
_BOOLEAN_FUNCTION_TYPES = (exp.RegexpLike, exp.RegexpILike, exp.RegexpFullMatch, exp.IsNan, exp.IsInf)

STATEMENTS = (
    exp.Query, exp.DDL, exp.DML, exp.Command, exp.Use, exp.Set, exp.Pragma,
    exp.Drop, exp.Create, exp.Insert, exp.Delete, exp.Update, exp.Merge, exp.Alter,
)

# The constructs a row expression is made of (exact types: a subclass is not allowed by its parent).
_ROW_NODES: frozenset[type[exp.Expr]] = frozenset({
    exp.Column, exp.Identifier, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Neg, exp.Not, exp.And, exp.Or,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is, exp.In,
    exp.Between, exp.Like, exp.ILike, exp.Escape, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod,
    exp.DPipe, exp.DataType, exp.DataTypeParam, exp.Interval,
})
# Row-level functions: one row's values in, one value out, nothing read from outside; sqlglot knows
# each of them, so it can write them for Spark too.
_ROW_FUNCTIONS: frozenset[type[exp.Func]] = frozenset({
    exp.Case, exp.If, exp.Coalesce, exp.Nullif, exp.Cast, exp.TryCast, exp.Xor,
    exp.Abs, exp.Sign, exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Pow, exp.Ln, exp.Log, exp.Exp,
    exp.Greatest, exp.Least, exp.IsNan, exp.IsInf,
    exp.Lower, exp.Upper, exp.Initcap, exp.Trim, exp.Length, exp.Substring, exp.Left, exp.Right, exp.Concat,
    exp.ConcatWs, exp.Replace, exp.StrPosition, exp.SplitPart, exp.Pad, exp.Reverse, exp.StartsWith,
    exp.EndsWith, exp.Contains, exp.RegexpLike, exp.RegexpILike, exp.RegexpFullMatch, exp.RegexpExtract,
    exp.RegexpReplace,
    exp.CurrentDate, exp.CurrentTimestamp, exp.Year, exp.Quarter, exp.Month, exp.Week, exp.Day, exp.DayOfMonth,
    exp.DayOfWeek, exp.DayOfWeekIso, exp.DayOfYear, exp.Hour, exp.Minute, exp.Second, exp.Extract,
    exp.DateDiff, exp.DateAdd, exp.DateSub, exp.DateTrunc, exp.TimestampTrunc, exp.DateFromParts, exp.LastDay,
    exp.TimeToStr,
})
_ROW_FUNCTION_NAMES = frozenset({"isfinite", "date_part"})  # DuckDB functions sqlglot keeps as Anonymous
# A unit keyword (`day`, `year`) is only a unit inside these.
_UNIT_TAKERS = (exp.Interval, exp.Extract, exp.DateDiff, exp.DateAdd, exp.DateSub, exp.DateTrunc,
                exp.TimestampTrunc)

# Functions that read files, URLs, settings, variables, the catalog or run SQL of their own, on DuckDB
# or Spark; matched on every name sqlglot knows a function by, lower-cased.
_READERS = frozenset({
    "glob", "sniff_csv", "query", "query_table", "current_setting", "getvariable", "getenv", "current_query",
    "json_execute_serialized_sql", "json_deserialize_sql", "which_secret", "arrow_scan", "arrow_scan_dumb",
    "pandas_scan", "python_map_function", "seq_scan", "import_database", "copy_database", "checkpoint",
    "force_checkpoint", "load_aws_credentials", "st_read", "st_read_meta", "metadata_info", "storage_info",
    "table_info", "database_size", "database_list", "show", "show_databases", "show_tables",
    "show_tables_expanded", "summary", "functions", "platform", "user_agent", "test_all_types",
    "read_files", "reflect", "try_reflect", "java_method", "secret", "try_secret", "input_file_name",
})
_READER_PREFIXES = ("read_", "parquet_", "pragma_", "duckdb_", "iceberg_", "delta_", "sqlite_", "postgres_",
                    "mysql_", "ducklake_", "json_execute", "enable_", "disable_")
_READER_SUFFIXES = ("_scan", "_attach")


class ExpressionProblem(ValueError):
    """An expression a user wrote is not acceptable; the message says why and what to write instead."""


def parse_sql(text: str, *, label: str | None = None) -> list[exp.Expr]:
    """Every statement of `text`; one clear ExpressionProblem for text sqlglot cannot parse (an
    unterminated comment or string) or cannot parse this deeply (its parser recurses per level).
    `label` names the text in messages (default: the text itself, cut short)."""
    shown = label or shown_text(text)
    try:
        return [e for e in sqlglot.parse(text, read=DIALECT) if e is not None]
    except SqlglotError as error:
        raise ExpressionProblem(f"cannot parse {shown}: {_first_line(error)}; check for an unterminated "
                                "comment, string or parenthesis") from None
    except RecursionError:
        raise ExpressionProblem(f"{shown} is nested too deeply to parse; write it with fewer nested "
                                "parentheses (split it into simpler parts)") from None


def parse_expression(text: str) -> exp.Expr:
    """Parse one row-level SQL expression (no statements, no queries; see the module's allow-list)."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionProblem("empty expression")
    parsed = parse_sql(text)
    if len(parsed) != 1:
        raise ExpressionProblem(f"{shown_text(text)} holds {len(parsed)} statements; write one expression")
    node = parsed[0]
    if isinstance(node, STATEMENTS):
        raise ExpressionProblem(f"{shown_text(text)} is a statement; write an expression over the row's columns")
    if node.find(exp.Query, exp.Subquery):
        raise ExpressionProblem(f"{shown_text(text)} contains a query; a rule sees one row at a time")
    _check_row_expression(node)
    return _zone_less_now(node)


def _zone_less_now(node: exp.Expr) -> exp.Expr:
    """`current_timestamp` as a zone-less UTC timestamp, the type of every timestamp column: compared as
    it is, each row's value would be converted to a zoned timestamp (a third of a feed's check)."""
    def convert(found: exp.Expr) -> exp.Expr:
        if isinstance(found, exp.CurrentTimestamp) and not isinstance(found.parent, exp.Cast):
            return exp.Cast(this=found.copy(), to=exp.DataType.build("TIMESTAMP"))
        return found
    return node.transform(convert)


def parse_boolean(text: str) -> exp.Expr:
    """Parse a row rule: one expression whose value is true, false or NULL."""
    node = parse_expression(text)
    inner = node.unnest() if isinstance(node, exp.Paren) else node
    if not _is_boolean(inner):
        raise ExpressionProblem(f"{shown_text(text)} is not a boolean expression (write a comparison or a test)")
    return node


def derived_expression(contract: Contract, name: str) -> exp.Expr:
    """A derived column's expression, cast to its declared type (if any) as silver computes it."""
    spec = contract.derived[name]
    node = parse_expression(spec.expr)
    if spec.type is None:
        return node
    return exp.Cast(this=node, to=exp.DataType.build(SQL_TYPES[spec.type], dialect=DIALECT))


def key_sources(contract: Contract) -> list[str]:
    """The file columns a feed's primary key is read from: its columns, and a derived key's inputs
    (transitively through earlier derived columns)."""
    sources: list[str] = []
    pending = list(contract.primary_key)
    seen: set[str] = set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if name in contract.derived:
            pending.extend(sorted(column_names(derived_expression(contract, name))))
        else:
            sources.append(name)
    return sources


def column_names(node: exp.Expr) -> set[str]:
    return {column.name for column in node.find_all(exp.Column)}


def reads_outside(node: exp.Func) -> bool:
    """Whether a function reads files, settings or other state outside the tables a query is given."""
    return any(name in _READERS or name.startswith(_READER_PREFIXES) or name.endswith(_READER_SUFFIXES)
               for name in function_names(node))


def function_names(node: exp.Func) -> set[str]:
    """Every name a function is known by, lower-cased: as written (unknown functions), sqlglot's names
    for it, and the name DuckDB's dialect writes, so neither case nor an alias hides it."""
    if isinstance(node, exp.Anonymous):
        return {node.name.lower()}
    names = {name.lower() for name in type(node).sql_names()} | {node.sql_name().lower()}
    written = node.sql(dialect=DIALECT).split("(", 1)[0].strip().lower()
    if written.replace("_", "").isalnum():
        names.add(written)
    return names


def function_label(node: exp.Func) -> str:
    """A function as a message names it: `read_text()`."""
    if isinstance(node, exp.Anonymous):
        return f"{node.name.lower()}()"
    written = node.sql(dialect=DIALECT).split("(", 1)[0].strip().lower()
    return f"{written if written.replace('_', '').isalnum() else node.sql_name().lower()}()"


def shown_text(text: str, limit: int = 80) -> str:
    """User text quoted for a one-line message, cut short when long."""
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def _check_row_expression(node: exp.Expr) -> None:
    """Refuse anything outside the allow-list; the most telling problem first (a file reader before the
    qualified name it is called by, an aggregate before the star it counts)."""
    nodes = list(node.walk())
    for part in nodes:
        if isinstance(part, exp.Func) and type(part) not in _ROW_NODES and reads_outside(part):
            raise ExpressionProblem(f"{function_label(part)} reads files or settings outside the row; a rule "
                                    "may only use the row's own columns")
    for part in nodes:
        if isinstance(part, exp.Window):
            raise ExpressionProblem(f"{_shown(part)} is a window function; a rule sees one row at a time, so "
                                    "compare the row's own columns")
        if isinstance(part, exp.AggFunc):
            raise ExpressionProblem(f"{_shown(part)} is an aggregate; a rule sees one row at a time, so "
                                    "compare the row's own columns")
        if isinstance(part, (exp.Placeholder, exp.Parameter, exp.SessionParameter)):
            raise ExpressionProblem(f"{_shown(part)} is a parameter, and nothing binds parameters in a rule; "
                                    "write the value itself")
    for part in nodes:
        problem = _not_allowed(part)
        if problem:
            raise ExpressionProblem(problem)


def _not_allowed(node: exp.Expr) -> str | None:
    if type(node) in _ROW_NODES and type(node) is not exp.Column:
        return None
    if isinstance(node, (exp.Column, exp.Dot)):
        if isinstance(node, exp.Column) and len(node.parts) == 1 and isinstance(node.this, exp.Identifier):
            return None
        return (f"{_shown(node)!r} is a qualified name; write the bare column name (a rule sees one row "
                "of its own feed)")
    if isinstance(node, exp.Func):
        if type(node) in _ROW_FUNCTIONS or (
                isinstance(node, exp.Anonymous) and node.name.lower() in _ROW_FUNCTION_NAMES):
            return None
        return (f"{function_label(node)} is not a row-level function a rule may use; use functions such as "
                "lower, trim, length, coalesce, round, date_diff or regexp_matches")
    if isinstance(node, exp.Var) and isinstance(node.parent, _UNIT_TAKERS):
        return None
    return (f"{_shown(node)!r} is not allowed in a rule; write comparisons and tests over the row's "
            "columns with row-level functions")


def _is_boolean(node: exp.Expr) -> bool:
    if isinstance(node, (exp.Predicate, exp.Connector, exp.Not, exp.Boolean)):
        return True
    if isinstance(node, exp.Paren):
        return _is_boolean(node.this)
    if isinstance(node, exp.Func):
        return bool(function_names(node) & _BOOLEAN_FUNCTIONS) or isinstance(node, _BOOLEAN_FUNCTION_TYPES)
    return False


def _shown(node: exp.Expr, limit: int = 60) -> str:
    text = node.sql(dialect=DIALECT)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
