"""The check runner: attach the lake's tables as they stand (a batch's written versions, before it commits),
run every check through the engine, count its offending rows and keep a few of them as text."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from shoplake.contracts import ContractSet
from shoplake.engines import Engine
from shoplake.hooks import CheckResult
from shoplake.layers import gold, silver
from shoplake.layers.gold import HISTORY, Model
from shoplake.outcomes import FileOutcome
from shoplake.quality.checks import GOLD, SHOPLAKE, SILVER, Check

SAMPLES = 20  # offending rows kept per check
# shoplake.files: one row per file being audited (a batch's files; for `shoplake check` every loaded file).
FILE_COLUMNS = (("file", "VARCHAR"), ("feed", "VARCHAR"), ("rows_read", "BIGINT"), ("rows_loaded", "BIGINT"),
                ("rows_quarantined", "BIGINT"), ("rows_duplicate", "BIGINT"), ("max_quarantine_rate", "DOUBLE"))
FILES_TABLE = f"{SHOPLAKE}__files"
_STAGED = "quality__check"


@dataclass(frozen=True)
class AuditedFile:
    """A file's counts as the reconciliation and quarantine-rate checks read them."""

    file: str
    feed: str | None
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    max_quarantine_rate: float | None

    @classmethod
    def of(cls, f: FileOutcome) -> AuditedFile:
        return cls(f.file, f.feed, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate,
                   f.max_quarantine_rate)


@dataclass
class CheckRun:
    """What running the checks found: a result per check run, and why the others were not run."""

    results: list[CheckResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # check -> why (an input without data yet)

    @property
    def failed_errors(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed and r.severity == "error"]


def files_query(files: Iterable[AuditedFile]) -> exp.Select:
    """shoplake.files as a query: typed columns, one row per file (no rows: an empty typed table)."""
    rows = [(f.file, f.feed, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate,
             f.max_quarantine_rate) for f in files]
    typed = [exp.alias_(exp.cast(exp.column(f"c{i}"), kind), name, quoted=True)
             for i, (name, kind) in enumerate(FILE_COLUMNS)]
    if not rows:
        return exp.select(*(exp.alias_(exp.cast(exp.null(), kind), name, quoted=True)
                            for name, kind in FILE_COLUMNS)).where(exp.false())
    values = exp.values([tuple(exp.convert(v) for v in row) for row in rows], alias="f",
                        columns=[f"c{i}" for i in range(len(FILE_COLUMNS))])
    return exp.select(*typed).from_(values)


def attach(engine: Engine, lake: str, contracts: ContractSet, models: list[Model],
           parameters: dict[str, str | int | float], files: Iterable[AuditedFile]) -> set[tuple[str, str]]:
    """Expose what checks read; returns the (schema, table) pairs that exist (hold data)."""
    present: set[tuple[str, str]] = {(SHOPLAKE, "settings"), (SHOPLAKE, "files")}
    attached = silver.attach_silver(engine, contracts, lake)
    for feed in attached:
        present.add((SILVER, feed))
        present.add((SILVER, feed + HISTORY))
    for model in models:
        if engine.attach_delta(gold.gold_path(lake, model.name), GOLD, model.name):
            present.add((GOLD, model.name))
    engine.create_table(f"{SHOPLAKE}__settings", gold.settings_query(parameters))
    engine.create_view(SHOPLAKE, "settings", f"{SHOPLAKE}__settings")
    engine.create_table(FILES_TABLE, files_query(files))
    engine.create_view(SHOPLAKE, "files", FILES_TABLE)
    return present


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _message(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else 'no message'}"[:500]


def _counted(index: int, check: Check) -> exp.Select:
    return exp.select(exp.alias_(exp.convert(index), "check_index", quoted=True),
                      exp.alias_(exp.Count(this=exp.Star()), "failing_rows", quoted=True)).from_(
        check.query.copy().subquery("offending", copy=False), copy=False)


def count_rows(engine: Engine, checks: list[Check]) -> dict[int, int | str]:
    """Each check's offending rows (by its index), or the message of the error its SQL raised.

    Every count is one branch of a single query: one engine job for all the checks (on Spark a job per
    check costs seconds). A query that fails is retried check by check, so the others still count."""
    if not checks:
        return {}
    branches: list[exp.Query] = [_counted(i, c) for i, c in enumerate(checks)]
    # Built once from the fresh branches: a union folded pairwise copies the growing tree each time
    # (40 checks: a second of a small batch's audit).
    union = branches[0] if len(branches) == 1 else exp.union(*branches, distinct=False, copy=False)
    try:
        return {int(i): int(n) for i, n in engine.fetch(union)}
    except Exception:  # some check's SQL fails: each is counted alone below, so the others still count
        counts: dict[int, int | str] = {}
    for i, check in enumerate(checks):
        try:
            [(_, n)] = engine.fetch(_counted(i, check))
            counts[i] = int(n)
        except Exception as error:  # the engines' errors differ; each is this check's failure
            counts[i] = _message(error)
    return counts


def sample_rows(engine: Engine, check: Check) -> tuple[dict[str, Any], ...]:
    """Up to SAMPLES of a check's offending rows, values as text."""
    engine.define_view(_STAGED, check.query)
    try:
        columns = engine.columns(_STAGED)
        rows = engine.fetch(exp.select(exp.Star()).from_(exp.to_identifier(_STAGED, quoted=True)).limit(SAMPLES))
    finally:
        engine.drop(_STAGED)
    return tuple({c: _text(v) for c, v in zip(columns, row, strict=True)} for row in rows)


def judge(engine: Engine, checks: list[Check]) -> list[CheckResult]:
    """Each check's verdict; an error in its SQL (a column that is not there, a type error) is the check
    failing with that message, never an exception."""
    results = []
    for i, counted in sorted(count_rows(engine, checks).items()):
        check = checks[i]
        if isinstance(counted, str):
            results.append(CheckResult(name=check.name, severity=check.severity, passed=False, failing_rows=0,
                                       description=f"the check could not run: {counted}",
                                       samples=({"error": counted},)))
            continue
        try:
            samples = sample_rows(engine, check) if counted else ()
        except Exception as error:  # counted, but its rows cannot be shown (a type the engine cannot return)
            samples = ({"error": _message(error)},)
        results.append(CheckResult(name=check.name, severity=check.severity, passed=counted == 0,
                                   failing_rows=counted, description=check.description, samples=samples))
    return results


def run_check(engine: Engine, check: Check) -> CheckResult:
    """One check's verdict (see `judge`)."""
    [result] = judge(engine, [check])
    return result


def run_checks(engine: Engine, checks: list[Check], *, lake: str, contracts: ContractSet, models: list[Model],
               parameters: dict[str, str | int | float], files: Iterable[AuditedFile]) -> CheckRun:
    """Run every check whose inputs exist; a check reading a table without data yet (a feed no file has
    loaded, a model not built) is skipped and says why."""
    present = attach(engine, lake, contracts, models, parameters, files)
    run = CheckRun()
    runnable = []
    for check in checks:
        missing = sorted(f"{s}.{t}" for s, t in check.reads if (s, t) not in present)
        if missing:
            run.skipped[check.name] = f"{', '.join(missing)} has no data yet"
        else:
            runnable.append(check)
    run.results = judge(engine, runnable)
    return run
