"""Gold: SQL model files run in dependency order, each published as a Delta table.

A model is one SELECT in DuckDB's dialect with a small header of `-- key: value` lines (name, kind,
grain, key, description). It reads silver tables as `silver.<feed>` and other models as
`gold.<name>`; the order comes from parsing every model with sqlglot, not from file names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from importlib import resources
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from shoplake.contracts.expressions import DIALECT
from shoplake.engines import Engine, WriteJob
from shoplake.errors import ModelError

GOLD = "gold"
_HEADER = re.compile(r"^--\s*(\w+)\s*:\s*(.*?)\s*$")


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
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ModelError(f"model {source}: name {name!r} must be lower_snake_case")
    try:
        statements = [s for s in sqlglot.parse(text, read=DIALECT) if s is not None]
    except ParseError as error:
        raise ModelError(f"model {source}: cannot parse: {str(error).splitlines()[0]}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ModelError(f"model {source}: a model is exactly one SELECT statement")
    query = statements[0]
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    depends, sources = set(), set()
    for tbl in query.find_all(exp.Table):
        schema = tbl.db
        if schema == GOLD:
            depends.add(tbl.name)
        elif schema == "silver":
            sources.add(tbl.name)
        elif not schema and tbl.name in ctes:
            continue
        else:
            raise ModelError(
                f"model {source}: table {tbl.sql(dialect=DIALECT)!r} is neither silver.<feed>, gold.<model> nor a CTE"
            )
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
