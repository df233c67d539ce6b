"""Gold: SQL model files run in dependency order, each published as a Delta table.

A model is one SELECT in DuckDB's dialect with a small header of `-- key: value` lines (name, kind,
grain, key, partition, description). It reads silver tables as `silver.<feed>`, other models as
`gold.<name>`, its own CTEs and the shop's settings as the one row of `shoplake.settings`, nothing else
(no file, table function or engine setting: checked scope by scope when it loads); the order comes from
parsing every model with sqlglot, not from file names. Given the contracts, every column a model reads
from `silver.<feed>` is checked against what that feed's silver table holds, so a model that does not
fit the contracts stops the run before any file is touched.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from importlib import resources
from pathlib import Path

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema

from shoplake.config import Settings
from shoplake.contracts import Contract, ContractSet, LoadMode
from shoplake.contracts.expressions import (
    DIALECT,
    STATEMENTS,
    ExpressionProblem,
    function_label,
    parse_sql,
    reads_outside,
)
from shoplake.contracts.model import SQL_TYPES
from shoplake.engines import Engine, WriteJob
from shoplake.engines.base import CURRENT_FLAG, LAST_SEEN, VALID_FROM, VALID_TO, VERSION
from shoplake.errors import ModelError
from shoplake.layers import touched
from shoplake.layers.checks import LINEAGE
from shoplake.layers.incremental import incremental_step
from shoplake.layers.partitions import partitioned_write
from shoplake.layers.touched import BatchChanges

GOLD = "gold"
SILVER = "silver"
SHOPLAKE = "shoplake"  # what the runner provides: shoplake.settings
SETTINGS = "settings"
_HEADER = re.compile(r"^--\s*(\w+)\s*:\s*(.*?)\s*$")
_NAME = r"[a-z][a-z0-9_]*"
# What a model may read: the schemas the runner attaches (silver by attach_silver, gold as each model
# is built), shoplake.settings, and series computed from their arguments. Bronze and quarantine tables
# are not attached.
_SCHEMAS = {SILVER, GOLD, SHOPLAKE}
_NOT_ATTACHED = {"bronze", "quarantine"}
_SERIES = (exp.GenerateSeries,)
HISTORY = "_history"  # silver.<feed>_history: every version of an SCD2 feed (silver.attach_silver)
FULL = "full"  # the kind of a partitioned model that is rebuilt whole every batch


@dataclass(frozen=True)
class Model:
    name: str
    query: exp.Query
    grain: str
    key: tuple[str, ...]
    description: str
    depends_on: frozenset[str]  # other models
    sources: frozenset[str]  # silver tables: a feed, or <feed>_history
    path: str
    reads: tuple[tuple[str, str], ...] = ()  # (silver table, column) it reads; known once checked
    kind: str = ""
    partition: str | None = None  # the output column its Delta table is partitioned by
    # Header `optional: <feed>, ...`: a feed that may have no data (fx_rates for a one-currency shop); it is
    # then read as no rows, typed as its contract says (`empty_inputs`, known once checked), instead of
    # skipping the model.
    optional: frozenset[str] = frozenset()
    empty_inputs: tuple[tuple[str, exp.Select], ...] = ()

    @property
    def incremental(self) -> bool:
        """Whether a batch rewrites only the partitions whose rows changed (see `run_models`)."""
        return self.partition is not None and self.kind != FULL


@dataclass(frozen=True)
class GoldRun:
    built: dict[str, int]  # model -> rows published
    skipped: dict[str, str]  # model -> why it was not built (an input without data yet)
    # partitioned model -> the partition values rewritten ([]: none changed), or None: the whole table
    rewritten: dict[str, list[str] | None] = field(default_factory=dict)
    # model -> the partition values computed ([]: none, the model was not computed), or None: all of it
    recomputed: dict[str, list[str] | None] = field(default_factory=dict)


def builtin_models_dir() -> Path:
    return Path(str(resources.files("shoplake") / "models"))


def load_models(folders: list[Path] | None = None, *, contracts: ContractSet | None = None) -> list[Model]:
    """Models of the built-in folder and the given ones (a later model of the same name wins), in run order.

    With `contracts`, every silver table and column a model reads must be one the contracts provide
    (see `check_columns`); each model then knows the columns it reads (`Model.reads`)."""
    found: dict[str, Model] = {}
    for folder in [builtin_models_dir(), *(folders or [])]:
        for path in sorted(folder.glob("*.sql")):
            model = parse_model(path.read_text(encoding="utf-8"), str(path))
            found[model.name] = model
    graph = {}
    for model in found.values():
        unknown = model.depends_on - set(found)
        if unknown:
            raise ModelError(f"model {model.path}: reads unknown model(s) gold.{', gold.'.join(sorted(unknown))}")
        graph[model.name] = set(model.depends_on)
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise ModelError(f"models depend on each other in a cycle: {' -> '.join(error.args[1])}") from None
    ordered = [found[name] for name in order]
    return ordered if contracts is None else check_columns(ordered, contracts)


def silver_inputs(models: list[Model]) -> dict[str, dict[str, list[str]]]:
    """Silver table -> column -> the models that read it, from checked models (see `check_columns`)."""
    inputs: dict[str, dict[str, list[str]]] = {}
    for model in models:
        for table, column in model.reads:
            inputs.setdefault(table, {}).setdefault(column, []).append(model.name)
    return inputs


def settings_columns() -> list[str]:
    """The columns of `shoplake.settings`: every name of `Settings.model_parameters`."""
    return list(Settings().model_parameters())


def settings_query(parameters: dict[str, str | int | float]) -> exp.Select:
    """The one row of `shoplake.settings`: each parameter a typed literal (a float stays a DOUBLE, not
    the DECIMAL its literal would parse as)."""
    def typed(value: str | int | float) -> exp.Expr:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return exp.Literal.string(str(value))
        return exp.cast(exp.convert(value), "BIGINT" if isinstance(value, int) else "DOUBLE")

    return exp.select(*(exp.alias_(typed(v), k, quoted=True) for k, v in parameters.items()))


def silver_columns(contract: Contract) -> list[str]:
    """The columns of a feed's silver table: its columns, derived columns, lineage and, for SCD2, the period."""
    names = [*contract.column_names, *contract.derived, *LINEAGE]
    if contract.load.mode is LoadMode.SCD2:
        names += [VERSION, LAST_SEEN, VALID_FROM, VALID_TO, CURRENT_FLAG]
    return names


