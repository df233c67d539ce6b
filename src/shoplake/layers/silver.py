"""Silver, part two: run a feed's checks, keep the valid rows, and write silver and quarantine.

Feeds are checked parents first, each written once checked (`stages.Stages.check`); references resolve
against silver plus the batch's own valid parent rows, which a checked feed keeps as its referenced
columns only (`_keep_referenced`), so its rows can go once written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlglot import exp

from shoplake.contracts import Contract, ContractSet, LoadMode, Severity
from shoplake.engines import Engine, MergeSpec, WriteJob
from shoplake.engines.base import CURRENT_FLAG
from shoplake.layers import scd2
from shoplake.layers.bronze import META_COLUMNS, bronze_table
from shoplake.layers.checks import (
    FILE_STATS,
    LINEAGE,
    SQL_TYPES,
    CheckPlan,
    batch_failed_table,
    batch_keys_table,
    checked_table,
    plan_checks,
    quarantined_keys_table,
    refkeys_table,
    stat_keys,
    typed_value,
    valid_table,
)
from shoplake.layers.sql import alias, and_all, cast, col, concat, lit, select, table

SILVER = "silver"
QUARANTINE = "quarantine"


@dataclass
class FileCounts:
    duplicates: int = 0
    quarantined: int = 0
    loaded: int = 0


@dataclass
class FeedResult:
    """What checking one feed of a batch found."""

    feed: str
    files: dict[str, FileCounts] = field(default_factory=dict)
    rule_failures: dict[str, int] = field(default_factory=dict)
    severities: dict[str, Severity] = field(default_factory=dict)

    @property
    def fatal(self) -> dict[str, int]:
        return {r: n for r, n in self.rule_failures.items() if self.severities.get(r) is Severity.FAIL_BATCH}


def history_view(feed: str) -> str:
    return f"{feed}_history"


class Attached(set[str]):
    """The feeds with a silver table (the set itself), and the referenced feeds with a quarantine table
    (`quarantined`, attached as quarantine.<feed>: an orphan's parent may be waiting there)."""

    def __init__(self, silver: set[str], quarantined: set[str]) -> None:
        super().__init__(silver)
        self.quarantined = quarantined


def attach_silver(engine: Engine, contracts: ContractSet, lake: str) -> Attached:
    """Expose every silver table as silver.<feed> (current rows of SCD2 feeds) for queries, and the
    quarantine of every feed that others reference as quarantine.<feed>."""
    present = set()
    for contract in contracts:
        path = silver_path(lake, contract.feed)
        if contract.load.mode is LoadMode.SCD2:
            if engine.attach_delta(path, SILVER, contract.feed, where=col(CURRENT_FLAG)):
                engine.attach_delta(path, SILVER, history_view(contract.feed))
                present.add(contract.feed)
        elif engine.attach_delta(path, SILVER, contract.feed):
            present.add(contract.feed)
    parents = {parent for contract in contracts for _, parent, _ in contract.references}
    quarantined = {feed for feed in sorted(parents)
                   if engine.attach_delta(quarantine_path(lake, feed), QUARANTINE, feed)}
    return Attached(present, quarantined)


def quarantined_table(feed: str) -> str:
    """A feed's failed rows staged for its quarantine write; not `quarantine__<feed>`, the name the Spark
    engine gives the attached quarantine table (`quarantine.<feed>`) that child feeds check against."""
    return f"quarantined__{feed}"


def silver_path(lake: str, feed: str) -> str:
    return f"{lake}/silver/{feed}"


def quarantine_path(lake: str, feed: str) -> str:
    return f"{lake}/quarantine/{feed}"


def check_feed(
    engine: Engine,
    contract: Contract,
    contracts: ContractSet,
    *,
    in_silver: Attached,
    checked_feeds: set[str],
    drifted_files: list[str],
    referenced: bool,
) -> FeedResult:
    """Check the batch's bronze rows of one feed; leaves `valid__<feed>` for writing and, when feeds of
    this batch reference it (`referenced`), stored for their reference checks."""
    _prepare_keys(engine, contract, contracts, in_silver=in_silver, checked_feeds=checked_feeds)
    plan: CheckPlan = plan_checks(
        contract, drifted_files=drifted_files,
        existing_keys=contract.load.mode is LoadMode.APPEND and contract.feed in in_silver,
    )
    checked = checked_table(contract.feed)
    engine.create_table(checked, plan.query)
    ok = col("_errors").is_(exp.null())
    valid = _valid_rows(contract, checked, ok)
    engine.define_view(valid_table(contract.feed), valid)  # read once, by its write
    if referenced:
        _keep_referenced(engine, contract, contracts, checked, ok)

    result = FeedResult(feed=contract.feed, severities=plan.severities)
    counts = select(
        col("_source_file"),
        exp.Sum(this=col("_duplicates")),
        exp.Sum(this=exp.If(this=ok.copy(), true=lit(0), false=lit(1))),
        exp.Sum(this=exp.If(this=ok.copy(), true=lit(1), false=lit(0))),
    ).from_(table(checked)).group_by(col("_source_file"))
    for source_file, duplicates, quarantined, loaded in engine.fetch(counts):
        result.files[source_file] = FileCounts(int(duplicates), int(quarantined), int(loaded))
    failures = exp.union(*[
        select(alias(exp.Explode(this=col(name)), "e")).from_(table(checked)).where(col(name).is_(exp.null()).not_())
        for name in ("_errors", "_warnings")], distinct=False)
    rule = exp.RegexpExtract(this=col("e"), expression=lit("^[^:]+"), group=lit(0))
    per_rule = select(alias(rule, "rule"), exp.Count(this=exp.Star())).from_(
        exp.alias_(failures.subquery(), "f")).group_by(rule.copy())
    result.rule_failures = {name: int(n) for name, n in engine.fetch(per_rule)}
    return result


def key_stats(contract: Contract) -> tuple[str, ...]:
    """Statistics kept per file of a feed's silver table: its keys (merges find matches by them), its
    sequence and its rows' files; an SCD2 table's versions also by `_valid_from` (`scd2.stage`)."""
    sequence = (contract.load.sequence,) if contract.load.sequence else ()
    return tuple(dict.fromkeys((*stat_keys(contract), *sequence, *FILE_STATS)))


def stage_writes(engine: Engine, contract: Contract, lake: str, *, in_silver: bool, bronze: bool = True,
                 quarantine_mode: Literal["append", "overwrite"] = "append", replaced: bool = False) -> list[WriteJob]:
    """Stage a checked feed's writes: bronze rows, quarantined rows, valid rows into silver (for SCD2
    feeds also onto their observation log, see `layers.scd2`).

    A quarantine replay writes no bronze (its rows came from the quarantine) and overwrites the
    quarantine with the rows that still fail. `replaced`: this batch took earlier observations of an
    SCD2 feed out of its log (`scd2.forget_observations`), whose keys are recomputed."""
    feed = contract.feed
    jobs = [WriteJob(bronze_table(feed), f"{lake}/bronze/{feed}", "append", stats=FILE_STATS)] if bronze else []
    quarantined = quarantined_table(feed)
    c, b = "c", "b"
    failed = col("_errors", c).is_(exp.null()).not_()
    x = exp.to_identifier("x")
    rules = exp.Transform(
        this=col("_errors", c),
        expression=exp.Lambda(
            this=exp.RegexpExtract(this=exp.column(x), expression=lit("^[^:]+"), group=lit(0)), expressions=[x]),
    )
    engine.create_table(quarantined, select(
        *[col(name, b) for name in (*contract.column_names, *META_COLUMNS)],
        alias(rules, "_failed_rules"),
        alias(col("_errors", c), "_errors"),
    ).from_(exp.alias_(table(checked_table(feed)), c)).join(
        exp.alias_(table(bronze_table(feed)), b),
        # A row is known by its batch too: a replay's rows come from many batches, and a file name
        # (orders/export.csv) that recurs across days repeats its row numbers.
        on=and_all(exp.EQ(this=col(k, c), expression=col(k, b)) for k in ("_batch_id", "_source_file", "_row_number")),
    ).where(failed))
    jobs.append(WriteJob(quarantined, quarantine_path(lake, feed), quarantine_mode, stats=FILE_STATS))

    target = silver_path(lake, feed)
    mode = contract.load.mode
    stats = key_stats(contract)
    if mode is LoadMode.APPEND:
        jobs.append(WriteJob(valid_table(feed), target, "append", stats=stats))
    elif mode is LoadMode.UPSERT:
        spec = MergeSpec(mode="upsert", keys=contract.primary_key, sequence=contract.load.sequence)
        jobs.append(WriteJob(valid_table(feed), target, "merge", spec, stats=stats))
    else:
        history = table(history_view(feed), SILVER) if in_silver else None
        jobs.extend(scd2.stage(engine, contract, lake, target, history=history, sequence=sequence_value(contract),
                               replaced=replaced))
    return jobs


def _keep_referenced(engine: Engine, contract: Contract, contracts: ContractSet, checked: str, ok: exp.Expr) -> None:
    """What this batch's child feeds check against, kept small so the feed's rows can go once written:
    its valid rows' referenced columns and its failed rows' (see `_quarantined_parents`)."""
    feed = contract.feed
    columns = sorted({parent_column for child in contracts for _, parent, parent_column in child.references
                      if parent == feed})
    # Valid rows of an upsert feed are the newest per key; rows that passed have the same keys, but a
    # referenced column outside the key must come from the valid rows themselves.
    keys = select(*map(col, columns))
    engine.create_table(batch_keys_table(feed), keys.from_(table(checked)).where(ok.copy())
                        if set(columns) <= set(contract.primary_key) else keys.from_(table(valid_table(feed))))
    engine.create_table(batch_failed_table(feed), select(
        *map(col, columns), *map(col, ("_source_file", "_row_number", "_ingested_at", "_errors"))
    ).from_(table(checked)).where(ok.copy().not_()))


def _prepare_keys(
    engine: Engine, contract: Contract, contracts: ContractSet, *, in_silver: Attached, checked_feeds: set[str]
) -> None:
    for i, (column, parent, parent_column) in enumerate(contract.references):
        sources: list[exp.Select] = []
        if parent in in_silver:
            sources.append(select(alias(col(parent_column), "k")).from_(table(parent, SILVER)))
        if parent in checked_feeds:
            sources.append(select(alias(col(parent_column), "k")).from_(table(batch_keys_table(parent))))
        key_type = SQL_TYPES[contracts[parent].column(parent_column).type]
        if sources:
            union: exp.Query = sources[0]
            for extra in sources[1:]:
                union = exp.union(union, extra, distinct=False)
            keys = select(alias(cast(col("k"), key_type), f"_k{i}")).from_(
                exp.alias_(union.subquery(), "u")).distinct()
        else:
            keys = select(alias(cast(exp.null(), key_type), f"_k{i}")).where(exp.false())
        engine.create_table(refkeys_table(contract.feed, column.name), keys)
        engine.create_table(quarantined_keys_table(contract.feed, column.name), _quarantined_parents(
            contracts[parent], parent_column, f"_q{i}", key_type, in_batch=parent in checked_feeds,
            stored=parent in in_silver.quarantined))
    if contract.load.mode is LoadMode.APPEND and contract.feed in in_silver:
        engine.create_table(refkeys_table(contract.feed, "_self"), select(
            *[alias(col(k), f"_pk_{k}") for k in contract.primary_key]).from_(table(contract.feed, SILVER)).distinct())


def _quarantined_parents(parent: Contract, key: str, name: str, key_type: str, *, in_batch: bool,
                         stored: bool) -> exp.Query:
    """One row per parent key in quarantine (this batch's failed rows, then earlier batches' in the
    quarantine table): `name` the key, `<name>_reason` where it is and why ("orders_2026_01_05.csv row
    17, <its reasons>"). The newest quarantined row of a key speaks for it."""
    def located(key_value: exp.Expr, source: exp.Table, rank: int) -> exp.Select:
        reason = concat(col("_source_file"), " row ", col("_row_number"), ", ",
                        exp.ArrayToString(this=col("_errors"), expression=lit("; ")))
        return select(alias(key_value, "k"), alias(reason, "reason"), alias(lit(rank), "_rank"),
                      alias(col("_ingested_at"), "_at"), alias(col("_source_file"), "_file"),
                      alias(col("_row_number"), "_row")).from_(source)

    sources: list[exp.Select] = []
    if in_batch:  # typed already
        sources.append(located(cast(col(key), key_type), table(batch_failed_table(parent.feed)), 0))
    if stored:  # raw text as it arrived: typed as the parent's checks type it
        sources.append(located(cast(typed_value(parent, key), key_type), table(parent.feed, QUARANTINE), 1))
    if not sources:
        return select(alias(cast(exp.null(), key_type), name), alias(cast(exp.null(), "VARCHAR"), f"{name}_reason")
                      ).where(exp.false())
    # Every part is built here for this one query: nested without copies (each builder copies by default,
    # and the parents' typed keys made these copies a sixth of a small batch's sqlglot time).
    union: exp.Query = sources[0] if len(sources) == 1 else exp.union(*sources, distinct=False, copy=False)
    newest = exp.Window(this=exp.RowNumber(), partition_by=[col("k")], order=exp.Order(expressions=[
        exp.Ordered(this=col("_rank")), exp.Ordered(this=col("_at"), desc=True), exp.Ordered(this=col("_file")),
        exp.Ordered(this=col("_row"))]))
    ranked = select(col("k"), col("reason"), alias(newest, "_nth")).from_(
        exp.alias_(union.subquery(copy=False), "q", copy=False), copy=False).where(
        col("k").is_(exp.null()).not_(), copy=False)
    return select(alias(col("k"), name), alias(col("reason"), f"{name}_reason")).from_(
        exp.alias_(ranked.subquery(copy=False), "r", copy=False), copy=False).where(
        exp.EQ(this=col("_nth"), expression=lit(1)), copy=False)


def _silver_columns(contract: Contract) -> list[exp.Expr]:
    return [col(c) for c in (*contract.column_names, *contract.derived, *LINEAGE)]


def _valid_rows(contract: Contract, checked: str, ok: exp.Expr) -> exp.Query:
    """Rows that passed every check; for upsert feeds, only the newest version of each key (SCD2 feeds
    keep every version: each may open a period of history).

    Keys seen once in the batch (nearly all) skip the window; only repeated keys are ranked.
    """
    columns = _silver_columns(contract)
    passed = select(*columns).from_(table(checked)).where(ok)
    if contract.load.mode is not LoadMode.UPSERT:
        return passed
    keys = [col(k) for k in contract.primary_key]
    repeated = select(*keys).from_(table(checked)).where(ok.copy()).group_by(*keys).having(
        exp.GT(this=exp.Count(this=exp.Star()), expression=lit(1)))
    same_key = and_all(exp.EQ(this=col(k, "v"), expression=col(k, "r")) for k in contract.primary_key)
    rows = exp.alias_(exp.to_identifier("passed"), "v")
    once = select(*[col(c.name, "v") for c in columns]).from_(rows).join(
        exp.alias_(exp.to_identifier("repeated"), "r"), on=same_key, join_type="anti")
    newest = select(*[col(c.name, "v") for c in columns]).from_(rows.copy()).join(
        exp.alias_(exp.to_identifier("repeated"), "r"), on=same_key.copy(), join_type="semi").qualify(
        exp.EQ(this=_latest_first(contract), expression=lit(1)))
    return exp.union(once, newest, distinct=False).with_("passed", as_=passed).with_("repeated", as_=repeated)


def sequence_value(contract: Contract) -> exp.Expr:
    """A row's place in its key's history: its sequence value, or when it has none (or the feed has no
    sequence column) the time it was ingested, so a row without one is neither lost nor always newest."""
    if not contract.load.sequence:
        return col("_ingested_at")
    return exp.Coalesce(this=col(contract.load.sequence), expressions=[col("_ingested_at")])


def _latest_first(contract: Contract) -> exp.Window:
    """Among versions of one key in a batch, the newest by the sequence value, then by file position."""
    order = [exp.Ordered(this=col(c), desc=True) for c in ("_source_file", "_row_number")]
    if contract.load.sequence:
        order.insert(0, exp.Ordered(this=sequence_value(contract), desc=True))
    return exp.Window(
        this=exp.RowNumber(), partition_by=[col(k) for k in contract.primary_key], order=exp.Order(expressions=order)
    )
