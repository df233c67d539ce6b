"""Gold: SQL model files run in dependency order, each published as a Delta table.

A model is one SELECT in DuckDB's dialect with a small header of `-- key: value` lines (name, kind,
grain, key, description). It reads silver tables as `silver.<feed>`, other models as `gold.<name>`
and its own CTEs, nothing else (no file, table function or setting: checked scope by scope when it
loads); the order comes from parsing every model with sqlglot, not from file names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from importlib import resources
from pathlib import Path

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import Scope, traverse_scope

from shoplake.contracts.expressions import (
    DIALECT,
    STATEMENTS,
    ExpressionProblem,
    function_label,
    parse_sql,
    reads_outside,
)
from shoplake.engines import Engine, WriteJob
from shoplake.errors import ModelError

GOLD = "gold"
SILVER = "silver"
_HEADER = re.compile(r"^--\s*(\w+)\s*:\s*(.*?)\s*$")
_NAME = r"[a-z][a-z0-9_]*"
# What a model may read: the schemas the runner attaches (silver by attach_silver, gold as each model
# is built) and series computed from their arguments. Bronze and quarantine tables are not attached.
_SCHEMAS = {SILVER, GOLD}
_NOT_ATTACHED = {"bronze", "quarantine"}
_SERIES = (exp.GenerateSeries,)


@dataclass(frozen=True)
class Model:
    name: str
    query: exp.Query
    grain: str
    key: tuple[str, ...]
    description: str
    depends_on: frozenset[str]  # other models
    sources: frozenset[str]  # silver feeds
    path: str


def builtin_models_dir() -> Path:
    return Path(str(resources.files("shoplake") / "models"))


def load_models(folders: list[Path] | None = None) -> list[Model]:
    """Models of the built-in folder and the given ones (a later model of the same name wins), in run order."""
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
    return [found[name] for name in order]


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
    return Model(
        name=name,
        query=query,
        grain=header.get("grain", ""),
        key=tuple(k.strip() for k in header.get("key", "").split(",") if k.strip()),
        description=header.get("description", ""),
        depends_on=frozenset(depends),
        sources=frozenset(sources),
        path=source,
    )


def _lake_tables(query: exp.Query, source: str) -> tuple[set[str], set[str]]:
    """The models and silver feeds a query reads; ModelError for anything else it would read.

    Every table is resolved in its own scope (sqlglot's scope analysis): an unqualified name is a CTE
    only where that CTE is visible, as DuckDB resolves it; otherwise DuckDB would read it as a file.
    Names are compared as DuckDB does, case-insensitively.
    """
    normalised = normalize_identifiers(query.copy(), dialect=DIALECT)
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
            if _reads_lake_table(tbl, scope, source):
                (depends if tbl.db == GOLD else feeds).add(tbl.name)
    for tbl in normalised.find_all(exp.Table):
        if id(tbl) not in resolved and not isinstance(tbl.parent, exp.JoinHint):
            raise ModelError(f"model {source}: cannot tell where {_shown(tbl)!r} is read from; read it in the "
                             "FROM of a CTE or subquery")
    return depends, feeds


def _reads_lake_table(tbl: exp.Table, scope: Scope, source: str) -> bool:
    """True for silver.<feed> and gold.<model>, False for a CTE visible in this scope or a series;
    ModelError for anything else."""
    if not isinstance(tbl.this, exp.Identifier):
        if isinstance(tbl.this, _SERIES):
            return False  # computed from its arguments, reads nothing
        raise ModelError(f"model {source}: {_shown(tbl)!r} is a table function; a model reads silver.<feed>, "
                         "gold.<model> and its own CTEs only (generate_series and range are allowed)")
    shown = _shown(tbl)
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
    if not re.fullmatch(_NAME, tbl.name):
        raise ModelError(f"model {source}: table {shown!r}: a lake table's name is lower_snake_case "
                         "(a feed or a model)")
    return True


def _shown(tbl: exp.Table, limit: int = 80) -> str:
    """A table as the model names it, without its alias, joins or other clauses."""
    bare = tbl.copy()
    for arg in ("alias", "joins", "pivots", "laterals", "version", "sample", "when"):
        bare.set(arg, None)
    text = bare.sql(dialect=DIALECT)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def gold_path(lake: str, name: str) -> str:
    return f"{lake}/gold/{name}"


def run_models(engine: Engine, models: list[Model], lake: str, available: set[str], *,
               tag: str | None = None) -> dict[str, int]:
    """Build every model whose silver inputs exist, publish it to gold/<name>; returns rows per model."""
    built: dict[str, int] = {}
    for model in models:
        missing = {s for s in model.sources if s.removesuffix("_history") not in available}
        if missing or not model.depends_on <= set(built):
            continue
        staged = f"gold__{model.name}"
        built[model.name] = engine.create_table(staged, model.query)
        # Later models read this one as staged, not back from its Delta files.
        engine.create_view(GOLD, model.name, staged)
    engine.write([WriteJob(f"gold__{name}", gold_path(lake, name), "overwrite") for name in built], tag=tag)
    return built