def _silver_tables(contracts: ContractSet) -> dict[str, Contract]:
    """Every table a model may read as silver.<name>, with the contract that defines it."""
    tables = {}
    for contract in contracts:
        tables[contract.feed] = contract
        if contract.load.mode is LoadMode.SCD2:
            tables[contract.feed + HISTORY] = contract
    return tables


def check_columns(models: list[Model], contracts: ContractSet) -> list[Model]:
    """The models (in run order) with the silver columns each reads; ModelError for a silver table no
    contract defines or a column its contract does not provide.

    Columns are resolved with sqlglot's qualifier against the silver tables' columns and the output
    columns of the models before it, scope by scope, as DuckDB binds them.
    """
    tables = _silver_tables(contracts)
    schema: dict[str, dict[str, dict[str, str]]] = {
        # The qualifier needs names only; the type is a placeholder.
        SILVER: {name: dict.fromkeys(silver_columns(c), "VARCHAR") for name, c in tables.items()}, GOLD: {},
        SHOPLAKE: {SETTINGS: dict.fromkeys(settings_columns(), "VARCHAR")}}
    checked = []
    for model in models:
        unknown = sorted(model.sources - set(tables))
        if unknown:
            raise ModelError(f"model {model.path}: reads silver.{unknown[0]}, but no contract defines feed "
                             f"{unknown[0]!r} (feeds: {', '.join(sorted(tables))})",
                             hint="add a contract for it or read one of these feeds")
        try:
            known = MappingSchema(dict(schema), dialect=DIALECT)
            # Unknown columns are left in place (not raised by the qualifier) for the message below to name.
            qualified = qualify(model.query.copy(), schema=known, dialect=DIALECT, validate_qualify_columns=False,
                                allow_partial_qualification=True, quote_identifiers=False, identify=False)
            scopes = traverse_scope(qualified)
        except (SqlglotError, RecursionError) as error:
            raise ModelError(f"model {model.path}: cannot tell which columns it reads ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''})") from None
        reads: dict[tuple[str, str], None] = {}
        for scope in scopes:
            for column in scope.columns:
                candidates = _silver_sources(scope, column, schema)
                if len(candidates) > 1:  # unqualified, and in none of its scope's tables
                    silver = [c for c in candidates if c[0] == SILVER]
                    raise ModelError(
                        f"model {model.path}: reads column {column.name!r}, which none of "
                        f"{', '.join(f'{d}.{n}' for d, n in candidates)} provides (contracts "
                        f"{', '.join(sorted({tables[n].source or tables[n].feed for _, n in silver}))})",
                        hint=f"qualify it with its table, add {column.name!r} to that feed's contract, or change "
                        "the model")
                if not candidates:
                    continue
                db, name = candidates[0]
                if db == SHOPLAKE:
                    if column.name not in schema[SHOPLAKE][SETTINGS]:
                        raise ModelError(
                            f"model {model.path}: reads column {column.name!r} of shoplake.settings, which is not a "
                            f"setting (shoplake.settings has: {_listed(schema[SHOPLAKE][SETTINGS])})",
                            hint="read one of these settings, or write the value itself")
                    continue
                contract = tables[name]
                if column.name not in schema[SILVER][name]:
                    raise ModelError(
                        f"model {model.path}: reads column {column.name!r} of silver.{name}, which contract "
                        f"{contract.source or contract.feed} does not provide (silver.{name} has: "
                        f"{_listed(schema[SILVER][name])})",
                        hint=f"add {column.name!r} to the {contract.feed} contract (a column or a derived column) "
                        "or change the model")
                reads[(name, column.name)] = None
        outputs = qualified.named_selects
        if model.partition and "*" not in outputs and model.partition not in outputs:
            raise ModelError(f"model {model.path}: partition: {model.partition} is not one of its columns "
                             f"({', '.join(outputs)})", hint="name an output column (a date, such as order_date)")
        if "*" not in outputs and outputs:  # a model whose columns are known can be read by later ones
            schema[GOLD][model.name] = dict.fromkeys(outputs, "VARCHAR")
        empty = tuple((name, _no_rows(tables[name], [c for t, c in reads if t == name]))
                      for name in sorted(model.optional & model.sources))
        checked.append(replace(model, reads=tuple(reads), empty_inputs=empty))
    return checked


