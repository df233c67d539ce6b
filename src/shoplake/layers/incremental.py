"""One gold model in a load batch: not computed when none of its inputs changed, only the partitions
the batch touched when it is incremental and they can be told (`layers.touched`), else whole; and what
that did to its rows, for the models that read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from shoplake.engines import Engine, WriteJob
from shoplake.layers import touched
from shoplake.layers.partitions import (
    STORED,
    PartitionWrite,
    changed_partitions,
    fits,
    in_partitions,
    partitioned_write,
    stored_table,
)
from shoplake.layers.touched import GOLD

if TYPE_CHECKING:
    from shoplake.layers.gold import Model


@dataclass(frozen=True)
class Step:
    rows: int  # rows of the model's table after the batch
    recomputed: list[str] | None  # the partitions computed (None: the whole model; []: none)
    rewritten: list[str] | None  # the partitions written (None: the whole table; ["-"]: not partitioned)
    change: touched.Change  # what the batch did to the model's rows, for the models reading it
    job: WriteJob | None


def incremental_step(engine: Engine, model: Model, path: str, staged: str,
                      inputs: dict[touched.Input, touched.Change]) -> Step:
    """One model in a load batch: not computed when no input changed, only the touched partitions when
    incremental and they can be told, else whole; and what that changed, for the models after it."""
    query_view = f"{staged}__query"
    engine.define_view(query_view, model.query.copy())  # an engine may render a query in place: models stay
    columns = engine.columns(query_view)
    laid_out = fits(engine, path, columns, model.partition)
    if laid_out and not any(c.changed for c in inputs.values()):
        engine.attach_delta(path, GOLD, model.name)
        return Step(_count(engine, exp.table_(exp.to_identifier(model.name, quoted=True), db=GOLD)), [],
                     [] if model.partition else ["-"], touched.UNCHANGED, None)
    values: list[object] | None = None
    shared = touched.SharedCtes(engine, model.name, model.query)
    if laid_out and model.incremental and model.partition is not None:
        values = touched.touched_partitions(engine, model.name, model.query, model.partition, inputs,
                                            lambda a, b: changed_partitions(a, b, columns, model.partition or "",
                                                                               same_types=True),
                                            shared)
    within = None if values is None else in_partitions(model.partition or "", values) if values else exp.false()
    if values is not None and within is None:
        values = None  # a value without a literal: computed whole
    if values == []:
        engine.attach_delta(path, GOLD, model.name)
        return Step(_count(engine, exp.table_(exp.to_identifier(model.name, quoted=True), db=GOLD)), [], [],
                     touched.UNCHANGED, None)
    if values is None or within is None:
        rows = engine.create_table(staged, model.query.copy())
        engine.create_view(GOLD, model.name, staged)
        if model.partition is None:
            change = touched.model_change(engine, model.name, model.query, inputs, _stored(engine, path, model.name)) \
                if laid_out else touched.WHOLE
            return Step(rows, None, ["-"], change, WriteJob(staged, path, "overwrite"))
        write = partitioned_write(engine, model.path, model.name, model.partition, staged, path,
                                  incremental=model.incremental)
        return Step(rows, None, write.rewritten, _partitions_change(engine, model.name, staged, write), write.job)
    restricted = shared.apply(model.query.copy(), set(), create=False)
    engine.create_table(staged, exp.select("*").from_(restricted.subquery("m", copy=False), copy=False).where(
        within.copy(), copy=False))
    write = partitioned_write(engine, model.path, model.name, model.partition or "", staged, path,
                              incremental=True, within=within)
    # Later models read the whole new table: the stored rows outside the touched partitions, and these.
    # Outside: an anti join on the touched values the stored table holds (a few rows), NULL-safe, so a
    # NULL partition is matched as any other value.
    part = model.partition or ""
    inside = f"{staged}__inside"
    engine.create_table(inside, exp.select(exp.column(part, quoted=True)).from_(stored_table(model.name)).where(
        within.copy()).distinct())
    whole = f"{staged}__all"
    outside = exp.select(*[exp.column(c, table="s", quoted=True) for c in columns]).from_(
        exp.alias_(stored_table(model.name), "s")).join(
        exp.alias_(exp.to_identifier(inside, quoted=True), "t"), join_type="anti",
        on=exp.NullSafeEQ(this=exp.column(part, table="s", quoted=True),
                          expression=exp.column(part, table="t", quoted=True)))
    engine.define_view(whole, exp.union(outside, exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(
        exp.to_identifier(staged, quoted=True)), distinct=False))
    engine.create_view(GOLD, model.name, whole)
    shown = sorted("NULL" if v is None else str(v) for v in values)
    return Step(_count(engine, exp.table_(exp.to_identifier(whole, quoted=True))), shown, write.rewritten,
                 _partitions_change(engine, model.name, staged, write), write.job)


def _partitions_change(engine: Engine, name: str, staged: str, write: PartitionWrite) -> touched.Change:
    """A partitioned model's change: its new and its stored rows in the partitions it rewrote."""
    if write.rewritten == []:
        return touched.UNCHANGED
    if write.where is None:
        return touched.WHOLE
    added, removed = f"added__{GOLD}__{name}", f"removed__{GOLD}__{name}"
    engine.create_table(added, exp.select("*").from_(exp.to_identifier(staged, quoted=True)).where(write.where.copy()))
    names = [exp.column(c, quoted=True) for c in engine.columns(added)]  # in the staged order
    engine.create_table(removed, exp.select(*names).from_(stored_table(name)).where(write.where.copy()))
    return touched.rows_change(engine, added, removed, stored_table(name))


def _stored(engine: Engine, path: str, name: str) -> exp.Table:
    engine.attach_delta(path, STORED, name)
    return stored_table(name)


def _count(engine: Engine, source: exp.Table) -> int:
    return int(engine.fetch(exp.select(exp.Count(this=exp.Star())).from_(source))[0][0])
