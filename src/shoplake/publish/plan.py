"""What `shoplake publish` puts where: each lake table's PostgreSQL schema and name, its key, the foreign
keys from facts to dimensions, the columns to index and the comments, read from the model headers and
the contracts (no database touched here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shoplake.config import Publish, Settings
from shoplake.contracts import ContractSet
from shoplake.contracts.model import Column, Contract, LoadMode
from shoplake.landing.storage import child_of
from shoplake.layers.gold import Model

GOLD, SILVER, BRONZE = "gold", "silver", "bronze"


@dataclass(frozen=True)
class ForeignKey:
    column: str
    table: str  # the dimension, in the same schema
    parent_column: str


@dataclass(frozen=True)
class TableSpec:
    """One lake table and the PostgreSQL table it is published as."""

    layer: str
    name: str
    path: str  # the Delta table
    schema: str
    key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()  # candidates: those whose column the table has are declared
    comment: str = ""
    column_comments: dict[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _column_note(feed: str, column: Column) -> str:
    """A contract column as a reader of the warehouse needs it: its description, or its type and rules."""
    if column.description:
        return column.description
    parts = [str(column.type)]
    if column.required:
        parts.append("required")
    if column.accepted_values:
        parts.append("one of " + ", ".join(map(str, column.accepted_values)))
    note = f"{feed}.{column.name}: {', '.join(parts)}"
    return f"{note}; references {column.references}" if column.references else note


def _contract_notes(contract: Contract) -> dict[str, str]:
    notes = {c.name: _column_note(contract.feed, c) for c in contract.columns}
    for name, derived in contract.derived.items():
        notes[name] = derived.description or f"{contract.feed}.{name}: derived as {derived.expr}"
    return notes


def _gold_comments(model: Model, contracts: ContractSet) -> dict[str, str]:
    """A gold column named like a column of a feed the model reads is documented by that feed's contract;
    the key columns say so."""
    notes: dict[str, str] = {}
    for source in sorted(model.sources):
        feed = source.removesuffix("_history")
        if feed in contracts.contracts:
            for name, note in _contract_notes(contracts[feed]).items():
                notes.setdefault(name, note)
    for name in model.key:
        notes[name] = f"key of {model.name} ({model.grain})" + (f"; {notes[name]}" if name in notes else "")
    return notes


def _dimensions(models: list[Model]) -> dict[str, Model]:
    """Dimensions with a one-column key, by that column: what a fact's column of that name refers to."""
    return {m.key[0]: m for m in models if m.name.startswith("dim_") and len(m.key) == 1}


def plan(settings: Settings, target: Publish, models: list[Model], contracts: ContractSet) -> list[TableSpec]:
    """Every table to publish, dimensions before the facts that refer to them."""
    root = settings.tables_root
    dims = _dimensions(models)
    specs: list[TableSpec] = []
    for model in models:
        keys = tuple(ForeignKey(column, dims[column].name, column) for column in _fact_columns(model, dims))
        comment = model.description + (f" Grain: {model.grain}." if model.grain else "")
        specs.append(TableSpec(GOLD, model.name, str(child_of(child_of(root, GOLD), model.name)), target.gold_schema,
                               key=model.key, foreign_keys=keys, comment=comment.strip(),
                               column_comments=_gold_comments(model, contracts)))
    specs.sort(key=lambda s: (not s.name.startswith("dim_"), bool(s.foreign_keys)))  # stable: run order kept
    for layer, schema in ((SILVER, target.silver_schema), (BRONZE, target.bronze_schema)):
        if schema is None:
            continue
        for contract in contracts:
            # Silver keeps one row per key only when upserted; appended and SCD2 feeds hold several.
            key = contract.primary_key if layer == SILVER and contract.load.mode == LoadMode.UPSERT else ()
            comment = " ".join(filter(None, [contract.description, f"Grain: {contract.grain}." if contract.grain
                                             else "", f"({layer} layer of feed {contract.feed})"]))
            notes = _contract_notes(contract)
            if layer == BRONZE:
                notes = {name: f"raw text of {note}" for name, note in notes.items()}
            specs.append(TableSpec(layer, contract.feed, str(child_of(child_of(root, layer), contract.feed)), schema,
                                   key=key, comment=comment, column_comments=notes))
    return specs


def _fact_columns(model: Model, dims: dict[str, Model]) -> list[str]:
    """The dimension keys a fact may hold (models end in `select * from final`, so the table's own columns,
    known when it is published, decide which of these it has)."""
    if model.kind != "fact":
        return []
    return sorted(column for column in dims if dims[column].name != model.name)
