"""The silver columns each gold model reads, found by walking the model's SQL scopes with sqlglot."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from shoplake.contracts import ContractSet
from shoplake.layers.gold import SILVER, Model

ModelInputs = dict[str, dict[str, set[str]]]  # feed -> column -> models that read it


def model_inputs(models: list[Model]) -> ModelInputs:
    """For every silver table a model reads, the columns it names (qualified, or in a one-source scope)."""
    out: ModelInputs = {}
    for model in models:
        for scope in traverse_scope(model.query):
            # The tables of this scope's FROM and JOINs (a CTE also sees earlier CTEs as sources).
            selected = {name: source for name, (_, source) in scope.selected_sources.items()}
            for column in scope.columns:
                source = selected.get(column.table) if column.table else (
                    next(iter(selected.values())) if len(selected) == 1 else None)
                if isinstance(source, exp.Table) and source.db == SILVER:
                    feed = source.name.removesuffix("_history")
                    out.setdefault(feed, {}).setdefault(column.name, set()).add(model.name)
    return out


def missing_inputs(inputs: ModelInputs, contracts: ContractSet) -> dict[str, dict[str, set[str]]]:
    """feed -> column -> models, for every column a model reads that the feed's contract does not provide."""
    missing: dict[str, dict[str, set[str]]] = {}
    for feed, columns in inputs.items():
        provided = set(contracts[feed].column_names) | set(contracts[feed].derived) if feed in contracts else set()
        for column, models in columns.items():
            if column not in provided and not column.startswith("_"):
                missing.setdefault(feed, {})[column] = models
    return missing
