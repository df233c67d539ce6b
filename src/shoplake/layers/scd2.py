"""SCD2 history from observations: every valid row of a historised feed is an observation of its key, and
a key's versions are the runs of its observations with equal tracked columns, in sequence order.

The reference semantics (README "SCD2 history"): observations of a key are ordered by the sequence value
(`silver.sequence_value`), then source file and row number. At one sequence value the key has one state,
its last observation there (the others are superseded: a period of no length is no version). A version
is a maximal run of consecutive observations with equal tracked columns (NULL-safe); it is valid from its
first observation's sequence value to the next version's (or the delete that closes it); `_version`
counts 1, 2, ... per key. Untracked columns hold the run's last observation (`untracked: update`) or its
first (`ignore`); lineage columns name the first observation of the version's opening values. A delete
marker (`deletes:`) closes the version valid at its time and opens nothing.

Every observation is also appended to an observation log (`<lake>/silver/_observations/<feed>`, written
by the same batch), so a late or out-of-order observation can be put at its place in history. A key whose
incoming observations are all newer than everything known of it (its newest version's `_last_seen`) is
extended from that version alone (the fast path); any other key is recomputed from its logged
observations plus the incoming ones (the late path). Both end in one MERGE on (key, `_valid_from`):
rows that changed are upserted, stored versions that vanished are deleted.
"""

from __future__ import annotations

from sqlglot import exp

from shoplake.contracts import ColumnType, Contract, Untracked
from shoplake.contracts.expressions import parse_boolean
from shoplake.contracts.model import SQL_TYPES
from shoplake.engines import Engine, MergeSpec, WriteJob
from shoplake.engines.base import CURRENT_FLAG, DELETE_FLAG, LAST_SEEN, VALID_FROM, VALID_TO, VERSION
from shoplake.layers.checks import FILE_STATS, LINEAGE, stat_keys, valid_table
from shoplake.layers.sql import alias, and_all, cast, col, lit, select, table

LOG_SCHEMA = "silver_log"  # the observation log of a feed is attached as silver_log.<feed>
SEQUENCE = "_sequence"  # an observation's place in its key's history (silver.sequence_value)
DELETED = "_deleted"  # whether an observation is a delete marker
SEEN = "_seen"  # the newest sequence value an observation (or a stored version standing in) accounts for
PERIOD = (VERSION, LAST_SEEN, VALID_FROM, VALID_TO, CURRENT_FLAG)
# Ties of one key at one sequence value are broken by these (the last one is the state at that instant).
ORDER = ("_source_file", "_row_number", "_ingested_at", "_batch_id")


def observations_path(lake: str, feed: str) -> str:
    return f"{lake}/silver/_observations/{feed}"


def replaced_table(feed: str) -> str:
    return f"scd2_replaced__{feed}"


def _observed_table(feed: str) -> str:
    return f"scd2_observed__{feed}"


def _changes_table(feed: str) -> str:
    return f"scd2__{feed}"


def staged_tables(feed: str) -> tuple[str, ...]:
    """What staging a feed's SCD2 writes leaves in the engine, to drop once they are written."""
    return (_changes_table(feed), _observed_table(feed), replaced_table(feed))


def data_columns(contract: Contract) -> list[str]:
    return [*contract.column_names, *contract.derived]


def tracked_columns(contract: Contract) -> list[str]:
    keys, seq = contract.primary_key, contract.load.sequence
    return list(contract.load.tracked) or [c for c in data_columns(contract) if c not in keys and c != seq]


def _key_types(contract: Contract) -> dict[str, str]:
    return {k: SQL_TYPES[contract.type_of(k) or ColumnType.STRING] for k in contract.primary_key}


