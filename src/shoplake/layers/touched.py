"""Incremental gold's compute side: which rows of each input a batch changed, and from them which
partitions of a model the batch touched, so that only those are recomputed.

An input's change is a pair of staged tables, `added` (its rows after the batch that may be new) and
`removed` (its rows before the batch that may be gone), such that the input after the batch equals the
input before it minus `removed` plus `added`, as multisets; rows in both simply cancel. A silver feed's
pair comes from its lineage: the rows the batch wrote (`_batch_id`) and, by key, the rows they replaced
(time travel to the version the batch noted before writing). A gold model's pair is its new and its
stored rows in the partitions it rewrote.

A partition of model M is touched when M's rows there could differ. With inputs X1..Xn changed, the
difference telescopes: M(X1', X2', ...) - M(X1, X2, ...) is the sum over j of M with Xj replaced by its
change, the inputs before j as they were and those after j as they are now. For a model without
aggregates (a row of M comes from one row of each input) a partition is touched when M over `added`
and M over `removed` differ there (compared by fingerprint); for an aggregating model, whose groups hold
the partition column, when any of its rows comes from a changed row. This holds for models whose rows
in one partition depend only on input rows that reach that partition; a model whose rows look at other
partitions' rows (a trailing window over days) says `kind: full` in its header.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from shoplake.contracts import ContractSet, LoadMode
from shoplake.engines import Engine
from shoplake.engines.base import CURRENT_FLAG
from shoplake.layers import scd2
from shoplake.layers.sql import and_all, col, lit, select, table

SILVER = "silver"
GOLD = "gold"
BEFORE = "before"  # an input as it was before the batch is attached as before_<schema>.<name>
HISTORY = "_history"
WITH = "with_" if "with_" in exp.Select.arg_types else "with"  # the key of a query's WITH (sqlglot's name)


@dataclass(frozen=True)
class FeedWrite:
    """How a batch wrote one feed's silver table: what identifies its rows, and the versions before."""

    feed: str
    mode: LoadMode
    keys: tuple[str, ...]
    path: str
    version_before: int | None  # None: the batch created the table
    log_path: str | None = None  # SCD2: the observation log, whose batch rows name the keys it changed


@dataclass(frozen=True)
class BatchChanges:
    """What a batch (a load, not a reprocess or a replay) wrote before gold runs."""

    batch_id: str
    feeds: dict[str, FeedWrite]  # only the feeds whose silver table the batch wrote


def batch_changes(contracts: ContractSet, lake: str, batch_id: str,
                  versions_before: dict[str, int | None]) -> BatchChanges:
    """The feeds a batch wrote, from the table versions it noted before writing (path -> version)."""
    feeds = {}
    for contract in contracts:
        path = f"{lake}/silver/{contract.feed}"
        if path not in versions_before:
            continue
        mode = contract.load.mode
        feeds[contract.feed] = FeedWrite(
            contract.feed, mode, tuple(contract.primary_key), path, versions_before[path],
            scd2.observations_path(lake, contract.feed) if mode is LoadMode.SCD2 else None)
    return BatchChanges(batch_id, feeds)


@dataclass(frozen=True)
class Change:
    """How one input of a model changed: unchanged, known row by row (`added`, `removed`: staged
    tables; `before`: the whole input as it was), or changed in ways not known row by row (`whole`)."""

    added: exp.Table | None = None
    removed: exp.Table | None = None
    both: exp.Table | None = None  # added and removed, one after the other
    before: exp.Table | None = None
    whole: bool = False

    @property
    def changed(self) -> bool:
        return self.whole or self.added is not None


UNCHANGED = Change()
WHOLE = Change(whole=True)


def staged(name: str) -> exp.Table:
    return table(name)


