"""Read access to the lake's tables for people: counts, small samples and filtered pages, through the engine seam."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlglot import exp

from shoplake.config import Settings
from shoplake.contracts import ContractSet, load_contracts
from shoplake.contracts.expressions import ExpressionProblem, column_names, parse_boolean
from shoplake.contracts.model import Contract
from shoplake.engines import Engine, open_engine
from shoplake.engines.base import CURRENT_FLAG, LAST_SEEN, VALID_FROM, VALID_TO, VERSION, Commit, VersionGone
from shoplake.errors import ConfigError, EngineError, ShoplakeError
from shoplake.layers.sql import col, lit, select, table

LAYERS = ("bronze", "silver", "quarantine", "gold")
# A table name is one folder of its layer: no separators, no `..`, so it never leaves the lake.
_TABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
# What a quarantined row carries besides its raw values, and how `quarantine_rows` shows it.
_QUARANTINE_META = ("_source_file", "_row_number", "_batch_id", "_ingested_at", "_failed_rules", "_errors")
# Where a row came from (bronze and silver rows carry these), shown by `history`.
_PROVENANCE = ("_batch_id", "_source_file", "_row_number", "_ingested_at")
# The columns of a version's period, (number, from, to, current flag): silver's, then gold dimensions'.
_PERIODS = ((VERSION, VALID_FROM, VALID_TO, CURRENT_FLAG), ("version", "valid_from", "valid_to", "is_current"))


@dataclass(frozen=True)
class Page:
    """Some rows of a lake table: the columns shown, the rows (at most the limit) and how many matched."""

    table: str  # layer/name
    columns: list[str]
    rows: list[tuple[Any, ...]]
    matched: int
    as_of: str | None = None  # time travel: "version N (committed <when>)"


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


def show_table(config: Settings, layer: str, name: str, *, where: str | None = None, limit: int = 20,
               as_of: str | None = None) -> Page:
    """Up to `limit` rows of a lake table, those for which `where` (a row rule's SQL, checked like one) is true.

    `as_of`: the table as it was at a Delta version (a number) or at a moment (an ISO date or timestamp,
    UTC unless it names its offset: the last version committed by then)."""
    parse_table_ref(f"{layer}/{name}")

    def condition(columns: list[str]) -> exp.Expr | None:
        return None if where is None else _where(where, f"{layer}/{name}", columns)
    return _page(config, layer, name, condition, limit=limit, as_of=as_of)


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
          order: list[exp.Expr] | None = None, as_of: str | None = None) -> Page:
    path = f"{config.tables_root}/{layer}/{name}"
    engine = _engine(config)
    try:
        if not engine.attach_delta(path, layer, name):
            raise ConfigError(f"there is no table {layer}/{name} in the lake at {config.tables_root}",
                              hint=_tables_hint(config, layer))
        columns = engine.table_columns(path)
        when = None
        if as_of is not None:
            commit = resolve_as_of(engine.table_history(path), as_of, f"{layer}/{name}")
            try:
                columns = engine.attach_delta_version(path, layer, name, commit.version)
            except VersionGone as gone:
                raise ConfigError(gone.message, hint=gone.hint) from None
            when = f"version {commit.version} (committed {commit.timestamp:%Y-%m-%d %H:%M:%S} UTC)"
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
        return Page(table=f"{layer}/{name}", columns=[c for c, _ in projection], rows=rows, matched=matched,
                    as_of=when)
    finally:
        engine.close()


def resolve_as_of(commits: list[Commit], text: str, shown: str) -> Commit:
    """The commit `--as-of` names: a version number, or the last commit made at or before a moment."""
    if not commits:
        raise ConfigError(f"{shown} has no history to travel in")
    first, last = commits[0], commits[-1]
    hint = (f"{shown} has versions {first.version} to {last.version}, committed "
            f"{first.timestamp:%Y-%m-%d %H:%M:%S} to {last.timestamp:%Y-%m-%d %H:%M:%S} UTC")
    text = text.strip()
    if text.isdigit():
        found = [c for c in commits if c.version == int(text)]
        if not found:
            raise ConfigError(f"--as-of {text}: {shown} has no version {text}", hint=hint)
        return found[0]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--as-of {text!r} is neither a version number nor an ISO timestamp",
                          hint="for example --as-of 3, --as-of 2026-01-05 or --as-of 2026-01-05T10:30:00+01:00"
                          ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    before = [c for c in commits if c.timestamp <= moment]
    if not before:
        raise ConfigError(f"--as-of {text}: {shown} did not exist yet at {moment:%Y-%m-%d %H:%M:%S} UTC", hint=hint)
    return before[-1]


@dataclass(frozen=True)
class KeyHistory:
    """A key's rows in a lake table: every version (SCD2) or its current row(s), with where each came from."""

    table: str  # layer/name
    key: dict[str, str]  # key column -> the value asked for
    scd2: bool  # rows are versions with their validity
    mode: str  # how the table is loaded: scd2, upsert, append (a contract's load mode), or gold
    tracked: list[str]  # scd2: the columns whose change opens a version (a contract's; empty for gold)
    columns: list[str]
    rows: list[tuple[Any, ...]]
    table_versions: list[int | None]  # per row: the Delta version its batch committed (None: unknown)
    note: str | None = None  # what the table keeps, for a table that is not SCD2


class KeyNotFound(ShoplakeError):
    """No row of the table has the key asked for."""


def key_history(config: Settings, layer: str, name: str, key: list[str]) -> KeyHistory:
    """A key's versions in an SCD2 table (validity, tracked values, batch and file), or its rows in any
    other table. `key`: one value for a one-column key, else `column=value` parts (any of the key's columns)."""
    parse_table_ref(f"{layer}/{name}")
    shown = f"{layer}/{name}"
    path = f"{config.tables_root}/{layer}/{name}"
    contracts = load_contracts(config.contracts)
    contract = next((c for c in contracts if c.feed == name), None) if layer != "gold" else None
    engine = _engine(config)
    try:
        if not engine.attach_delta(path, layer, name):
            raise ConfigError(f"there is no table {shown} in the lake at {config.tables_root}",
                              hint=_tables_hint(config, layer))
        columns = engine.table_columns(path)
        keys = _key_columns(config, contracts, contract, layer, name)
        wanted = _parse_key(key, keys, shown)
        known = {c.lower(): c for c in columns}
        missing = [k for k in wanted if k.lower() not in known]
        if missing:
            raise ConfigError(f"{shown} has no column {', '.join(missing)}", hint=f"its columns: {', '.join(columns)}")
        wanted = {known[k.lower()]: v for k, v in wanted.items()}
        # Silver's SCD2 columns, or a gold dimension's (valid_from, valid_to, is_current: a model's own names)
        period = next((p for p in _PERIODS if set(p[1:]) <= set(columns)), None)
        scd2 = period is not None
        mode = contract.load.mode.value if contract is not None and layer == "silver" else (
            "gold" if layer == "gold" else "append")
        provenance = [c for c in _PROVENANCE if c in columns]
        tracked: list[str] = []
        first = [k for k in (*keys, *wanted) if k in columns]
        first = list(dict.fromkeys(first))
        if period is not None:
            # silver's _last_seen: the newest sequence value the version accounts for (an unchanged re-delivery)
            validity = [c for c in (*period, LAST_SEEN) if c in columns]
            tracked = [c for c in (contract.load.tracked if contract else ()) if c in columns]
            values = tracked or [c for c in columns if not c.startswith("_") and c not in validity and c not in first]
            shown_columns = [*validity, *first, *values, *provenance]
            order = [col(period[1]), *([col(period[0])] if period[0] in columns else [])]
        else:
            shown_columns = [*first, *(c for c in columns if c not in first)]
            order = [col(c) for c in ("_ingested_at", "_source_file", "_row_number") if c in columns]
        match = exp.and_(*[exp.EQ(this=exp.Cast(this=col(k), to=exp.DataType.build("varchar")), expression=lit(v))
                           for k, v in wanted.items()])
        query = select(*(col(c) for c in shown_columns)).from_(table(name, layer)).where(match)
        rows = engine.fetch(query.order_by(*order) if order else query)
        commits = engine.table_history(path) if "_batch_id" in shown_columns else []
        quarantined = 0
        if not rows and layer == "silver" and engine.attach_delta(f"{config.tables_root}/quarantine/{name}",
                                                                  "quarantine", name):
            there = {c.lower() for c in engine.table_columns(f"{config.tables_root}/quarantine/{name}")}
            if all(k.lower() in there for k in wanted):
                count = select(exp.Count(this=exp.Star())).from_(table(name, "quarantine")).where(match.copy())
                quarantined = int(engine.fetch(count)[0][0])
    finally:
        engine.close()
    if not rows:
        what = ", ".join(f"{k} {v}" for k, v in wanted.items())
        if quarantined:
            # quarantine columns are text: the condition compares with the value as text
            condition = " and ".join(f"{k} = '{v.replace(chr(39), chr(39) * 2)}'" for k, v in wanted.items())
            raise KeyNotFound(f"no row of {shown} has {what}: {quarantined} row(s) of it are in quarantine/{name}",
                              hint=f"shoplake show quarantine/{name} --where \"{condition}\" shows them with "
                              "every reason")
        raise KeyNotFound(f"no row of {shown} has {what}",
                          hint=f"`shoplake show {shown} --where ...` lists its rows")
    committed: dict[str, int] = {}
    for c in commits:  # a batch's last commit to the table holds its rows
        if c.batch_id:
            committed[c.batch_id] = c.version
    at = shown_columns.index("_batch_id") if "_batch_id" in shown_columns else None
    versions = [committed.get(str(r[at])) if at is not None else None for r in rows]
    note = None
    if not scd2:
        note = {"upsert": f"{shown} is an upsert table, not SCD2: it keeps one row per key, the latest "
                          f"{'by ' + contract.load.sequence if contract and contract.load.sequence else 'delivered'};"
                          f" every delivery of the key is in bronze (`shoplake history bronze/{name} --key ...`), "
                          f"and `shoplake show {shown} --as-of VERSION` shows the table as it was",
                "append": f"{shown} is not SCD2: it keeps every row delivered, shown in the order they arrived",
                "gold": f"{shown} is not SCD2: a gold table holds what its model computed from the latest batch; "
                        f"`shoplake show {shown} --as-of VERSION` shows it as it was",
                }.get(mode, f"{shown} is not SCD2")
    return KeyHistory(table=shown, key=wanted, scd2=scd2, mode=mode, tracked=tracked, columns=shown_columns,
                      rows=rows, table_versions=versions, note=note)


def _key_columns(config: Settings, contracts: ContractSet, contract: Contract | None, layer: str,
                 name: str) -> list[str]:
    if contract is not None:
        return list(contract.primary_key)
    if layer == "gold":
        from shoplake.layers.gold import load_models

        model = next((m for m in load_models(config.models, contracts=contracts) if m.name == name), None)
        if model is not None and model.key:
            return list(model.key)
    raise ConfigError(f"no key is known for {layer}/{name}: neither a contract nor a model header names one",
                      hint="name the columns: --key column=value")


def _parse_key(parts: list[str], keys: list[str], shown: str) -> dict[str, str]:
    """`--key 42` for a one-column key, `--key a=1 --key b=2` for the columns of a composite one."""
    if not parts:
        raise ConfigError("give the key: --key VALUE, or --key COLUMN=VALUE for each column of a composite key",
                          hint=f"the key of {shown}: {', '.join(keys) or 'unknown'}")
    named: dict[str, str] = {}
    for part in parts:
        column, sep, value = part.partition("=")
        if not sep:
            if len(keys) != 1 or len(parts) != 1:
                raise ConfigError(f"--key {part}: the key of {shown} is {', '.join(keys)}; give each column as "
                                  "COLUMN=VALUE", hint=f"for example --key {keys[0]}=... --key {keys[-1]}=...")
            return {keys[0]: part.strip()}
        named[column.strip()] = value.strip()
    return named


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