def forget_observations(engine: Engine, contract: Contract, lake: str, where: exp.Expr, *, tag: str) -> None:
    """Reprocessing: the observations the replaced files made leave the log, and their keys are noted
    (`replaced_table`) so that `stage` recomputes their whole history without them."""
    path, feed = observations_path(lake, contract.feed), contract.feed
    keys = [col(k) for k in contract.primary_key]
    if engine.attach_delta(path, LOG_SCHEMA, feed):
        engine.create_table(replaced_table(feed), select(*keys).from_(table(feed, LOG_SCHEMA)).where(where).distinct())
        engine.delete_rows(path, where, tag=tag)
    else:
        engine.create_table(replaced_table(feed), select(
            *[alias(cast(exp.null(), t), k) for k, t in _key_types(contract).items()]).where(exp.false()))


def stage(engine: Engine, contract: Contract, lake: str, silver_path: str, *, history: exp.Table | None,
          sequence: exp.Expr, replaced: bool) -> list[WriteJob]:
    """Stage a batch's SCD2 writes: the changed versions into silver (one MERGE), the batch's
    observations onto the log. `history`: every stored version (None: no silver table yet); `sequence`:
    a row's sequence value; `replaced`: `forget_observations` ran for this feed in this batch."""
    feed = contract.feed
    deleted: exp.Expr = exp.false()
    if contract.load.deletes:
        deleted = exp.Coalesce(this=exp.paren(parse_boolean(contract.load.deletes)), expressions=[exp.false()])
    observed = _observed_table(feed)
    engine.create_table(observed, select(
        *[col(c) for c in (*data_columns(contract), *LINEAGE)],
        alias(sequence, SEQUENCE), alias(deleted, DELETED)).from_(table(valid_table(feed))))
    log_path = observations_path(lake, feed)
    logged = engine.attach_delta(log_path, LOG_SCHEMA, feed)
    log_columns = set(engine.table_columns(log_path)) if logged else set()
    plan = _Plan(contract, observed, stored=history,
                 log=table(feed, LOG_SCHEMA) if logged else None, log_columns=log_columns,
                 replaced=table(replaced_table(feed)) if replaced else None)
    changes = _changes_table(feed)
    engine.create_table(changes, plan.query())
    keys = stat_keys(contract)  # file statistics: the keys, the period's start, the rows' files
    return [
        WriteJob(changes, silver_path, "merge", MergeSpec(mode="scd2", keys=contract.primary_key),
                 stats=(*keys, VALID_FROM, *FILE_STATS)),
        WriteJob(observed, log_path, "append", stats=(*keys, *FILE_STATS)),
    ]


def _same(names: list[str], left: str, right: str) -> exp.Expr:
    return and_all(exp.NullSafeEQ(this=col(n, left), expression=col(n, right)) for n in names)


def _after(left: str, right: str) -> exp.Expr:
    """Whether observation `left` comes after `right` among observations at one sequence value."""
    later: exp.Expr = exp.false()
    for name in reversed(ORDER):
        later = exp.or_(exp.GT(this=col(name, left), expression=col(name, right)),
                        exp.and_(exp.EQ(this=col(name, left), expression=col(name, right)), exp.paren(later)))
    return exp.paren(later)


def _window(this: exp.Expr, partition: list[str], order: list[tuple[str, bool]] | None = None,
            frame: bool = False) -> exp.Window:
    spec = None
    if frame:
        spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
    return exp.Window(this=this, partition_by=[col(p) for p in partition], spec=spec, order=exp.Order(
        expressions=[exp.Ordered(this=col(n), desc=desc) for n, desc in order]) if order else None)


def _flag(condition: exp.Expr) -> exp.Expr:
    return exp.Case(ifs=[exp.If(this=condition, true=lit(1))], default=lit(0))


