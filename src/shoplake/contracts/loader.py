"""Loads the built-in e-commerce pack and a project's overrides, and checks every contract as it loads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlglot import exp

from shoplake.contracts.expressions import (
    DIALECT,
    ExpressionProblem,
    column_names,
    derived_expression,
    parse_boolean,
    parse_expression,
    shown_text,
)
from shoplake.contracts.model import SQL_TYPES, Column, ColumnType, Contract, LoadMode
from shoplake.engines.typecheck import BindProblem, TypedRow
from shoplake.errors import ContractError


@dataclass(frozen=True)
class ContractSet:
    """Every feed the pipeline knows, with references checked across feeds."""

    contracts: Mapping[str, Contract]

    def __iter__(self) -> Iterator[Contract]:
        return iter(self.contracts.values())

    def __getitem__(self, feed: str) -> Contract:
        try:
            return self.contracts[feed]
        except KeyError:
            raise ContractError(feed, f"no contract for feed {feed!r}") from None

    def __contains__(self, feed: object) -> bool:
        return feed in self.contracts

    def load_order(self, feeds: set[str] | None = None) -> list[str]:
        """Feeds ordered so that a referenced feed comes before the feeds that reference it."""
        wanted = set(self.contracts) if feeds is None else feeds
        graph = {
            feed: {parent for _, parent, _ in self.contracts[feed].references if parent != feed}
            for feed in sorted(wanted)
        }
        return [feed for feed in TopologicalSorter(graph).static_order() if feed in wanted]


def builtin_dir() -> Path:
    return Path(str(resources.files("shoplake.contracts") / "pack"))


def load_contracts(project_dirs: list[Path] | None = None) -> ContractSet:
    """The built-in pack, then each project folder's YAML files; a feed defined later replaces it whole."""
    contracts: dict[str, Contract] = {}
    for folder in [builtin_dir(), *(project_dirs or [])]:
        if not folder.is_dir():
            raise ContractError(str(folder), "contracts folder does not exist")
        for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
            contract = load_contract_file(path)
            contracts[contract.feed] = contract
    _check_references(contracts)
    try:
        ContractSet(contracts).load_order()
    except CycleError as error:
        raise ContractError("contracts", f"references form a cycle: {error.args[1]}") from None
    return ContractSet(contracts)


def load_contract_file(path: Path) -> Contract:
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ContractError(source, f"not valid YAML: {error}") from None
    return parse_contract(raw, source)


def parse_contract(raw: Any, source: str) -> Contract:
    if not isinstance(raw, dict):
        raise ContractError(source, "a contract is a YAML mapping with feed, files, primary_key and columns")
    columns = raw.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ContractError(source, "columns must be a mapping of column name to its settings")
    data = dict(raw)
    data["columns"] = [{**(spec or {}), "name": name} for name, spec in columns.items()]
    data["source"] = source
    try:
        contract = Contract.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{_location(e['loc'], data)}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise ContractError(source, problems) from None
    _check_columns(contract)
    return contract


