"""Checks as SQL assertions: a check is one query returning the offending rows, loaded from the built-in
pack, a project's `checks` folders (`*.sql` files, or `*.yml` lists of checks) or generated from the
models and contracts (see `shoplake.quality.generated`).

A check's SQL is in DuckDB's dialect (transpiled for Spark by sqlglot, like the models). It reads
`silver.<feed>`, `silver.<feed>_history`, `gold.<model>`, `shoplake.settings` (the shop's settings, one
row) and `shoplake.files` (the files being audited, see `shoplake.quality.runner.FILE_COLUMNS`) and its
own CTEs, nothing else. A check file that breaks these rules is a CheckError (a configuration error)
naming its file and line, raised when the checks load, before any data is touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import sqlglot
import yaml
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import traverse_scope

from shoplake.contracts.expressions import DIALECT, STATEMENTS, function_label, reads_outside
from shoplake.errors import ConfigError
from shoplake.hooks import Severity

ERROR: Severity = "error"
WARN: Severity = "warn"
SEVERITIES: tuple[Severity, ...] = (ERROR, WARN)
SILVER, GOLD, SHOPLAKE = "silver", "gold", "shoplake"
SHOPLAKE_TABLES = ("settings", "files")  # what the runner provides in the shoplake schema
_HEADER = re.compile(r"^--\s*(\w+)\s*:\s*(.*?)\s*$")
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_YAML_KEYS = {"name", "severity", "description", "sql"}
Known = set[tuple[str, str]] | None  # the silver and gold tables that exist by the contracts and models


class CheckError(ConfigError):
    """A check file cannot be loaded: names the file and the line."""

    def __init__(self, source: str, line: int, problem: str, *, hint: str | None = None) -> None:
        super().__init__(f"check {source}:{line}: {problem}", hint=hint)


@dataclass(frozen=True)
class Check:
    """One assertion: the query returns the rows that break it (none: the check passes)."""

    name: str
    severity: Severity
    description: str
    query: exp.Query
    source: str  # the file it came from, or `generated from <model or contract>`
    reads: frozenset[tuple[str, str]]  # (schema, table) of every lake table it reads

    @property
    def sql(self) -> str:
        return self.query.sql(dialect=DIALECT)


def pack_dir() -> Path:
    """The built-in checks (package data, like the models)."""
    return Path(str(resources.files("shoplake") / "quality" / "pack"))


def parse_check_file(text: str, source: str, known: Known = None) -> Check:
    """A `.sql` check: a header of `-- name:`, `-- severity:`, `-- description:` lines, then one SELECT."""
    header: dict[str, tuple[str, int]] = {}
    body = 1  # the line its SQL starts on
    for body, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _HEADER.match(line)
        if not match:
            break
        header[match.group(1).lower()] = (match.group(2), body)
    name, name_line = header.get("name", (Path(source).stem, 1))
    severity, severity_line = header.get("severity", ("", 1))
    if "severity" not in header:
        raise CheckError(source, 1, "no `-- severity:` line",
                         hint="start the file with `-- severity: error` (fails the batch) or `-- severity: warn`")
    description = header.get("description", ("", 1))[0]
    return make_check(name, severity, description, text, source, first_line=1, name_line=name_line,
                      severity_line=severity_line, known=known, body_line=body)


def parse_check_list(text: str, source: str, known: Known = None) -> list[Check]:
    """A `.yml` file of checks: a list of {name, severity, description, sql}."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise CheckError(source, mark.line + 1 if mark else 1, f"not valid YAML ({getattr(error, 'problem', error)})",
                         hint="a checks file is a YAML list of {name, severity, description, sql}") from None
    if root is None:
        return []
    if not isinstance(root, yaml.SequenceNode):
        raise CheckError(source, root.start_mark.line + 1, "expected a list of checks",
                         hint="write each check as `- name: ...` with severity, description and sql")
    checks = []
    for item in root.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            raise CheckError(source, line, "a check is a mapping of name, severity, description and sql")
        nodes = {cast(yaml.ScalarNode, k).value: v for k, v in item.value}
        values: dict[str, Any] = yaml.safe_load(yaml.serialize(item)) or {}
        unknown = sorted(set(values) - _YAML_KEYS)
        if unknown:
            raise CheckError(source, line, f"unknown key {unknown[0]!r} (a check has: {', '.join(sorted(_YAML_KEYS))})")
        for key in ("name", "severity", "sql"):
            if not isinstance(values.get(key), str) or not values[key].strip():
                raise CheckError(source, line, f"the check has no {key}",
                                 hint="each check needs name, severity (error or warn) and sql")
        sql_node = nodes["sql"]
        # A block scalar (`sql: |`) starts on the line after its key.
        first = sql_node.start_mark.line + 1 + (1 if getattr(sql_node, "style", None) in ("|", ">") else 0)
        checks.append(make_check(values["name"], values["severity"], str(values.get("description") or ""),
                                 values["sql"], source, first_line=first, name_line=line,
                                 severity_line=nodes["severity"].start_mark.line + 1, known=known))
    return checks