class _Plan:
    """The query of a batch's SCD2 changes for one feed, built CTE by CTE (names below)."""

    def __init__(self, contract: Contract, observed: str, *, stored: exp.Table | None, log: exp.Table | None,
                 log_columns: set[str], replaced: exp.Table | None) -> None:
        self.contract = contract
        self.observed = observed
        self.stored = stored
        self.log = log
        self.log_columns = log_columns
        self.replaced = replaced
        self.keys = list(contract.primary_key)
        self.data = data_columns(contract)
        self.tracked = tracked_columns(contract)
        self.untracked = [c for c in self.data if c not in self.keys and c not in self.tracked]
        self.ctes: list[tuple[str, exp.Query]] = []

    def cte(self, name: str, query: exp.Query) -> str:
        self.ctes.append((name, query))
        return name

    def on_keys(self, left: str, right: str, *extra: str) -> exp.Expr:
        return and_all(exp.EQ(this=col(k, left), expression=col(k, right)) for k in (*self.keys, *extra))

    def observation(self, source: str, seq: str, deleted: exp.Expr, seen: str) -> exp.Select:
        """One branch of the observations: data, lineage, sequence, delete flag, seen."""
        return select(*[col(c, source) for c in (*self.data, *LINEAGE)], alias(col(seq, source), SEQUENCE),
                      alias(deleted, DELETED), alias(col(seen, source), SEEN))

    def query(self) -> exp.Query:
        k, stored = self.keys, self.stored is not None
        incoming = self.cte("incoming", select("*").from_(table(self.observed)))
        touched_parts: list[exp.Query] = [select(*[col(c) for c in k]).from_(incoming)]
        if self.replaced is not None:
            touched_parts.append(select(*[col(c) for c in k]).from_(self.replaced.copy()))
        touched = self.cte("touched", _union(touched_parts, distinct=True))
        if stored:
            assert self.stored is not None
            self.cte("stored", select(*[col(c, "h") for c in (*self.data, *LINEAGE, *PERIOD)]).from_(
                exp.alias_(self.stored.copy(), "h")).join(
                exp.alias_(exp.to_identifier(touched), "t"), on=self.on_keys("h", "t"), join_type="semi"))
            ranked = select("*", alias(_window(exp.RowNumber(), k, [(VALID_FROM, True)]), "_nth")).from_("stored")
            self.cte("newest", select(*[col(c) for c in (*self.data, *LINEAGE, *PERIOD)]).from_(
                exp.alias_(ranked.subquery(), "r")).where(exp.EQ(this=col("_nth"), expression=lit(1))))
        # Each incoming observation: newer than all known of its key, a repeat of its newest version that
        # changes nothing (a full snapshot sends every unchanged row again), or late.
        i, n = "i", "n"
        if stored:
            newer = exp.or_(col(k[0], n).is_(exp.null()), exp.GT(this=col(SEQUENCE, i), expression=col(LAST_SEEN, n)))
            repeat = exp.and_(
                exp.EQ(this=col(SEQUENCE, i), expression=col(LAST_SEEN, n)), exp.Not(this=col(DELETED, i)),
                col(VALID_TO, n).is_(exp.null()), _same(self.data, i, n),
                exp.paren(exp.or_(exp.LT(this=col(VALID_FROM, n), expression=col(SEQUENCE, i)), _after(i, n))))
            classified = select(*[col(c, i) for c in k], alias(_flag(newer), "_newer"),
                                alias(_flag(exp.Not(this=exp.or_(newer.copy(), repeat))), "_late")).from_(
                exp.alias_(exp.to_identifier(incoming), i)).join(
                exp.alias_(exp.to_identifier("newest"), n), on=self.on_keys(i, n), join_type="left")
        else:
            classified = select(*[col(c) for c in k], alias(lit(1), "_newer"), alias(lit(0), "_late")).from_(incoming)
        per_key: list[exp.Query] = [classified]
        if self.replaced is not None:
            per_key.append(select(*[col(c) for c in k], alias(lit(0), "_newer"), alias(lit(1), "_late")).from_(
                self.replaced.copy()))
        if self.log is not None and self.contract.load.deletes:
            # A key whose only observations were deletes has no version to tell what is known of it.
            deletes = select(*[col(c, "l") for c in k], alias(lit(0), "_newer"), alias(lit(1), "_late")).from_(
                exp.alias_(self.log.copy(), "l")).join(
                exp.alias_(exp.to_identifier(touched), "t"), on=self.on_keys("l", "t"), join_type="semi").where(
                col(DELETED, "l"))
            if stored:
                deletes = deletes.join(exp.alias_(exp.to_identifier("newest"), n), on=self.on_keys("l", n),
                                       join_type="anti")
            per_key.append(deletes)
        self.cte("paths", select(*[col(c) for c in k], alias(exp.Max(this=col("_newer")), "_newer"),
                                 alias(exp.Max(this=col("_late")), "_late")).from_(
            exp.alias_(_union(per_key).subquery(), "c")).group_by(*[col(c) for c in k]))
        late = exp.EQ(this=col("_late", "p"), expression=lit(1))
        fast = exp.and_(exp.EQ(this=col("_late", "p"), expression=lit(0)),
                        exp.EQ(this=col("_newer", "p"), expression=lit(1)))

        def of_paths(source: exp.Select, alias_: str, condition: exp.Expr) -> exp.Select:
            return source.join(exp.alias_(exp.to_identifier("paths"), "p"), on=self.on_keys(alias_, "p")).where(
                condition)

        branches: list[exp.Query] = [
            of_paths(self.observation(i, SEQUENCE, col(DELETED, i), SEQUENCE).from_(
                exp.alias_(exp.to_identifier(incoming), i)), i, late.copy()),
        ]
        fast_incoming = self.observation(i, SEQUENCE, col(DELETED, i), SEQUENCE).from_(
            exp.alias_(exp.to_identifier(incoming), i))
        if stored:
            fast_incoming = fast_incoming.join(exp.alias_(exp.to_identifier("newest"), n), on=self.on_keys(i, n),
                                               join_type="left").where(exp.or_(
                col(k[0], n).is_(exp.null()), exp.GT(this=col(SEQUENCE, i), expression=col(LAST_SEEN, n))))
        branches.append(of_paths(fast_incoming, i, fast.copy()))
        if self.log is not None:
            log = select(*[col(c) if c in self.log_columns else alias(cast(exp.null(), self._type(c)), c)
                           for c in (*self.data, *LINEAGE, SEQUENCE, DELETED)]).from_(self.log.copy())
            branches.append(of_paths(self.observation("l", SEQUENCE, col(DELETED, "l"), SEQUENCE).from_(
                exp.alias_(log.subquery(), "l")), "l", late.copy()))
        if stored:
            # The fast path starts from the key's newest version, standing in for the observations it holds;
            # a closed one is followed by the delete that closed it.
            branches.append(of_paths(self.observation(n, VALID_FROM, exp.false(), LAST_SEEN).from_(
                exp.alias_(exp.to_identifier("newest"), n)), n, fast.copy()))
            branches.append(of_paths(self.observation(n, VALID_TO, exp.true(), VALID_TO).from_(
                exp.alias_(exp.to_identifier("newest"), n)), n, exp.and_(fast.copy(), col(VALID_TO, n).is_(
                    exp.null()).not_())))
        self.cte("observations", _union(branches))
        return self._versions()

    def _type(self, name: str) -> str:
        if name in self.data:
            return SQL_TYPES[self.contract.type_of(name) or ColumnType.STRING]
        return {SEQUENCE: "TIMESTAMP", DELETED: "BOOLEAN", "_ingested_at": "TIMESTAMP", "_row_number": "BIGINT"
                }.get(name, "VARCHAR")

    def _versions(self) -> exp.Query:
        k = self.keys
        at_instant = [*k, SEQUENCE]
        order_desc = [(c, True) for c in ORDER]
        # One state per instant: its last observation; its lineage is the first observation of that state.
        same_state = [*at_instant, DELETED, *[c for c in self.data if c not in k]]
        lineage = [alias(_window(exp.FirstValue(this=col(c)), same_state, [(o, False) for o in ORDER]), c)
                   for c in LINEAGE]
        # A key observed once (a first load, a new key) is one version, or none if the observation is a
        # delete: it skips the windows below, which sort every observation (most of a first load's cost).
        self.cte("counted", select(*[col(c) for c in k], alias(exp.Count(this=exp.Star()), "_n")).from_(
            "observations").group_by(*[col(c) for c in k]))
        o, c = "o", "c"
        once = exp.EQ(this=col("_n", c), expression=lit(1))
        self.cte("singles", select(f"{o}.*").from_(exp.alias_(exp.to_identifier("observations"), o)).join(
            exp.alias_(exp.to_identifier("counted"), c), on=self.on_keys(o, c)).where(
            exp.and_(once, exp.Not(this=col(DELETED, o)))))
        self.cte("repeated", select(f"{o}.*").from_(exp.alias_(exp.to_identifier("observations"), o)).join(
            exp.alias_(exp.to_identifier("counted"), c), on=self.on_keys(o, c)).where(
            exp.GT(this=col("_n", c), expression=lit(1))))
        instants = select(*[col(c) for c in (*self.data, SEQUENCE, DELETED, SEEN)], *lineage,
                          alias(_window(exp.RowNumber(), at_instant, order_desc), "_last")).from_("repeated")
        self.cte("reduced", select("*").from_(exp.alias_(instants.subquery(), "o")).where(
            exp.EQ(this=col("_last"), expression=lit(1))))
        by_time = [(SEQUENCE, False)]
        unchanged = and_all(exp.NullSafeEQ(this=col(t), expression=_window(exp.Lag(this=col(t)), k, by_time))
                            for t in self.tracked)
        opens = exp.and_(exp.Not(this=col(DELETED)), exp.paren(exp.or_(
            exp.EQ(this=_window(exp.RowNumber(), k, by_time), expression=lit(1)),
            exp.EQ(this=_window(exp.Lag(this=col(DELETED)), k, by_time), expression=exp.true()),
            exp.Not(this=exp.paren(unchanged)))))
        self.cte("marked", select("*", alias(opens, "_opens")).from_("reduced"))
        self.cte("grouped", select("*", alias(cast(_window(exp.Sum(this=_flag(col("_opens"))), k, by_time, frame=True),
                                                   "BIGINT"), "_vid")).from_("marked"))
        self.cte("spans", select(*[col(c) for c in k], col("_vid"), alias(exp.Max(this=col(SEEN)), LAST_SEEN),
                                 alias(exp.Min(this=exp.Case(ifs=[exp.If(this=col(DELETED), true=col(SEQUENCE))])),
                                       "_closed_at")).from_("grouped").where(
            exp.GT(this=col("_vid"), expression=lit(0))).group_by(*[col(c) for c in (*k, "_vid")]))
        update = self.contract.load.untracked is Untracked.UPDATE and self.untracked
        if update:
            rows = select("*", alias(_window(exp.RowNumber(), [*k, "_vid"], [(SEQUENCE, True)]), "_nth")).from_(
                "grouped").where(exp.Not(this=col(DELETED)))
            self.cte("lasts", select(*[col(c) for c in (*k, "_vid", *self.untracked)]).from_(
                exp.alias_(rows.subquery(), "r")).where(exp.EQ(this=col("_nth"), expression=lit(1))))
        self.cte("bases", self._bases())
        o = "o"
        data = [col(c, "l") if update and c in self.untracked else col(c, o) for c in self.data]
        versions = select(
            *data, *[col(c, o) for c in LINEAGE],
            alias(exp.Add(this=col("_base", "b"), expression=col("_vid", o)), VERSION),
            col(LAST_SEEN, "s"), alias(col(SEQUENCE, o), VALID_FROM), col("_closed_at", "s"), col("_vid", o),
        ).from_(exp.alias_(exp.to_identifier("grouped"), o)).join(
            exp.alias_(exp.to_identifier("spans"), "s"), on=self.on_keys(o, "s", "_vid")).join(
            exp.alias_(exp.to_identifier("bases"), "b"), on=self.on_keys(o, "b")).where(col("_opens", o))
        if update:
            versions = versions.join(exp.alias_(exp.to_identifier("lasts"), "l"), on=self.on_keys(o, "l", "_vid"))
        self.cte("versions", versions)
        # A version ends where the delete that closes it is, else where the next one starts.
        ends = exp.Coalesce(this=col("_closed_at"), expressions=[
            _window(exp.Lead(this=col(VALID_FROM)), k, [("_vid", False)])])
        every = [*self.data, *LINEAGE, *PERIOD]
        single = select(*[col(c, o) for c in (*self.data, *LINEAGE)],
                        alias(cast(exp.Add(this=col("_base", "b"), expression=lit(1)), "BIGINT"), VERSION),
                        alias(col(SEEN, o), LAST_SEEN), alias(col(SEQUENCE, o), VALID_FROM),
                        alias(exp.null(), VALID_TO), alias(exp.true(), CURRENT_FLAG)).from_(
            exp.alias_(exp.to_identifier("singles"), o)).join(
            exp.alias_(exp.to_identifier("bases"), "b"), on=self.on_keys(o, "b"))
        windowed = select(*[col(c) for c in every[:-2]], alias(ends, VALID_TO),
                          alias(ends.copy().is_(exp.null()), CURRENT_FLAG)).from_("versions")
        self.cte("computed", _union([windowed, single]))
        query = self._changes(every)
        for name, cte in self.ctes:
            query = query.with_(name, as_=cte, copy=False)  # fresh trees: a copy per CTE is quadratic
        return query

    def _bases(self) -> exp.Select:
        """Per key, the version number its first recomputed version follows (the fast path continues the
        newest version's numbering; the late path numbers from 1)."""
        k = self.keys
        if self.stored is None:
            return select(*[col(c) for c in k], alias(cast(lit(0), "BIGINT"), "_base")).from_("paths")
        base = exp.Case(ifs=[exp.If(this=exp.or_(exp.EQ(this=col("_late", "p"), expression=lit(1)),
                                                 col(k[0], "n").is_(exp.null())), true=lit(0))],
                        default=exp.Sub(this=col(VERSION, "n"), expression=lit(1)))
        return select(*[col(c, "p") for c in k], alias(cast(base, "BIGINT"), "_base")).from_(
            exp.alias_(exp.to_identifier("paths"), "p")).join(
            exp.alias_(exp.to_identifier("newest"), "n"), on=self.on_keys("p", "n"), join_type="left")

    def _changes(self, every: list[str]) -> exp.Query:
        """The merge's source: computed versions that differ from what is stored (upserts) and stored
        versions of recomputed keys that are no longer there (deletes)."""
        upsert = alias(exp.false(), DELETE_FLAG)
        if self.stored is None:
            return select(*[col(c) for c in every], upsert).from_("computed")
        k = self.keys
        late = exp.EQ(this=col("_late", "p"), expression=lit(1))
        fast = exp.and_(exp.EQ(this=col("_late", "p"), expression=lit(0)),
                        exp.EQ(this=col("_newer", "p"), expression=lit(1)))
        everything = select(*[col(c, "s") for c in every]).from_(exp.alias_(exp.to_identifier("stored"), "s")).join(
            exp.alias_(exp.to_identifier("paths"), "p"), on=self.on_keys("s", "p")).where(late)
        newest = select(*[col(c, "s") for c in every]).from_(exp.alias_(exp.to_identifier("newest"), "s")).join(
            exp.alias_(exp.to_identifier("paths"), "p"), on=self.on_keys("s", "p")).where(fast)
        self.cte("affected", _union([everything, newest]))
        c, a = "c", "a"
        upserts = select(*[col(n, c) for n in every], upsert).from_(exp.alias_(exp.to_identifier("computed"), c)).join(
            exp.alias_(exp.to_identifier("affected"), a), on=self.on_keys(c, a, VALID_FROM), join_type="left").where(
            exp.or_(col(k[0], a).is_(exp.null()), exp.Not(this=exp.paren(_same(every, c, a)))))
        deletes = select(*[col(n, a) for n in every], alias(exp.true(), DELETE_FLAG)).from_(
            exp.alias_(exp.to_identifier("affected"), a)).join(
            exp.alias_(exp.to_identifier("computed"), c), on=self.on_keys(a, c, VALID_FROM), join_type="anti")
        return _union([upserts, deletes])


def _union(parts: list[exp.Query], *, distinct: bool = False) -> exp.Query:
    return parts[0] if len(parts) == 1 else exp.union(*parts, distinct=distinct, copy=False)  # fresh parts