def _no_rows(contract: Contract, columns: list[str]) -> exp.Select:
    """No rows with `columns` typed as the contract's silver table has them (lineage columns as text)."""
    def typed(column: str) -> exp.Expr:
        kind = contract.type_of(column) if column in (*contract.column_names, *contract.derived) else None
        return exp.cast(exp.null(), SQL_TYPES[kind] if kind else "VARCHAR")

    return exp.select(*(exp.alias_(typed(c), c, quoted=True) for c in columns)).where(exp.false())


def _silver_sources(scope: Scope, column: exp.Column,
                    schema: dict[str, dict[str, dict[str, str]]]) -> list[tuple[str, str]]:
    """The silver table or shoplake.settings `column` reads, as (schema, table) ([] when it reads
    neither); whether the table has the column is the caller's to judge. Several: the column is
    unqualified and none of the scope's such tables has it."""
    checked = (SILVER, SHOPLAKE)
    if not column.table:
        # Left unqualified: no source the qualifier knows has it. When every source's columns are known and
        # some are silver tables, DuckDB's binder would fail here: those tables are reported.
        if not all(_columns_known(s, schema) for s in scope.sources.values()):
            return []
        return sorted((s.db, s.name) for s in scope.sources.values() if isinstance(s, exp.Table) and s.db in checked)
    current: Scope | None = scope
    while current is not None:  # a correlated subquery reads its outer scope's tables
        source = current.sources.get(column.table)
        if source is not None:
            return [(source.db, source.name)] if isinstance(source, exp.Table) and source.db in checked else []
        current = current.parent
    return []