def silver_change(engine: Engine, changes: BatchChanges, name: str, read: list[str] | None = None) -> Change:
    """The change of silver.<name> (a feed, or <feed>_history) in this batch; `read`: the columns the
    models read of it (None: not known, every row the batch wrote or replaced counts)."""
    feed = name.removesuffix(HISTORY)
    write = changes.feeds.get(feed)
    if write is None:
        return UNCHANGED
    if write.version_before is None:
        return WHOLE  # created by this batch: the models reading it are new too, or read it as empty
    before_schema = f"{BEFORE}_{SILVER}"
    old_columns = engine.attach_delta_version(write.path, before_schema, feed, write.version_before)
    now = table(name, SILVER)
    engine.define_view(f"now__{SILVER}__{name}", select("*").from_(now.copy()))
    if old_columns != engine.columns(f"now__{SILVER}__{name}"):
        return WHOLE  # the batch added columns: its rows before cannot be set against its rows now
    old = table(feed, before_schema)
    current = write.mode is LoadMode.SCD2 and not name.endswith(HISTORY)
    if current:
        before_view = f"{BEFORE}__{SILVER}__{name}"
        engine.define_view(before_view, select("*").from_(old).where(col(CURRENT_FLAG)))
        old = table(before_view)
    batch = exp.EQ(this=col("_batch_id"), expression=lit(changes.batch_id))
    added, removed = f"added__{SILVER}__{name}", f"removed__{SILVER}__{name}"
    if write.mode is LoadMode.APPEND:
        rows = engine.create_table(added, select("*").from_(now).where(batch))
        engine.create_table(removed, select("*").from_(now).where(exp.false()))
    else:
        keys_table = f"keys__{SILVER}__{feed}"
        if write.mode is LoadMode.SCD2:
            # A version closed or updated in place keeps the lineage of its first observation: the keys
            # come from the batch's observations instead, every one of which is on the log.
            assert write.log_path is not None
            engine.attach_delta(write.log_path, f"{BEFORE}_log", feed)
            source: exp.Expr = table(feed, f"{BEFORE}_log")
        else:
            source = now
        engine.create_table(keys_table, select(*[col(k) for k in write.keys]).from_(source).where(batch).distinct())
        if read:
            # A full snapshot sends every row again: only the keys whose rows differ in a column some
            # model reads count as changed (the rest would cancel out, at the cost of reading them).
            # Only keys that existed before are compared: a new key is a change without reading its row.
            names = [*write.keys, *sorted(set(read) - set(write.keys))]
            candidates = [f"candidate_{side}__{SILVER}__{name}" for side in ("added", "removed")]
            if engine.create_table(candidates[1], _with_keys(old, keys_table, write.keys)):
                existing = f"existing_keys__{SILVER}__{name}"
                engine.create_table(existing, select(*[col(k) for k in write.keys]).from_(
                    table(candidates[1])).distinct())
                engine.create_table(candidates[0], _with_keys(now, existing, write.keys))
                new_keys = select(exp.Column(this=exp.Star(), table=exp.to_identifier("b"))).from_(
                    exp.alias_(table(keys_table), "b")).join(
                    exp.alias_(table(existing), "e"), join_type="anti",
                    on=and_all(exp.EQ(this=col(k, "b"), expression=col(k, "e")) for k in write.keys))
                keys_table = f"changed_keys__{SILVER}__{name}"
                engine.create_table(keys_table, exp.union(
                    new_keys, _differing_keys(candidates, names, write.keys), distinct=False))
            new_rows, old_rows = now, table(candidates[1])
        else:
            new_rows, old_rows = now, old
        rows = engine.create_table(added, _with_keys(new_rows, keys_table, write.keys))
        rows += engine.create_table(removed, _with_keys(old_rows, keys_table, write.keys))
    if not rows:
        return UNCHANGED
    assert isinstance(old, exp.Table)
    return rows_change(engine, added, removed, old)


def rows_change(engine: Engine, added: str, removed: str, before: exp.Table) -> Change:
    """A change known row by row, from its two staged tables."""
    both = f"both__{added.removeprefix('added__')}"
    # By name: a partitioned table read back may hold its partition column in another place.
    names = [col(c) for c in engine.columns(added)]
    engine.define_view(both, exp.union(select(*names).from_(table(added)),
                                       select(*[c.copy() for c in names]).from_(table(removed)), distinct=False))
    return Change(staged(added), staged(removed), staged(both), before.copy())


def _differing_keys(tables: list[str], names: list[str], keys: tuple[str, ...]) -> exp.Query:
    """The keys of the rows (by `names`) in one of two tables and not the other."""
    def rows(source: str) -> exp.Select:
        return select(*[col(n) for n in names]).from_(table(source))

    # Each difference in its own subquery: set operations chain from the left without parentheses.
    either = exp.union(
        select("*").from_(exp.except_(rows(tables[0]), rows(tables[1]), distinct=False).subquery("a")),
        select("*").from_(exp.except_(rows(tables[1]), rows(tables[0]), distinct=False).subquery("r")),
        distinct=False)
    return select(*[col(k) for k in keys]).from_(either.subquery("d")).distinct()


def _with_keys(source: exp.Expr, keys_table: str, keys: tuple[str, ...]) -> exp.Select:
    on = and_all(exp.EQ(this=col(k, "s"), expression=col(k, "k")) for k in keys)
    return select(exp.Column(this=exp.Star(), table=exp.to_identifier("s"))).from_(
        exp.alias_(source.copy(), "s")).join(exp.alias_(table(keys_table), "k"), on=on, join_type="semi")