def _location(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """Where a validation error is, as the YAML says it: `columns.category.map`, not `columns.3.map`.

    The columns were given as a mapping (made a list here for validation) and rules carry names, so a
    position is replaced by the name the author wrote; pydantic's own markers (`[key]`) are left out.
    """
    parts: list[str] = []
    for i, part in enumerate(loc):
        if isinstance(part, str) and part.startswith("["):
            continue
        if isinstance(part, int) and i == 1 and loc[0] in ("columns", "rules"):
            items = data.get(str(loc[0]))
            item = items[part] if isinstance(items, list) and part < len(items) else None
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name:
                parts.append(name)
                continue
        parts.append(str(part))
    return ".".join(parts)


def _check_columns(contract: Contract) -> None:
    source = contract.source
    names = contract.column_names
    known = set(names)
    for name in [*names, *contract.derived]:
        if names.count(name) > 1:
            raise ContractError(source, f"column {name!r} is declared twice")
        if name.startswith("_"):
            raise ContractError(source, f"column {name!r}: names starting with '_' are kept for shoplake's own "
                                "columns (_row_number, _source_file, ...)", hint="rename it; `source:` keeps "
                                "the file's header as it is")
    headers = [c.header.lower() for c in contract.columns]
    for column in contract.columns:
        if headers.count(column.header.lower()) > 1:
            raise ContractError(source, f"header {column.header!r} is read by more than one column",
                                hint="a file column feeds one contract column; use `derived:` for a second one")
    every = known | set(contract.derived)  # a key, sequence or tracked column may be derived
    for key in contract.primary_key:
        if key not in every:
            raise ContractError(source, f"primary_key names unknown column {key!r}")
        if key in contract.derived and contract.derived[key].type is None:
            raise ContractError(source, f"primary_key names derived column {key!r}, which has no type",
                                hint=f"give it one: derived: {{{key}: {{expr: ..., type: string}}}}")
    load = contract.load
    if load.sequence:
        if load.sequence not in every:
            raise ContractError(source, f"load.sequence names unknown column {load.sequence!r}")
        sequence_type = contract.type_of(load.sequence)
        if sequence_type is not ColumnType.TIMESTAMP:
            raise ContractError(source, f"load.sequence column {load.sequence!r} is "
                                f"{sequence_type.value if sequence_type else 'untyped'}, not a timestamp: a row "
                                "without a sequence value takes the time it was ingested (_ingested_at) instead, "
                                "so the sequence must be a time", hint="declare the column `type: timestamp` (a "
                                "date such as 2026-01-05 reads as its midnight)")
    for tracked in load.tracked:
        if tracked not in every:
            raise ContractError(source, f"load.tracked names unknown column {tracked!r}")
    if load.tracked and load.mode is not LoadMode.SCD2:
        raise ContractError(source, "load.tracked only applies to mode scd2")
    for option in ("untracked", "deletes"):
        if option in load.model_fields_set and load.mode is not LoadMode.SCD2:
            raise ContractError(source, f"load.{option} only applies to mode scd2",
                                hint="remove it, or historise the feed with `mode: scd2`")
    for column in contract.columns:
        _check_column(contract, column)
    derived: list[tuple[str, str, exp.Expr]] = []
    earlier: set[str] = set()
    for name, spec in contract.derived.items():
        if name in known:
            raise ContractError(source, f"derived column {name!r} clashes with a column of the file")
        where = f"derived.{name}"
        node = _check_expression(contract, where, spec.expr, known | earlier, boolean=False,
                                 later=set(contract.derived) - earlier)
        derived.append((where, spec.expr, node))
        earlier.add(name)
    rule_names = set()
    rules: list[tuple[str, str, exp.Expr]] = []
    for rule in contract.rules:
        if rule.name in rule_names:
            raise ContractError(source, f"rule {rule.name!r} is declared twice")
        rule_names.add(rule.name)
        where = f"rule {rule.name}"
        rules.append((where, rule.expr, _check_expression(contract, where, rule.expr, known | set(contract.derived),
                                                          boolean=True)))
    if load.deletes is not None:
        # A delete marker is a row rule: one boolean over the typed row, checked (and typed) like one.
        where = "load.deletes"
        rules.append((where, load.deletes, _check_expression(contract, where, load.deletes,
                                                            known | set(contract.derived), boolean=True)))
    _check_types(contract, derived, rules)


def _check_column(contract: Contract, column: Column) -> None:
    if column.references and column.references.count(".") != 1:
        raise ContractError(
            contract.source,
            f"column {column.name!r}: references {column.references!r} must read <feed>.<column>",
        )
    if column.format and column.type != "string":
        raise ContractError(contract.source, f"column {column.name!r}: format applies to string columns")


def _check_expression(contract: Contract, where: str, text: str, known: set[str], *, boolean: bool,
                      later: set[str] | None = None) -> exp.Expr:
    try:
        node = parse_boolean(text) if boolean else parse_expression(text)
    except ExpressionProblem as problem:
        raise ContractError(contract.source, f"{where}: {problem}") from None
    unknown = sorted(column_names(node) - known)
    if unknown:
        too_late = sorted(set(unknown) & (later or set()))
        if too_late:
            raise ContractError(
                contract.source,
                f"{where}: {text!r} uses derived column(s) {', '.join(too_late)} declared after it (or itself)",
                hint="a derived column may use the file's columns and the derived columns declared before it; "
                     "reorder them",
            )
        raise ContractError(
            contract.source,
            f"{where}: {text!r} names unknown column(s) {', '.join(unknown)}",
            hint=f"columns of feed {contract.feed}: {', '.join(sorted(known))}",
        )
    return node


def _check_types(contract: Contract, derived: list[tuple[str, str, exp.Expr]],
                 rules: list[tuple[str, str, exp.Expr]]) -> None:
    """Bind every derived column, then every rule, to the feed's typed row (the types silver casts to,
    plus the derived columns' own), so a type error is a contract error before any batch runs."""
    types = {column.name: SQL_TYPES[column.type] for column in contract.columns}
    with TypedRow(types) as row:
        for (where, text, node), (name, spec) in zip(derived, contract.derived.items(), strict=True):
            _check_casts(contract, row, where, text, node)
            if spec.type is None:
                types[name] = _bind(contract, row, where, text, node, types, add_as=name)
                continue
            value_type = _bind(contract, row, where, text, node, types)
            target = SQL_TYPES[spec.type]
            if value_type == "VARCHAR" and spec.type is not ColumnType.STRING:
                raise ContractError(contract.source, f"{where}: {shown_text(text)} is text, and `type: "
                                    f"{spec.type.value}` would cast it: one value that does not convert would "
                                    f"stop the batch; write try_cast(... AS {target}) as the expression, which "
                                    "gives NULL for such a value")
            types[name] = _bind(contract, row, where, text, derived_expression(contract, name), types, add_as=name)
        for where, text, node in rules:
            _check_casts(contract, row, where, text, node)
            value_type = _bind(contract, row, where, text, node, types)
            if value_type != "BOOLEAN":
                raise ContractError(contract.source, f"{where}: {shown_text(text)} gives {value_type}, not a "
                                    "boolean; fix the rule to a comparison or a test")


def _bind(contract: Contract, row: TypedRow, where: str, text: str, node: exp.Expr, types: dict[str, str], *,
          add_as: str | None = None) -> str:
    """The expression's type over the typed row (adding it to the row as `add_as`, for a derived column)."""
    try:
        return row.add(add_as, node) if add_as else row.type_of(node)
    except BindProblem as problem:
        named = ", ".join(f"{name} is {types[name]}" for name in sorted(column_names(node)) if name in types)
        what = "derived column" if add_as else "rule"
        raise ContractError(contract.source, f"{where}: {shown_text(text)} does not type-check against the feed's "
                            f"typed columns ({named or 'it names none'}): {problem}; fix the {what}") from None


def _check_casts(contract: Contract, row: TypedRow, where: str, text: str, node: exp.Expr) -> None:
    """A cast of text fails on the first value that does not convert and stops the whole batch."""
    for cast in node.find_all(exp.Cast):
        to_text = cast.to.is_type(*exp.DataType.TEXT_TYPES)
        if type(cast) is not exp.Cast or cast.this.find(exp.Column) is None or to_text:
            continue  # try_cast, a constant (it fails right here if it fails) or a cast to text
        try:
            operand = row.type_of(cast.this)
        except BindProblem:
            continue  # the whole expression's check names the problem
        if operand == "VARCHAR":
            target = cast.to.sql(dialect=DIALECT)
            raise ContractError(contract.source, f"{where}: {shown_text(text)} casts text to {target}, and one "
                                f"value that does not convert would stop the batch; use try_cast(... AS {target}), "
                                "which gives NULL for such a value")


def _check_references(contracts: dict[str, Contract]) -> None:
    for contract in contracts.values():
        for column, feed, parent_column in contract.references:
            if feed not in contracts:
                raise ContractError(
                    contract.source,
                    f"column {column.name!r} references unknown feed {feed!r} ({column.references})",
                    hint=f"known feeds: {', '.join(sorted(contracts))}",
                )
            if parent_column not in contracts[feed].column_names:
                raise ContractError(
                    contract.source,
                    f"column {column.name!r} references unknown column {column.references!r}",
                )
