"""Checks written from what the models and contracts declare: every model's `key:` is unique and not
null, and every SCD2 feed has exactly one current version per key."""

from __future__ import annotations

from sqlglot import exp

from shoplake.contracts import ContractSet, LoadMode
from shoplake.engines.base import CURRENT_FLAG
from shoplake.layers.gold import HISTORY, Model
from shoplake.quality.checks import ERROR, GOLD, SILVER, Check

ROWS = "_rows"  # how many rows share the key (uniqueness)
CURRENT_ROWS = "_current_rows"  # how many current versions a key has (SCD2)


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _table(schema: str, name: str) -> exp.Table:
    return exp.table_(name, db=schema, quoted=True)


def _count_star() -> exp.Count:
    return exp.Count(this=exp.Star())


def key_unique(model: Model) -> Check:
    """Rows sharing a key (NULLs compare equal in GROUP BY, so a repeated NULL key counts too)."""
    keys = [_col(k) for k in model.key]
    query = (exp.select(*keys, exp.alias_(_count_star(), ROWS, quoted=True)).from_(_table(GOLD, model.name))
             .group_by(*[k.copy() for k in keys]).having(exp.GT(this=_count_star(), expression=exp.Literal.number(1))))
    return Check(name=f"{model.name}_key_unique", severity=ERROR, source=f"generated from {model.path}",
                 description=f"gold.{model.name} has one row per key ({', '.join(model.key)}): its `key:` header",
                 query=query, reads=frozenset({(GOLD, model.name)}))


def nullable_keys(model: Model) -> set[str]:
    """Key columns a GROUPING SETS model leaves NULL on its coarser levels by design: those missing from
    some of its grouping sets."""
    nullable: set[str] = set()
    for sets in model.query.find_all(exp.GroupingSets):
        members = [{c.name for c in s.find_all(exp.Column)} for s in sets.expressions]
        every = set.intersection(*members) if members else set()
        nullable |= set.union(*members) - every if members else set()
    return nullable & set(model.key)


def key_not_null(model: Model) -> Check | None:
    """Rows with a NULL key column (the key columns a grouping level leaves empty excepted)."""
    checked = [k for k in model.key if k not in nullable_keys(model)]
    if not checked:
        return None
    where = exp.or_(*[exp.Is(this=_col(k), expression=exp.Null()) for k in checked])
    query = exp.select(exp.Star()).from_(_table(GOLD, model.name)).where(where)
    return Check(name=f"{model.name}_key_not_null", severity=ERROR, source=f"generated from {model.path}",
                 description=f"gold.{model.name}: no key column ({', '.join(checked)}) is NULL",
                 query=query, reads=frozenset({(GOLD, model.name)}))


def one_current_version(feed: str, keys: tuple[str, ...], *, deletes: bool, source: str) -> Check:
    """Keys of an SCD2 feed with more than one current version, or (a feed without deletes) none."""
    history = feed + HISTORY
    current = exp.Sum(this=exp.Case(ifs=[exp.If(this=_col(CURRENT_FLAG), true=exp.Literal.number(1))],
                                    default=exp.Literal.number(0)))
    wrong: exp.Expr = exp.GT(this=current.copy(), expression=exp.Literal.number(1)) if deletes else exp.NEQ(
        this=current.copy(), expression=exp.Literal.number(1))
    cols = [_col(k) for k in keys]
    query = (exp.select(*cols, exp.alias_(current, CURRENT_ROWS, quoted=True)).from_(_table(SILVER, history))
             .group_by(*[c.copy() for c in cols]).having(wrong))
    rule = "at most one current version (a delete closes the last)" if deletes else "exactly one current version"
    return Check(name=f"{feed}_one_current_version", severity=ERROR, source=f"generated from {source}",
                 description=f"silver.{history}: every {', '.join(keys)} has {rule}",
                 query=query, reads=frozenset({(SILVER, history)}))


def generated_checks(models: list[Model], contracts: ContractSet) -> list[Check]:
    checks: list[Check] = []
    for model in models:
        if not model.key:
            continue
        checks.append(key_unique(model))
        not_null = key_not_null(model)
        if not_null is not None:
            checks.append(not_null)
    for contract in contracts:
        if contract.load.mode is LoadMode.SCD2 and contract.primary_key:
            checks.append(one_current_version(contract.feed, tuple(contract.primary_key),
                                              deletes=bool(contract.load.deletes),
                                              source=contract.source or contract.feed))
    return checks