# -- the shape of a model's query ------------------------------------------------------------------------

_AGGREGATING = (exp.AggFunc, exp.Group, exp.Distinct, exp.Having, exp.Qualify, exp.Limit, exp.Except,
                exp.Intersect)


def aggregates(query: exp.Query) -> bool:
    """Whether a row of the model can come from several rows of an input (groups, DISTINCT, set
    operations other than UNION ALL, LIMIT): then its partitions are found by the rows that reach them,
    not by comparing rows."""
    for node in query.walk():
        if isinstance(node, _AGGREGATING) and not (isinstance(node, exp.Window) or isinstance(node.parent, exp.Window)):
            return True
        if isinstance(node, exp.Union) and node.args.get("distinct"):
            return True
    return False


def row_wise(query: exp.Query) -> bool:
    """Whether each row of the model is one row of each input it joins (no aggregate, no window): then
    the model over an input's change is the model's own change."""
    return not aggregates(query) and not any(isinstance(n, exp.Window) for n in query.walk())


Input = tuple[str, str]  # (schema, name): ("silver", "orders"), ("gold", "dim_product")


def _input_of(node: exp.Table) -> Input | None:
    if node.db and not node.catalog and node.db.lower() in (SILVER, GOLD):
        return node.db.lower(), node.name.lower()
    return None


def occurrences(query: exp.Query, inputs: set[Input]) -> list[int]:
    """Positions (in `find_all(exp.Table)` order) of the table references to the given inputs."""
    return [i for i, node in enumerate(query.find_all(exp.Table)) if _input_of(node) in inputs]


def substituted(query: exp.Query, replace: dict[int, exp.Table]) -> exp.Query:
    """A copy of the query with the table reference at each position of `replace` replaced by its table
    (the reference's alias kept, or the input's name as alias so that qualified columns still resolve)."""
    copy = query.copy()
    nodes = list(copy.find_all(exp.Table))
    for i, node in enumerate(nodes):
        new = replace.get(i)
        if new is None or _input_of(node) is None:
            continue
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(node.name))
        node.set("this", new.this.copy())
        node.set("db", new.args["db"].copy() if new.args.get("db") else None)
        node.set("catalog", None)
        node.set("alias", alias)
    return copy


def inner_joins(query: exp.Query, changed: str) -> exp.Query | None:
    """Left joins to the changed rows (the staged table `changed`, or a CTE computed from it) made
    inner: a row that joins none of them comes out the same from the rows added and the rows removed,
    so it cannot mark a partition, and an inner join lets the engine start from the few changed rows.
    A join is kept when a WHERE of its SELECT reads the joined side (a missing match may then pass a
    filter that a match fails). None when one SELECT joins two sources computed from the changed rows
    (each would need its own term); reading them in several branches of a UNION ALL is fine."""
    derived = {changed}
    for cte in query.ctes:
        if any(t.name in derived and not t.db for t in cte.this.find_all(exp.Table)):
            derived.add(cte.alias_or_name)
    for scope in query.find_all(exp.Select):
        joined = [scope.args.get("from_") or scope.args.get("from"), *(scope.args.get("joins") or [])]
        if sum(1 for j in joined if j is not None and isinstance(j.this, exp.Table) and not j.this.db
               and j.this.name in derived) > 1:
            return None
    for join in list(query.find_all(exp.Join)):
        joined = join.this
        if not isinstance(joined, exp.Table) or joined.db or joined.name not in derived:
            continue
        if (join.side or "").upper() != "LEFT":
            continue
        select_ = join.find_ancestor(exp.Select)
        where = select_.args.get("where") if select_ else None
        name = joined.alias_or_name
        if where is not None and any(c.table == name for c in where.find_all(exp.Column)):
            continue
        join.set("side", None)
        join.set("kind", None)
    return query


# -- the partitions a batch touched ------------------------------------------------------------------

FingerprintDiff = Callable[[exp.Table, exp.Table], exp.Query]  # partitions whose rows differ between two tables


