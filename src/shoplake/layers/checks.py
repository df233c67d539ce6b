"""Silver, part one: cast, normalise, de-duplicate and check a feed's bronze rows in one set-based query.

Every check a row can fail becomes a CASE expression that yields "<rule>: <message>" or NULL; the row's
`_errors` list keeps every one it failed (NULL when none), so the quarantine shows all reasons at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from shoplake.contracts import Column, ColumnType, Contract, LoadMode, Severity
from shoplake.contracts.expressions import column_names, derived_expression, key_sources, parse_boolean
from shoplake.contracts.model import SQL_TYPES
from shoplake.layers.bronze import META_COLUMNS, bronze_table
from shoplake.layers.sql import alias, and_all, cast, col, concat, failures_list, func, lit, select, table

FORMATS = {
    "email": r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$",
    "phone": r"^\+?[0-9][0-9 ().-]{5,19}[0-9]$",
}
# A timestamp without an offset or a zone name: "2026-01-05", "2026-01-05 10:30", "2026-01-05T10:30:00.123".
PLAIN_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?$"
LINEAGE = ("_source_file", "_row_number", "_batch_id", "_ingested_at")
# Statistics kept per file of every table a feed writes: what a reprocess or replay looks rows up by.
FILE_STATS = ("_source_file", "_batch_id")


def stat_keys(contract: Contract) -> list[str]:
    """A feed's key columns that can have file statistics: Spark refuses them on a boolean, and a table one
    engine creates the other continues."""
    return [k for k in contract.primary_key if contract.type_of(k) is not ColumnType.BOOLEAN]


def checked_table(feed: str) -> str:
    return f"checked__{feed}"


def valid_table(feed: str) -> str:
    return f"valid__{feed}"


def batch_keys_table(feed: str) -> str:
    """A checked feed's valid rows' referenced columns: what this batch's child feeds check against."""
    return f"batchkeys__{feed}"


def batch_failed_table(feed: str) -> str:
    """A checked feed's failed rows' referenced columns and reasons: a child's missing parent may be there."""
    return f"batchfailed__{feed}"


def refkeys_table(feed: str, column: str) -> str:
    return f"refkeys__{feed}__{column}"


def quarantined_keys_table(feed: str, column: str) -> str:
    return f"qkeys__{feed}__{column}"


def typed_value(contract: Contract, name: str) -> exp.Expr:
    """A column's typed value computed from its raw text, as the checks compute it (normalised, then cast)."""
    column = contract.column(name)
    normalised = _normalise(contract, column)
    return _typed(column).transform(
        lambda node: normalised.copy() if isinstance(node, exp.Column) and node.name == _text(name) else node)


def _text(name: str) -> str:
    return f"__t_{name}"


@dataclass(frozen=True)
class CheckPlan:
    """The queries that check one feed of one batch; built once, run by any engine."""

    contract: Contract
    query: exp.Select
    severities: dict[str, Severity]  # rule name -> severity, for every rule a row can fail


