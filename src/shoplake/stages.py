"""A batch's stages: feed by feed its files read into bronze, checked, and its bronze, quarantine and
silver written, then gold built; `shoplake.transaction` runs them in order and decides what stays."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from shoplake.contracts import LoadMode
from shoplake.engines import WriteJob
from shoplake.errors import BatchFailed, FileRejected
from shoplake.faults import crash_point
from shoplake.intake import changed_since_hashed, count_mismatches, promised_counts, verify_counts
from shoplake.landing import ledger as L
from shoplake.layers import bronze, gold, scd2, silver, touched
from shoplake.layers.checks import checked_table, valid_table
from shoplake.layers.sql import col, lit
from shoplake.notify import FILE_FAILED, Event
from shoplake.outcomes import FileOutcome

if TYPE_CHECKING:
    from shoplake.session import Session
    from shoplake.transaction import Transaction


class Stages:
    """The stages of one batch; what one stage leaves for the next lives here."""

    def __init__(self, tx: Transaction, *, replay: str | None) -> None:
        self.tx = tx
        self.s = tx.s
        self.batch_id = tx.batch_id
        self.outcome = tx.outcome
        self.replay = replay
        self.replaces = {w.relative: w.replaces for w in tx.waiting if w.replaces}
        self.loaded: dict[str, list[exp.Select]] = {}  # feed -> bronze rows of each of its readable files
        self.drifted: dict[str, list[str]] = {}
        self.staged: dict[str, list[str]] = {}  # feed -> the engine's table of each of its files' rows
        self.pending: dict[str, list[L.Waiting]] = {}  # feed -> its data files, read just before its checks
        self.expected: dict[str, int | None] = {}  # rows the trigger files promise, by file
        self.ingested_at = L.now()
        self.files_read = 0
        self.recomputed: set[str] = set()  # SCD2 feeds whose replaced observations left their log
        self.order: list[str] = []
        self.in_silver: set[str] = set()
        self.results: dict[str, silver.FeedResult] = {}
        self.signatures: dict[str, str] = {}
        self.built: dict[str, int] = {}

    def step(self, what: str, done: int, total: int) -> None:
        if self.s.progress:
            self.s.progress(f"{self.outcome.business_date} {what}", done, total)

    def read(self) -> None:
        """1. The batch's data files, each with its outcome; their rows are read feed by feed in `check`."""
        s, tx = self.s, self.tx
        s.engine.clear()
        self.ingested_at = L.now()
        self.expected = promised_counts(s, tx.waiting)  # a trigger that lists a missing file fails here
        for w in tx.waiting:
            if w.feed is not None:
                f = FileOutcome(w.relative, w.feed, L.QUEUED)
                self.outcome.files.append(f)
                tx.by_relative[w.relative] = f
                self.pending.setdefault(w.feed, []).append(w)
        if self.replay:
            self.loaded[self.replay] = []
            bronze.define_quarantined(s.engine, s.contracts[self.replay], s.lake)

    def _read_feed(self, feed: str) -> None:
        """Bronze (staged) for one feed: read each of its files; an unreadable file fails alone. Read just
        before the feed's checks, so the batch stages one feed's text at a time."""
        s, engine, contract, report = self.s, self.s.engine, self.s.contracts[feed], self.s.report
        tx, loaded = self.tx, self.loaded
        for w in self.pending.get(feed, []):
            f = tx.by_relative[w.relative]
            try:
                path = s.landing.local_copy(w.relative, s.cache, reuse=True)
                if changed_since_hashed(s, w, tx.waiting, tx.by_relative):
                    continue
                with report.timed("read"):
                    layout = bronze.sniff(path, contract)
                    staged = f"csv__{feed}__{len(loaded.get(feed, []))}"
                    self.staged.setdefault(feed, []).append(staged)
                    f.rows_read, rows = bronze.load_file(
                        engine, contract, path, layout, source_file=w.relative, batch_id=self.batch_id,
                        ingested_at=self.ingested_at, staged=staged)
                if changed_since_hashed(s, w, tx.waiting, tx.by_relative):
                    continue
            except FileRejected as rejected:
                f.status, f.error = L.FAILED, f"{w.path}: {rejected.reason}"
                s.notifiers.send(Event(FILE_FAILED, f.error, batch_id=self.batch_id, file=w.path))
                continue
            except FileNotFoundError:
                f.status, f.error = L.FAILED, f"{w.path}: the file left the landing folder before it was read"
                continue
            loaded.setdefault(feed, []).append(rows)
            if layout.drifted and contract.schema_drift.value == "quarantine":
                self.drifted.setdefault(feed, []).append(w.relative)
            self.files_read += 1
            self.step(f"bronze {w.relative}", self.files_read, sum(len(ws) for ws in self.pending.values()))
        if feed in loaded and feed != self.replay:
            bronze.define_bronze(engine, feed, loaded[feed])

    def clear_replaced(self) -> None:
        """Reprocessing: the rows the earlier batch loaded from these files go first, so that the checks
        (SCD2 changes against silver above all) see silver without them."""
        cleared = self._replaced_tables()
        if cleared:
            self.tx.note_versions(cleared)
            with self.s.report.timed("write"):
                self._clear_replaced(cleared)

    def check(self) -> None:
        """2-3. Feed by feed, parents first: read, checked, then its bronze, quarantine and silver written and
        its staged rows freed, so the batch holds one feed's rows at a time (DuckDB spills what does not fit).

        Every table's version is noted before its first write. A `fail_batch` rule, or a file short of the
        rows its trigger file promises, stops the writing; the remaining feeds are still read and checked
        for a whole report, and the batch fails and is rolled back."""
        s, engine, contracts = self.s, self.s.engine, self.s.contracts
        self.in_silver = silver.attach_silver(engine, contracts, s.lake)
        candidates = contracts.load_order(set(self.pending) | set(self.loaded))
        results = self.results
        self.tx.note_versions([gold.gold_path(s.lake, m.name) for m in s.models])
        fatal: dict[str, int] = {}
        short = False
        for i, feed in enumerate(candidates):
            self._read_feed(feed)
            short = short or bool(count_mismatches([self.tx.by_relative[w.relative] for w in self.pending.get(feed, [])
                                                    if w.relative in self.tx.by_relative], self.expected))
            if feed not in self.loaded:  # none of its files could be read
                continue
            self.order.append(feed)
            with s.report.timed("check"):
                referenced = any(parent == feed for child in candidates for _, parent, _ in contracts[child].references)
                results[feed] = silver.check_feed(engine, contracts[feed], contracts, in_silver=self.in_silver,
                                                  checked_feeds=set(results),
                                                  drifted_files=self.drifted.get(feed, []), referenced=referenced)
            result = results[feed]
            self.outcome.rule_failures[feed] = result.rule_failures
            s.ledger.record_rules(self.batch_id, feed, result.rule_failures,
                                  {rule: severity.value for rule, severity in result.severities.items()})
            fatal.update({f"{feed}.{rule}": n for rule, n in result.fatal.items()})
            if not fatal and not short:
                self._write_feed(feed)
            self._free(feed)
            self.step(f"check {feed}", i + 1, len(candidates))
        verify_counts(self.outcome.files, self.expected)
        if fatal:
            raise BatchFailed("fail_batch rule(s) failed: " + ", ".join(f"{r} ({n} rows)" for r, n in fatal.items()),
                              hint="fix the data or the contract, then `shoplake reprocess --failed`")
        crash_point("after_silver")
        # What the checks left for later feeds (their parents' keys) is not needed by gold.
        engine.clear()

    def _write_feed(self, feed: str) -> None:
        """Stage and write one checked feed: bronze, quarantine and silver, side by side."""
        s, engine = self.s, self.s.engine
        jobs = silver.stage_writes(
            engine, s.contracts[feed], s.lake, in_silver=feed in self.in_silver, bronze=not self.replay,
            quarantine_mode="overwrite" if feed == self.replay else "append", replaced=feed in self.recomputed)
        self.tx.note_versions([j.path for j in jobs])

        def written(job: WriteJob) -> None:
            crash_point("after_bronze" if "/bronze/" in job.path else "during_silver")

        with s.report.timed("write"):
            engine.write(jobs, tag=self.batch_id, on_written=written)

    def _free(self, feed: str) -> None:
        """A checked (and written) feed's staged rows go; only the keys its children check against stay."""
        engine = self.s.engine
        for name in (valid_table(feed), bronze.bronze_table(feed), *self.staged.get(feed, []), checked_table(feed),
                     silver.quarantined_table(feed), *scd2.staged_tables(feed)):
            engine.drop(name)

    def count_files(self) -> None:
        """3. Each file's counts from its feed's checks (its rows were written feed by feed in `check`)."""
        s, order = self.s, self.order
        for feed in order:
            for name, counts in self.results[feed].files.items():
                if feed == self.replay:  # rows from the quarantine, by the file they first came in
                    self.outcome.files.append(FileOutcome(
                        name, feed, L.LOADED, rows_read=counts.duplicates + counts.quarantined + counts.loaded))
                f = self.tx.by_relative.get(name) or self.outcome.files[-1]
                f.rows_duplicate, f.rows_quarantined = counts.duplicates, counts.quarantined
                f.rows_loaded = counts.loaded
                if feed != self.replay:  # replayed rows all come from the quarantine: no rate to judge
                    f.max_quarantine_rate = s.contracts[feed].max_quarantine_rate

    def gold(self) -> None:
        """4. Gold: the models computed from silver as this batch left it (its versions were noted with silver's)."""
        s, engine, contracts = self.s, self.s.engine, self.s.contracts
        self.step("gold", len(self.order), len(self.order))
        # A load batch tells gold what it wrote, so that gold computes only what that touched. A reprocess
        # (rows deleted) or a replay (rows loaded with their first batch's lineage) computes every model.
        changes = None if self.replaces or self.replay else touched.batch_changes(
            contracts, s.lake, self.batch_id, s.ledger.table_versions(self.batch_id))
        available = silver.attach_silver(engine, contracts, s.lake)
        # A model edited, or settings changed, since it was last computed is computed whole. Its signature
        # is forgotten until this batch commits, so a batch that fails leaves it to be computed whole again.
        parameters = s.settings.model_parameters()
        self.signatures = {m.name: gold.signature(m, parameters) for m in s.models}
        known = s.ledger.model_signatures()
        stale = frozenset(name for name, signature in self.signatures.items() if known.get(name) != signature)
        s.ledger.set_model_signatures(dict.fromkeys(stale & set(known)))
        with s.report.timed("gold"):
            built = gold.run_models(engine, s.models, s.lake, available, tag=self.batch_id,
                                    parameters=parameters, changes=changes, stale=stale)
        s.report.gold, s.report.gold_skipped = built.built, built.skipped
        self.built = built.built
        crash_point("after_gold")

    def committed(self) -> None:
        """Once the batch is committed, the models it computed are known to be computed from their signatures."""
        self.s.ledger.set_model_signatures({name: self.signatures[name] for name in self.built})

    def _replaced_tables(self) -> list[str]:
        feeds = {w.feed for w in self.tx.waiting if w.replaces and w.feed}
        layers = ("bronze", "quarantine", "silver")
        # SCD2 history is never cut: its observations leave the log instead, and the keys are recomputed.
        return [scd2.observations_path(self.s.lake, feed)
                if layer == "silver" and self.s.contracts[feed].load.mode is LoadMode.SCD2
                else f"{self.s.lake}/{layer}/{feed}" for feed in sorted(feeds) for layer in layers]

    def _clear_replaced(self, paths: list[str]) -> None:
        """Delete what the earlier batch loaded from the files being reprocessed."""
        by_batch: dict[str, list[str]] = {}
        for relative, batch in self.replaces.items():
            by_batch.setdefault(batch, []).append(relative)
        for path in paths:
            feed = path.rsplit("/", 1)[-1]
            conditions: list[exp.Expr] = []
            for batch, relatives in by_batch.items():
                mine = [r for r in relatives if any(w.relative == r and w.feed == feed for w in self.tx.waiting)]
                if mine:
                    where = exp.and_(exp.EQ(this=col("_batch_id"), expression=lit(batch)),
                                     exp.In(this=col("_source_file"), expressions=[lit(r) for r in mine]))
                    conditions.append(where)
            if path == scd2.observations_path(self.s.lake, feed):
                if conditions:
                    scd2.forget_observations(self.s.engine, self.s.contracts[feed], self.s.lake,
                                             exp.or_(*conditions), tag=self.batch_id)
                    self.recomputed.add(feed)
                continue
            for condition in conditions:
                self.s.engine.delete_rows(path, condition, tag=self.batch_id)


def gold_exists(session: Session) -> bool:
    """Whether the first model's table exists (a run with nothing to load still builds gold once)."""
    first = gold.gold_path(session.lake, session.models[0].name) if session.models else None
    return first is not None and session.engine.table_version(first) is not None


def build_gold(session: Session, tag: str | None, *, full: bool = False) -> dict[str, int]:
    """Build the models; a partitioned one rewrites only its changed partitions unless `full`."""
    s = session
    available = silver.attach_silver(s.engine, s.contracts, s.lake)
    with s.report.timed("gold"):
        built = gold.run_models(s.engine, s.models, s.lake, available, tag=tag,
                                parameters=s.settings.model_parameters(), full=full)
    s.report.gold, s.report.gold_skipped = built.built, built.skipped
    if tag is None:  # gold built outside a batch: its versions are recorded here
        s.record_tables([gold.gold_path(s.lake, m) for m in s.report.gold], None)
    return s.report.gold
