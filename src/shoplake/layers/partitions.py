"""Incremental gold: which partitions of a partitioned model's table changed, and the write that
replaces only those (one predicate-overwrite commit), or the whole table when it cannot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlglot import exp

from shoplake.contracts.expressions import parse_sql
from shoplake.engines import Engine, WriteJob
from shoplake.errors import ModelError

STORED = "gold_stored"  # where a partitioned model's current Delta table is attached to compare with


@dataclass(frozen=True)
class PartitionWrite:
    """How a partitioned model's staged rows reach its table: the job (None: no partition changed),
    the partition values it rewrites (None: all of them) and those as a predicate (None: all)."""

    job: WriteJob | None
    rewritten: list[str] | None
    where: exp.Expr | None = None


def partitioned_write(engine: Engine, source: str, name: str, partition: str, staged: str, path: str, *,
                      incremental: bool, within: exp.Expr | None = None) -> PartitionWrite:
    """How a partitioned model's staged rows reach its table, and which partitions that rewrites.

    The table is rewritten whole when it is new, laid out otherwise (not partitioned by `partition`) or
    has other columns, and for a model that is not incremental. Otherwise the partitions to rewrite are
    those whose fingerprints differ between staged and stored rows (`changed_partitions`): whatever
    changed the rows (a late file, an order moving day, a changed dimension, a deleted file), with
    nothing to derive per model. `within`: the staged rows are only the partitions matching it (the
    ones the batch touched), and only those stored partitions are compared.
    """
    columns = engine.columns(staged)
    if partition not in columns:
        raise ModelError(f"model {source}: partition: {partition} is not one of its columns "
                         f"({', '.join(columns)})", hint="name an output column (a date, such as order_date)")
    whole = PartitionWrite(WriteJob(staged, path, "overwrite", partition_by=(partition,)), None)
    if not incremental or not fits(engine, path, columns, partition):
        if within is not None:
            raise ModelError(f"model {source}: only some partitions were computed for a table laid out otherwise")
        return whole
    engine.attach_delta(path, STORED, name)
    stored = stored_table(name)
    if within is not None:
        engine.define_view(f"{staged}__stored", exp.select("*").from_(stored).where(within.copy()))
        stored = exp.table_(exp.to_identifier(f"{staged}__stored", quoted=True))
    query = changed_partitions(exp.table_(exp.to_identifier(staged, quoted=True)), stored, columns, partition)
    values = [row[0] for row in engine.fetch(query)]
    if not values:
        return PartitionWrite(None, [])
    where = in_partitions(partition, values)
    if where is None:  # a value that cannot be written as a literal predicate (see _literal)
        if within is not None:
            raise ModelError(f"model {source}: partition values without a literal were computed in part")
        return whole
    touched = f"{staged}__touched"
    engine.define_view(touched, exp.select("*").from_(exp.to_identifier(staged, quoted=True)).where(where))
    return PartitionWrite(WriteJob(touched, path, "overwrite", replace=where, partition_by=(partition,)),
                          sorted("NULL" if v is None else str(v) for v in values), where)


def fits(engine: Engine, path: str, columns: list[str], partition: str | None) -> bool:
    """Whether the stored table exists with these columns, partitioned by `partition` (or not at all)."""
    return (engine.table_version(path) is not None and engine.table_columns(path) == columns
            and engine.table_partitions(path) == ([partition] if partition else []))


def stored_table(name: str) -> exp.Table:
    """Where `partitioned_write` attached a model's stored table."""
    return exp.table_(exp.to_identifier(name, quoted=True), db=exp.to_identifier(STORED, quoted=True))


_FINGERPRINTS = parse_sql("""
with staged_parts as (select part, count(*) as n, sum(row_hash) as h from staged group by part),
stored_parts as (select part, count(*) as n, sum(row_hash) as h from stored group by part)
select coalesce(a.part, b.part) as part
from staged_parts as a full join stored_parts as b on a.part is not distinct from b.part
where a.n is distinct from b.n or a.h is distinct from b.h
""", label="the partition fingerprints")[0]


def changed_partitions(staged: exp.Table, stored: exp.Table, columns: list[str], partition: str, *,
                       same_types: bool = False) -> exp.Query:
    """The partition values whose rows differ between two tables of the same columns (the staged model
    and its stored table, or two computations of one model: `same_types`).

    Each side is summed per partition to a row count and a sum of row hashes (one pass each, no join of
    rows: a row-by-row EXCEPT ALL costs about 50 times more). Against a stored table, values are hashed
    as text, so a type that changes on its way through Parquet (DuckDB's HUGEINT comes back
    DECIMAL(38,0)) hashes alike; `~` after each value keeps NULL apart from any text. Two computations
    in one engine have the same types, and their values are hashed as they are (about 5 times cheaper),
    each with its NULL flag (Spark's hash skips a NULL, which would make (NULL, 5) hash as (5, NULL)). A
    change is missed only when both the count and the hash sum of its partition stay equal (64-bit hashes
    on DuckDB, 32-bit on Spark).
    """
    def text(column: str) -> exp.Expr:
        value = exp.cast(exp.column(column, quoted=True), "VARCHAR")
        return exp.Coalesce(this=exp.DPipe(this=value, expression=exp.Literal.string("~")),
                            expressions=[exp.Literal.string("")])

    def native(column: str) -> list[exp.Expr]:
        return [exp.column(column, quoted=True), exp.column(column, quoted=True).is_(exp.null())]

    values = [v for c in columns for v in native(c)] if same_types else [text(c) for c in columns]
    row_hash = exp.Anonymous(this="hash", expressions=values)
    tables = {"staged": staged, "stored": stored}

    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and not node.db and node.name in tables:
            return tables[node.name].copy()
        if isinstance(node, exp.Column) and node.name == "part" and not node.table:
            return exp.alias_(exp.column(partition, quoted=True), "part") if isinstance(node.parent, exp.Select) \
                and node.arg_key == "expressions" else exp.column(partition, quoted=True)
        if isinstance(node, exp.Column) and node.name == "row_hash":
            return row_hash.copy()
        return node

    return _FINGERPRINTS.transform(substitute)  # type: ignore[return-value]  # transform copies first


def in_partitions(partition: str, values: list[object]) -> exp.Expr | None:
    """`partition IN (values)` (or IS NULL), None when a value has no literal here."""
    column = exp.column(partition, quoted=True)
    literals = [_literal(v) for v in values if v is not None]
    if any(lit is None for lit in literals):
        return None
    conditions: list[exp.Expr] = []
    if literals:
        conditions.append(column.isin(*[lit for lit in literals if lit is not None]))
    if any(v is None for v in values):
        conditions.append(column.copy().is_(exp.null()))
    return exp.or_(*conditions) if len(conditions) > 1 else conditions[0]


def _literal(value: object) -> exp.Expr | None:
    """A partition value as a literal both engines and delta-rs read alike: dates, text, whole numbers."""
    if isinstance(value, datetime):
        return None  # a timestamp's literal depends on session time zones: such a table is rewritten whole
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    return None