def plan_checks(
    contract: Contract,
    *,
    drifted_files: list[str],
    existing_keys: bool,
) -> CheckPlan:
    """The query that turns bronze rows of a feed into typed rows with their `_errors` and `_warnings`.

    `existing_keys`: silver already holds this feed, so an append-mode key seen before is a duplicate.
    """
    feed = contract.feed
    severities: dict[str, Severity] = {}
    raw_columns = contract.column_names

    # 1. Exact duplicates: one row per distinct content within a file, counting the copies. Copies share
    # their key text, so only rows whose key hash repeats are grouped on every column; the rest pass.
    # A hash collision only sends a few more rows down the exact path, so the result stays exact.
    bronze = table(bronze_table(feed))
    key_hash = exp.func("hash", *[col(k) for k in key_sources(contract)], col("_source_file"))
    # The plan's trees are built fresh for this one query, so the builders chain in place (copy=False):
    # each of their default copies duplicated the whole growing SELECT (a third of a small batch's sqlglot).
    repeated = select(alias(key_hash, "_key_hash")).from_(bronze.copy(), copy=False).group_by(
        key_hash.copy(), copy=False).having(exp.GT(this=exp.Count(this=exp.Star()), expression=lit(1)), copy=False)
    bronze_b = exp.alias_(select("*", alias(key_hash.copy(), "_key_hash")).from_(bronze.copy(), copy=False).subquery(
        copy=False), "b", copy=False)
    same_key = exp.EQ(this=col("_key_hash", "b"), expression=col("_key_hash", "r"))
    singles = select(*[col(c, "b") for c in (*raw_columns, *META_COLUMNS)], alias(lit(0), "_duplicates")).from_(
        bronze_b, copy=False).join(exp.alias_(exp.to_identifier("repeated"), "r"), on=same_key, join_type="anti",
                                   copy=False)
    grouped = [col(c, "b") for c in (*raw_columns, "_rescued", "_source_file", "_batch_id", "_ingested_at")]
    copies = (
        select(*grouped[:-2], alias(exp.Min(this=col("_row_number", "b")), "_row_number"), *grouped[-2:],
               alias(exp.Sub(this=exp.Count(this=exp.Star()), expression=lit(1)), "_duplicates"))
        .from_(bronze_b.copy(), copy=False)
        .join(exp.alias_(exp.to_identifier("repeated"), "r"), on=same_key.copy(), join_type="semi", copy=False)
        .group_by(*grouped, copy=False)
    )
    dedup = exp.union(singles, copies, distinct=False, copy=False)

    # 2. Normalised text and typed value of every column.
    normalised = [alias(_normalise(contract, c), _text(c.name)) for c in contract.columns]
    norm = select(*normalised, *[col(m) for m in (*META_COLUMNS, "_duplicates")]).from_(table("dedup"), copy=False)
    typed_cols = [alias(_typed(c), c.name) for c in contract.columns]
    typed = select("*", *typed_cols).from_(table("norm"), copy=False)
    derived = _derived(contract)

    # 3. References: a LEFT JOIN per referenced key set (silver plus this batch's valid parent rows).
    checked_from = exp.select("*").from_(exp.alias_(exp.to_identifier("derived"), "d"), copy=False)
    errors: list[exp.Case] = []
    warnings: list[exp.Case] = []
    ctes: list[tuple[str, exp.Select]] = []
    for i, (column, parent, parent_column) in enumerate(contract.references):
        ref = f"r{i}"
        checked_from = checked_from.join(
            exp.alias_(table(refkeys_table(feed, column.name)), ref),
            on=exp.EQ(this=col(column.name, "d"), expression=col(f"_k{i}", ref)),
            join_type="left", copy=False,
        )
        # A parent that is not found may be in quarantine (this batch's or an earlier one's): say where
        # and why, so the fix starts at the parent. One row per key on that side, so no row multiplies.
        checked_from = checked_from.join(
            exp.alias_(table(quarantined_keys_table(feed, column.name)), f"q{i}"),
            on=exp.EQ(this=col(column.name, "d"), expression=col(f"_q{i}", f"q{i}")),
            join_type="left", copy=False,
        )
        name = f"{column.name}.references"
        severities[name] = Severity.QUARANTINE
        reason = col(f"_q{i}_reason")
        errors.append(_case(
            exp.and_(col(column.name).is_(exp.null()).not_(), col(f"_k{i}").is_(exp.null())),
            name, exp.Case(
                ifs=[exp.If(this=reason.is_(exp.null()).not_(), true=concat(
                    f"{column.name} ", col(column.name), f" is in quarantine ({parent}): ", reason.copy()))],
                default=concat(f"{column.name} ", col(column.name), f" not found in {parent}.{parent_column}")),
        ))
    if contract.load.mode is LoadMode.APPEND and existing_keys:
        checked_from = checked_from.join(
            exp.alias_(table(refkeys_table(feed, "_self")), "rk"),
            on=and_all(exp.EQ(this=col(k, "d"), expression=col(f"_pk_{k}", "rk")) for k in contract.primary_key),
            join_type="left", copy=False,
        )

    # 4. Column checks.
    for column in contract.columns:
        errors.extend(_column_checks(column, severities, is_key=column.name in contract.primary_key))
    for key in contract.primary_key:
        if key in contract.derived:  # a key computed from the row must compute to a value
            name = f"{key}.required"
            severities[name] = Severity.QUARANTINE
            errors.append(_case(col(key).is_(exp.null()), name,
                                f"{key} (derived, part of the primary key) is empty"))
    key_null = and_all(col(k).is_(exp.null()) for k in contract.primary_key)
    if contract.load.mode is LoadMode.APPEND:
        name = "primary_key.unique"
        severities[name] = Severity.QUARANTINE
        # Only keys that repeat in the batch are ranked (a hash aggregate finds them); ranking every row
        # would sort the whole batch. A row of a file is named by (_source_file, _row_number).
        later_copies = _later_copies(contract, key_null)
        ctes.append(("later_copies", later_copies))
        checked_from = checked_from.join(
            exp.alias_(exp.to_identifier("later_copies"), "lc"),
            on=and_all(exp.EQ(this=col(c, "d"), expression=col(f"_lc{c}", "lc"))
                       for c in ("_source_file", "_row_number")),
            join_type="left", copy=False,
        )
        seen_before: exp.Expr = col("_lc_source_file").is_(exp.null()).not_()
        if existing_keys:
            seen_before = exp.or_(seen_before, col(f"_pk_{contract.primary_key[0]}").is_(exp.null()).not_())
        errors.append(_case(seen_before, name, concat(
            "primary key ", *_key_text(contract), " was already loaded or appears twice")))
    if drifted_files:
        name = "file.schema_drift"
        severities[name] = Severity.QUARANTINE
        in_drifted = exp.In(this=col("_source_file"), expressions=[lit(f) for f in drifted_files])
        errors.append(_case(in_drifted, name, "the file's columns differ from the contract (schema_drift: quarantine)"))

    # 5. Row rules from the contract.
    for rule in contract.rules:
        severities[rule.name] = rule.severity
        failed = exp.Not(this=exp.Coalesce(this=exp.paren(parse_boolean(rule.expr)), expressions=[exp.true()]))
        entry = _case(failed, rule.name, rule.message or f"fails {rule.expr}")
        (warnings if rule.severity is Severity.WARN else errors).append(entry)

    checked_rows = select(
        *[col(c) for c in contract.column_names], *[col(d) for d in contract.derived],
        *[col(m) for m in (*META_COLUMNS, "_duplicates")],
        alias(failures_list(errors), "_errors"),
        alias(failures_list(warnings), "_warnings"),
    ).from_(table("checked_from"), copy=False)
    query = checked_rows
    for name, cte in (("repeated", repeated), ("dedup", dedup), ("norm", norm), ("typed", typed),
                      ("derived", derived), *ctes, ("checked_from", checked_from)):
        query = query.with_(name, as_=cte, copy=False)  # fresh trees: a copy per CTE is quadratic
    return CheckPlan(contract=contract, query=query, severities=severities)