def _columns_known(source: exp.Table | Scope, schema: dict[str, dict[str, dict[str, str]]]) -> bool:
    if isinstance(source, Scope):
        return isinstance(source.expression, exp.Query) and "*" not in source.expression.named_selects
    return isinstance(source, exp.Table) and source.name in schema.get(source.db, {})


def _listed(names: dict[str, str], limit: int = 25) -> str:
    shown = list(names)
    return ", ".join(shown[:limit]) + (f", ... ({len(shown) - limit} more)" if len(shown) > limit else "")


def parse_model(text: str, source: str) -> Model:
    header: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _HEADER.match(line)
        if not match:
            break
        header[match.group(1).lower()] = match.group(2)
    name = header.get("name") or Path(source).stem
    if not re.fullmatch(_NAME, name):
        raise ModelError(f"model {source}: name {name!r} must be lower_snake_case")
    try:
        statements = parse_sql(text, label="its SQL")
    except ExpressionProblem as problem:
        raise ModelError(f"model {source}: {problem}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ModelError(f"model {source}: a model is exactly one SELECT statement")
    query = statements[0]
    depends, sources = _lake_tables(query, source)
    partition = header.get("partition") or None
    if partition is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", partition):
        raise ModelError(f"model {source}: partition: {partition!r} must name one output column",
                         hint="write `-- partition: order_date`, one column")
    return Model(
        name=name,
        query=query,
        grain=header.get("grain", ""),
        key=tuple(k.strip() for k in header.get("key", "").split(",") if k.strip()),
        description=header.get("description", ""),
        depends_on=frozenset(depends),
        sources=frozenset(sources),
        path=source,
        kind=header.get("kind", "").lower(),
        partition=partition.lower() if partition else None,
        optional=frozenset(f.strip().lower() for f in header.get("optional", "").split(",") if f.strip()),
    )


def _lake_tables(query: exp.Query, source: str) -> tuple[set[str], set[str]]:
    """The models and silver feeds a query reads; ModelError for anything else it would read.

    Every table is resolved in its own scope (sqlglot's scope analysis): an unqualified name is a CTE
    only where that CTE is visible, as DuckDB resolves it; otherwise DuckDB would read it as a file.
    Names are compared as DuckDB does, case-insensitively.
    """
    normalised = normalize_identifiers(query.copy(), dialect=DIALECT)
    # Errors name a table as the model wrote it (normalising lower-cases even a quoted file path).
    written = {id(n): o for n, o in zip(normalised.walk(), query.walk(), strict=True)}
    for node in normalised.walk():
        if isinstance(node, exp.Func) and reads_outside(node):
            raise ModelError(f"model {source}: {function_label(node)} reads files or settings outside the lake; "
                             "a model reads silver.<feed> and gold.<model> only, so remove it")
        if isinstance(node, (exp.Placeholder, exp.Parameter, exp.SessionParameter)):
            raise ModelError(f"model {source}: {node.sql(dialect=DIALECT)} is a parameter, and nothing binds "
                             "parameters in a model; write the value itself")
        if node is not normalised and isinstance(node, STATEMENTS) and not isinstance(node, exp.Query):
            raise ModelError(f"model {source}: a model is exactly one SELECT statement")
    try:
        scopes = traverse_scope(normalised)
    except (SqlglotError, RecursionError) as error:
        raise ModelError(f"model {source}: cannot tell which tables it reads ({type(error).__name__}); "
                         "write its inputs as CTEs over silver.<feed> and gold.<model>") from None
    depends: set[str] = set()
    feeds: set[str] = set()
    resolved: set[int] = set()
    for scope in scopes:
        for tbl in scope.tables:
            resolved.add(id(tbl))
            if _reads_lake_table(tbl, scope, source, written.get(id(tbl), tbl)) and tbl.db != SHOPLAKE:
                (depends if tbl.db == GOLD else feeds).add(tbl.name)
    for tbl in normalised.find_all(exp.Table):
        if id(tbl) not in resolved and not isinstance(tbl.parent, exp.JoinHint):
            raise ModelError(f"model {source}: cannot tell where {_shown(written.get(id(tbl), tbl))!r} is read from; "
                             "read it in the FROM of a CTE or subquery")
    return depends, feeds


def _reads_lake_table(tbl: exp.Table, scope: Scope, source: str, written: exp.Expr) -> bool:
    """True for silver.<feed> and gold.<model>, False for a CTE visible in this scope or a series;
    ModelError for anything else (naming the table as `written` in the model)."""
    if not isinstance(tbl.this, exp.Identifier):
        if isinstance(tbl.this, _SERIES):
            return False  # computed from its arguments, reads nothing
        raise ModelError(f"model {source}: {_shown(written)!r} is a table function; a model reads silver.<feed>, "
                         "gold.<model> and its own CTEs only (generate_series and range are allowed)")
    shown = _shown(written)
    if not tbl.db and not tbl.catalog:
        if tbl.name in scope.cte_sources:
            return False
        raise ModelError(f"model {source}: table {shown!r} is neither silver.<feed>, gold.<model> nor a CTE "
                         "visible where it is read; models read lake tables only (no file paths)")
    if tbl.catalog or tbl.db not in _SCHEMAS:
        if tbl.db in _NOT_ATTACHED and not tbl.catalog:
            raise ModelError(f"model {source}: table {shown!r}: models read silver.<feed> and gold.<model> only "
                             "(bronze and quarantine are not attached when models run); read the silver table")
        raise ModelError(f"model {source}: table {shown!r} is neither silver.<feed>, gold.<model> nor a CTE; "
                         "models read lake tables only")
    if tbl.db == SHOPLAKE and tbl.name != SETTINGS:
        raise ModelError(f"model {source}: table {shown!r}: the shoplake schema holds shoplake.settings only "
                         "(the shop's settings, one row)", hint="read shoplake.settings, or a silver or gold table")
    if not re.fullmatch(_NAME, tbl.name):
        raise ModelError(f"model {source}: table {shown!r}: a lake table's name is lower_snake_case "
                         "(a feed or a model)")
    return True


def _shown(tbl: exp.Expr, limit: int = 80) -> str:
    """A table as the model names it, without its alias, joins or other clauses."""
    bare = tbl.copy()
    for arg in ("alias", "joins", "pivots", "laterals", "version", "sample", "when"):
        bare.set(arg, None)
    text = bare.sql(dialect=DIALECT)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_QUERY_TEXT: dict[int, tuple[exp.Query, str]] = {}  # id -> a parsed model query and its text


def signature(model: Model, parameters: dict[str, str | int | float]) -> str:
    """What a model's rows are computed from besides its inputs: its query and the settings models read."""
    text = json.dumps([_query_text(model.query), sorted(parameters.items())], default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _query_text(query: exp.Query) -> str:
    """A model's query as text, once per parsed query (signed every batch; never changed in place)."""
    known = _QUERY_TEXT.get(id(query))
    if known is None or known[0] is not query:
        if len(_QUERY_TEXT) > 1024:  # sessions load the models anew: forget the oldest ones' queries
            _QUERY_TEXT.clear()
        known = _QUERY_TEXT[id(query)] = (query, query.sql(dialect="duckdb"))
    return known[1]


def gold_path(lake: str, name: str) -> str:
    return f"{lake}/gold/{name}"


def run_models(engine: Engine, models: list[Model], lake: str, available: set[str], *,
               tag: str | None = None, parameters: dict[str, str | int | float] | None = None,
               full: bool = False, changes: BatchChanges | None = None,
               stale: frozenset[str] = frozenset()) -> GoldRun:
    """Build every model whose silver inputs exist, publish it to gold/<name>; a model without them
    (no file of its feed has loaded yet) is skipped, and says why. Models read `parameters` (default: the
    default settings') as the one row of `shoplake.settings`.

    Without `changes` (or with `full`) every model is computed whole. A model with `partition:` is
    published to a Delta table partitioned by that column; when incremental (not `kind: full`, nor
    `full`), only the partitions whose rows differ from its current table are rewritten, in one
    predicate-overwrite commit, and none when nothing changed. With a load batch's `changes`, a model
    none of whose inputs changed is not computed at all, and an incremental model computes only the
    partitions the batch touched (`layers.touched`). A `stale` model (its query or the settings changed
    since it was last computed, see `signature`) is computed whole, and counts as changed throughout for
    the models that read it.
    """
    built: dict[str, int] = {}
    skipped: dict[str, str] = {}
    rewritten: dict[str, list[str] | None] = {}
    recomputed: dict[str, list[str] | None] = {}
    jobs: list[WriteJob] = []
    engine.create_table(f"{SHOPLAKE}__{SETTINGS}", settings_query(parameters or Settings().model_parameters()))
    engine.create_view(SHOPLAKE, SETTINGS, f"{SHOPLAKE}__{SETTINGS}")
    inputs: dict[touched.Input, touched.Change] = {}  # what each input read so far did in this batch
    read = {name: list(columns) for name, columns in silver_inputs(models).items()}
    for model in models:
        if not available:
            # No feed has loaded: optional inputs alone (or none, as in a list of statuses) would make tables
            # that no batch wrote, which the state store could not account for.
            skipped[model.name] = "no feed has data yet"
            continue
        missing = sorted(s for s in model.sources
                         if s.removesuffix(HISTORY) not in available and s not in model.optional)
        if missing:
            skipped[model.name] = f"silver.{', silver.'.join(missing)} has no data yet"
            continue
        waiting = sorted(model.depends_on & set(skipped))
        if waiting:
            skipped[model.name] = f"gold.{', gold.'.join(waiting)} was skipped"
            continue
        for feed, no_rows in model.empty_inputs:
            if feed.removesuffix(HISTORY) not in available:
                engine.create_table(f"empty__{feed}", no_rows)
                engine.create_view(SILVER, feed, f"empty__{feed}")
        staged = f"gold__{model.name}"
        path = gold_path(lake, model.name)
        if changes is None or full or model.name in stale:
            built[model.name] = engine.create_table(staged, model.query.copy())  # the engine renders in place
            # Later models read this one as staged, not back from its Delta files.
            engine.create_view(GOLD, model.name, staged)
            recomputed[model.name] = None
            inputs[(GOLD, model.name)] = touched.WHOLE
            if model.partition is None:
                jobs.append(WriteJob(staged, path, "overwrite"))
                continue
            write = partitioned_write(engine, model.path, model.name, model.partition, staged, path,
                                      incremental=model.incremental and not full)
            rewritten[model.name] = write.rewritten
            if write.job is not None:
                jobs.append(write.job)
            continue
        for source in model.sources:
            if (SILVER, source) not in inputs:
                inputs[(SILVER, source)] = touched.silver_change(engine, changes, source, read.get(source))
        mine = {i: inputs[i] for i in [*((SILVER, s) for s in model.sources), *((GOLD, d) for d in model.depends_on)]}
        step = incremental_step(engine, model, path, staged, mine)
        built[model.name], recomputed[model.name], inputs[(GOLD, model.name)] = step.rows, step.recomputed, step.change
        if model.partition is not None and step.rewritten != ["-"]:
            rewritten[model.name] = step.rewritten
        if step.job is not None:
            jobs.append(step.job)
    # File statistics on the model's key (what lookups filter by), not on every column: see WriteJob.stats.
    keys = {gold_path(lake, m.name): tuple(k for k in m.key if k != m.partition) for m in models}
    engine.write([replace(job, stats=keys.get(job.path, ())) for job in jobs], tag=tag)
    return GoldRun(built, skipped, rewritten, recomputed)