def make_check(name: str, severity: str, description: str, sql: str, source: str, *, first_line: int,
               name_line: int, severity_line: int, known: Known = None, body_line: int | None = None) -> Check:
    """A check from its parts; CheckError (file and line) for a bad name, severity or query, or (given
    the `known` silver and gold tables) a lake table no contract or model provides."""
    if not _NAME.fullmatch(name):
        raise CheckError(source, name_line, f"check name {name!r} must be lower_snake_case")
    level = severity.strip().lower()
    if level not in SEVERITIES:
        raise CheckError(source, severity_line, f"severity {severity!r} is neither error nor warn",
                         hint="error fails the batch (gold stays at its previous version); warn is reported only")
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as error:
        found = error.errors[0] if error.errors else {}
        line = first_line + int(found.get("line") or 1) - 1
        raise CheckError(source, line, f"cannot parse its SQL: {found.get('description') or error}") from None
    except (SqlglotError, RecursionError) as error:
        raise CheckError(source, first_line, f"cannot parse its SQL ({type(error).__name__})") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise CheckError(source, body_line or first_line, "a check is exactly one SELECT returning the offending rows")
    query = statements[0]
    reads = _inputs(query, source, first_line, known)
    return Check(name=name, severity=level, description=description.strip(), query=query,
                 source=source, reads=frozenset(reads))


def _inputs(query: exp.Query, source: str, first_line: int, known: Known) -> set[tuple[str, str]]:
    """The lake tables a check reads; CheckError for anything else it would read (files, other schemas)."""
    def line_of(node: exp.Expr) -> int:
        meta = node.this.meta if isinstance(node.this, exp.Expr) else node.meta
        return first_line + int(meta.get("line", 1)) - 1

    normalised = normalize_identifiers(query.copy(), dialect=DIALECT)
    for node in normalised.walk():
        if isinstance(node, exp.Func) and reads_outside(node):
            raise CheckError(source, line_of(node), f"{function_label(node)} reads outside the lake; a check reads "
                             "silver.<feed>, gold.<model> and shoplake.settings / shoplake.files only")
        if node is not normalised and isinstance(node, STATEMENTS) and not isinstance(node, exp.Query):
            raise CheckError(source, first_line, "a check is exactly one SELECT returning the offending rows")
    try:
        scopes = traverse_scope(normalised)
    except (SqlglotError, RecursionError) as error:
        raise CheckError(source, first_line, f"cannot tell which tables it reads ({type(error).__name__})") from None
    reads: set[tuple[str, str]] = set()
    for scope in scopes:
        for tbl in scope.tables:
            if not isinstance(tbl.this, exp.Identifier):
                if isinstance(tbl.this, exp.GenerateSeries):
                    continue
                raise CheckError(source, line_of(tbl), "a table function; a check reads lake tables and its CTEs")
            if not tbl.db and not tbl.catalog and tbl.name in scope.cte_sources:
                continue
            allowed = (tbl.db in (SILVER, GOLD) and _NAME.fullmatch(tbl.name)) or (
                tbl.db == SHOPLAKE and tbl.name in SHOPLAKE_TABLES)
            if tbl.catalog or not allowed:
                shown = ".".join(p for p in (tbl.catalog, tbl.db, tbl.name) if p)
                raise CheckError(source, line_of(tbl), f"table {shown!r} is not one a check may read",
                                 hint="read silver.<feed>, silver.<feed>_history, gold.<model>, shoplake.settings, "
                                 "shoplake.files or a CTE")
            if known is not None and tbl.db != SHOPLAKE and (tbl.db, tbl.name) not in known:
                what = "no model builds it" if tbl.db == GOLD else "no contract defines that feed"
                raise CheckError(source, line_of(tbl), f"reads {tbl.db}.{tbl.name}, but {what}",
                                 hint="fix the name: a check reads the feeds of the contracts and the models in force")
            reads.add((tbl.db, tbl.name))
    return reads


def load_folder(folder: Path, known: Known = None) -> list[Check]:
    """Every check of a folder: each `*.sql` file one check, each `*.yml` / `*.yaml` file a list."""
    checks: list[Check] = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".sql":
            checks.append(parse_check_file(path.read_text(encoding="utf-8"), str(path), known))
        elif path.suffix in (".yml", ".yaml"):
            checks.extend(parse_check_list(path.read_text(encoding="utf-8"), str(path), known))
    return checks


def load_checks(folders: list[Path], generated: list[Check], known: Known = None) -> list[Check]:
    """The built-in pack, then the generated checks, then the project's (a project check of the same
    name replaces a built-in one; two project checks of one name are an error)."""
    found = {c.name: c for c in [*load_folder(pack_dir(), known), *generated]}
    mine: dict[str, Check] = {}
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"checks folder {folder} does not exist",
                              hint="create it, or set `checks:` in shoplake.yml to a folder of *.sql / *.yml checks")
        for check in load_folder(folder, known):
            if check.name in mine:
                raise CheckError(check.source, 1, f"check {check.name!r} is also defined in {mine[check.name].source}",
                                 hint="give each check its own name")
            mine[check.name] = check
    found.update(mine)
    return list(found.values())