def _later_copies(contract: Contract, key_null: exp.Expr) -> exp.Select:
    """The rows of the batch whose primary key an earlier row (by file, then row number) already has.

    Keys are typed from the raw bronze text, as the checks type them. Integer hashes find the keys that
    may repeat (one cheap aggregate over the batch); only their rows are ranked exactly. The first row of
    a key is never an exact copy dropped by de-duplication: a copy's first row comes before it.
    """
    if any(k in contract.derived for k in contract.primary_key):  # computed keys: rank the derived rows
        keys: list[exp.Expr] = [col(k) for k in contract.primary_key]
        source: exp.Expr = exp.to_identifier("derived")
        null_key = key_null.copy()
    else:
        keys = [typed_value(contract, k) for k in contract.primary_key]
        source = table(bronze_table(contract.feed))
        null_key = and_all(k.copy().is_(exp.null()) for k in keys)
    key_hash = exp.func("hash", *[k.copy() for k in keys])
    repeats = select(alias(key_hash, "_h")).from_(source.copy()).where(exp.Not(this=exp.paren(null_key))).group_by(
        key_hash.copy()).having(exp.GT(this=exp.Count(this=exp.Star()), expression=lit(1)))
    named = [alias(k.copy(), f"_k{i}") for i, k in enumerate(keys)]
    candidates = select(*named, col("_source_file"), col("_row_number")).from_(source.copy()).where(
        exp.In(this=key_hash.copy(), query=repeats.subquery()))
    rank = exp.Window(
        this=exp.RowNumber(), partition_by=[col(f"_k{i}") for i in range(len(keys))],
        order=exp.Order(expressions=[exp.Ordered(this=col("_source_file")), exp.Ordered(this=col("_row_number"))]))
    ranked = select(col("_source_file"), col("_row_number"), alias(rank, "_rank")).from_(
        exp.alias_(candidates.subquery(), "candidates"))
    return select(alias(col("_source_file"), "_lc_source_file"), alias(col("_row_number"), "_lc_row_number")).from_(
        exp.alias_(ranked.subquery(), "ranked")).where(exp.GT(this=col("_rank"), expression=lit(1)))