class SharedCtes:
    """A model's CTEs that join, group or window, as they are now, each computed once per batch for every
    term that leaves it as it is (typically the join of the big inputs, read by the term of a changed
    dimension) and then read by the restricted compute of the model too."""

    def __init__(self, engine: Engine, name: str, query: exp.Query) -> None:
        self.engine, self.name, self.query = engine, name, query
        self.staged: dict[str, exp.Table] = {}

    def apply(self, term: exp.Query, replaced: set[tuple[str, str]], *, create: bool = True) -> exp.Query:
        """`term` (a copy of the model with the tables `replaced` substituted) reading the shared CTEs it
        does not change; `create`: stage those not staged yet, else read every one staged so far."""
        derived: set[str] = set()
        for cte in term.ctes:
            tables = cte.this.find_all(exp.Table)
            if any((t.db, t.name) in replaced or (not t.db and t.name in derived) for t in tables):
                derived.add(cte.alias_or_name)
        read = {t.name for t in term.find_all(exp.Table) if not t.db and (
            (owner := t.find_ancestor(exp.CTE)) is None or owner.alias_or_name in derived)}
        for cte in term.ctes:
            alias = cte.alias_or_name
            if not create and alias in self.staged and alias not in derived:
                cte.set("this", select("*").from_(self.staged[alias].copy()))
                continue
            if alias in derived or alias not in read or not any(
                    isinstance(n, (exp.Join, exp.Group, exp.Window)) for n in cte.this.walk()):
                continue
            if alias not in self.staged:
                if not create:
                    continue
                whole = select("*").from_(exp.to_identifier(alias))
                whole.set(WITH, self.query.args[WITH].copy())
                self.staged[alias] = table(f"cte__{self.name}__{alias}")
                self.engine.create_table(self.staged[alias].name, whole)
            cte.set("this", select("*").from_(self.staged[alias].copy()))
        return term


def touched_partitions(engine: Engine, name: str, query: exp.Query, partition: str,
                       inputs: dict[Input, Change], differ: FingerprintDiff, shared: SharedCtes) -> list[object] | None:
    """The partition values of the model that the changes of its inputs may have changed; None when
    they cannot be told (an input changed in ways not known row by row, a CTE over a changed input read
    twice): then the model is computed whole. See the module's docstring for the method."""
    changed = {i for i, c in inputs.items() if c.changed}
    if any(inputs[i].whole for i in changed):
        return None
    # Last read first: the term of an input read late (a dimension joined to the facts) then reads the
    # inputs read before it as they are now, so their join is the shared one (SharedCtes).
    positions = occurrences(query, changed)[::-1]
    sources = {i: node for i, node in enumerate(query.find_all(exp.Table))}
    grouped = aggregates(query)
    parts: list[exp.Query] = []
    for k, position in enumerate(positions):
        change = inputs[_input_of(sources[position]) or ("", "")]
        # Telescoping: the inputs taken before this one as they were, those after it as they are now.
        earlier: dict[int, exp.Table] = {}
        for i in positions[:k]:
            before = inputs[_input_of(sources[i]) or ("", "")].before
            assert before is not None
            earlier[i] = before
        sides = [change.both] if grouped else [change.added, change.removed]
        terms: list[exp.Query] = []
        for side in sides:
            assert side is not None
            term = inner_joins(substituted(query, {**earlier, position: side}), side.name)
            if term is None:
                return None
            replaced = {(t.db, t.name) for t in [*earlier.values(), side]}
            terms.append(shared.apply(term, replaced))
        if grouped:
            parts.append(select(col(partition)).from_(terms[0].subquery("m", copy=False), copy=False).distinct(
                copy=False))
            continue
        views = [f"term__{name}__{k}__{j}" for j in range(2)]
        for view, term in zip(views, terms, strict=True):
            engine.define_view(view, term)
        parts.append(differ(table(views[0]), table(views[1])))
    if not parts:
        return []
    wrapped = [select("*").from_(part.subquery(f"p{n}", copy=False), copy=False) for n, part in enumerate(parts)]
    union: exp.Query = wrapped[0] if len(wrapped) == 1 else exp.union(*wrapped, distinct=True, copy=False)
    return [row[0] for row in engine.fetch(union)]


def model_change(engine: Engine, name: str, query: exp.Query, inputs: dict[Input, Change],
                 before: exp.Table) -> Change:
    """The change of a row-wise model that is not partitioned (a dimension): the model over its one
    changed input's added rows and over its removed rows. WHOLE when that cannot be told."""
    changed = [i for i, c in inputs.items() if c.changed]
    if not changed:
        return UNCHANGED
    if len(changed) > 1 or inputs[changed[0]].whole or not row_wise(query):
        return WHOLE
    positions = occurrences(query, set(changed))
    if len(positions) != 1:
        return WHOLE
    change = inputs[changed[0]]
    tables = []
    for side, label in ((change.added, "added"), (change.removed, "removed")):
        assert side is not None
        tables.append(f"{label}__{GOLD}__{name}")
        engine.create_table(tables[-1], substituted(query, {positions[0]: side}))
    return rows_change(engine, tables[0], tables[1], before)