def _derived(contract: Contract) -> exp.Select:
    """The typed rows with every derived column, in declaration order: a column that uses an earlier
    derived one is computed one level up, the rest side by side in one projection."""
    source: exp.Expr = exp.to_identifier("typed")
    level: list[exp.Expr] = []
    in_level: set[str] = set()
    depth = 0
    for name in contract.derived:
        node = derived_expression(contract, name)
        if column_names(node) & in_level:
            depth += 1
            source = exp.alias_(select("*", *level).from_(source, copy=False).subquery(copy=False), f"_d{depth}",
                                copy=False)
            level, in_level = [], set()
        level.append(alias(node, name))
        in_level.add(name)
    return select("*", *level).from_(source, copy=False)


def _normalise(contract: Contract, column: Column) -> exp.Expr:
    """Trimmed text, NULL for the contract's null markers, then case and alias mapping."""
    raw = col(column.name)
    # Only a value that starts or ends with a blank is trimmed: trimming copies the text, which for long
    # values (URLs) costs ten times the test. `trim` removes spaces only, exactly what the test looks for.
    padded = exp.or_(*[exp.Like(this=raw.copy(), expression=lit(pattern)) for pattern in (" %", "% ")])
    trimmed: exp.Expr = exp.Case(ifs=[exp.If(this=padded, true=func("trim", raw.copy()))], default=raw.copy())
    value: exp.Expr = exp.Nullif(this=trimmed, expression=lit("")) if contract.null_values == ("",) else exp.Case(
        ifs=[exp.If(this=exp.In(this=trimmed.copy(), expressions=[lit(v) for v in contract.null_values]),
                    true=exp.null())],
        default=trimmed,
    )
    if column.case == "lower":
        value = exp.Lower(this=value)
    elif column.case == "upper":
        value = exp.Upper(this=value)
    if column.map:
        value = exp.Case(
            ifs=[exp.If(this=exp.EQ(this=value.copy(), expression=lit(k)), true=lit(v)) for k, v in column.map.items()],
            default=value,
        )
    return value


def _typed(column: Column) -> exp.Expr:
    text: exp.Expr = col(_text(column.name))
    if column.type is ColumnType.STRING:
        return text
    if column.type is ColumnType.INTEGER:
        # Exports that went through a spreadsheet or a float column write 1050 as "1050.0"; that is
        # 1050, but "1050.7" is no integer (a cast would round it) and neither is "1.23457E+15" (a
        # spreadsheet's rounding of a longer id): only digits, optionally followed by ".0", are read.
        # Neither is "0x10" nor "1_000", which DuckDB's cast would read and Spark's would not.
        digits = exp.RegexpLike(this=text.copy(), expression=lit(r"^[+-]?[0-9]+$"))
        zeros = exp.RegexpLike(this=text.copy(), expression=lit(r"^[+-]?[0-9]+\.0*$"))
        whole = exp.RegexpReplace(this=text.copy(), expression=lit(r"\.0*$"), replacement=lit(""))
        return exp.Case(ifs=[exp.If(this=digits, true=cast(text, "BIGINT", safe=True)),
                             exp.If(this=zeros, true=cast(whole, "BIGINT", safe=True))])
    if column.type in (ColumnType.TIMESTAMP, ColumnType.DATE):
        # A date or timestamp starts with a whole date: Spark would read "2026-01" as 1 January, DuckDB
        # rejects it; both engines must agree, so neither reads a partial date.
        whole_date = exp.RegexpLike(this=text.copy(), expression=lit(r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"))
        if column.type is ColumnType.DATE:
            return exp.Case(ifs=[exp.If(this=whole_date, true=cast(text, "DATE", safe=True))])
        # Timestamps are kept in UTC. A value with an offset or a zone ("-05:00", "Z", " UTC",
        # " Europe/Paris") is converted to UTC; a value without one is taken as UTC already.
        utc = cast(cast(text, "TIMESTAMPTZ", safe=True), "TIMESTAMP")  # the session's zone is UTC
        # Most values carry no zone; they are read as they are, which costs a fifth of the zone-aware cast.
        plain = exp.RegexpLike(this=text.copy(), expression=lit(PLAIN_TIMESTAMP))
        return exp.Case(ifs=[exp.If(this=plain, true=cast(text.copy(), "TIMESTAMP", safe=True)),
                             exp.If(this=whole_date, true=utc)])
    return cast(text, SQL_TYPES[column.type], safe=True)


def _column_checks(column: Column, severities: dict[str, Severity], *, is_key: bool) -> list[exp.Case]:
    checks = []
    text = col(_text(column.name))
    value = col(column.name)
    shown = concat("'", text, "'")
    if column.required or is_key:
        name = f"{column.name}.required"
        severities[name] = Severity.QUARANTINE
        checks.append(_case(text.is_(exp.null()), name, f"{column.name} is required but empty"))
    if column.type is not ColumnType.STRING:
        name = f"{column.name}.type"
        severities[name] = Severity.QUARANTINE
        checks.append(_case(
            exp.and_(text.is_(exp.null()).not_(), value.is_(exp.null())),
            name, concat(f"{column.name} ", shown, f" is not a valid {column.type.value}"),
        ))
    if column.accepted_values:
        name = f"{column.name}.accepted_values"
        severities[name] = Severity.QUARANTINE
        allowed = ", ".join(column.accepted_values)
        checks.append(_case(
            exp.Not(this=exp.In(this=value, expressions=[lit(v) for v in column.accepted_values])),
            name, concat(f"{column.name} ", shown, f" is not one of {allowed}"),
        ))
    if column.format:
        name = f"{column.name}.format"
        severities[name] = Severity.QUARANTINE
        checks.append(_case(
            exp.Not(this=exp.RegexpLike(this=value, expression=lit(FORMATS[column.format]))),
            name, concat(f"{column.name} ", shown, f" is not a valid {column.format}"),
        ))
    return checks


def _case(condition: exp.Expr, rule: str, message: exp.Expr | str) -> exp.Case:
    text = message if isinstance(message, exp.Expr) else lit(message)
    return exp.Case(ifs=[exp.If(this=condition, true=concat(f"{rule}: ", text))])


def _key_text(contract: Contract) -> list[exp.Expr | str]:
    parts: list[exp.Expr | str] = []
    for i, key in enumerate(contract.primary_key):
        parts += [", " if i else "", col(key)]
    return parts


__all__ = ["FILE_STATS", "LINEAGE", "SQL_TYPES", "CheckPlan", "batch_failed_table", "batch_keys_table",
           "checked_table", "plan_checks", "quarantined_keys_table", "refkeys_table", "stat_keys", "typed_value",
           "valid_table"]
