"""Exactly once under SIGKILL: a run killed at any point, then restarted, leaves the same tables as one
uninterrupted run, and every file loaded once.

Each kill is real: `python -m shoplake run` in a subprocess with SHOPLAKE_CRASH_AT set kills itself
with SIGKILL at the named point (no cleanup runs); a second, plain run recovers and finishes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.landing.ledger import database_url
from shoplake.pipeline import run
from tests.engines.test_parity import TABLES, rows

pytestmark = pytest.mark.integration

# (point, nth pass in the process): two generated days, so batch 1 creates the tables and batch 2
# changes existing ones; the silver crash comes after some silver tables of batch 1 are committed.
KILLS = [
    ("after_bronze", 1),
    ("during_silver", 3),
    ("after_silver", 2),
    ("after_gold", 2),
    ("during_archive", 3),
]


def uninterrupted(days: Path, base: Path) -> Path:
    """The lake one uninterrupted run produces."""
    shutil.copytree(days, base / "landing")
    run(Settings(landing=base / "landing", lake=base / "lake", archive=base / "archive"))
    return base


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("crash") / "generated"
    generate(folder, days=2, scale=0.002, defect_rate=0.05, seed=23)
    return folder


@pytest.fixture(scope="module")
def baseline(days: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return uninterrupted(days, tmp_path_factory.mktemp("baseline"))


@pytest.fixture(scope="module")
def one_day(days: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("crash") / "one_day"
    folder.mkdir()
    for feed in ("customers", "products", "orders", "order_items"):  # a Spark run costs a few jobs per feed
        shutil.copy(days / f"{feed}_2026_01_05.csv", folder / f"{feed}_2026_01_05.csv")
    return folder


@pytest.fixture(scope="module")
def one_day_baseline(one_day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return uninterrupted(one_day, tmp_path_factory.mktemp("baseline"))


def shoplake(base: Path, engine: str, crash_at: str | None = None,
             state_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SHOPLAKE_CRASH_AT", "SHOPLAKE_STATE_URL")}
    if crash_at:
        env["SHOPLAKE_CRASH_AT"] = crash_at
    if state_url:
        env["SHOPLAKE_STATE_URL"] = state_url
    return subprocess.run(
        [sys.executable, "-m", "shoplake", "run", "--landing", str(base / "landing"), "--lake", str(base / "lake"),
         "--archive", str(base / "archive"), "--engine", engine],
        env=env, capture_output=True, text=True, timeout=900, check=False,
    )


def archived(base: Path) -> list[str]:
    """The archived data files (validation reports are named by batch ids, which differ from run to run)."""
    return sorted(p.relative_to(base / "archive").as_posix().split("/", 1)[0] + "/" + p.name
                  for p in (base / "archive").rglob("*") if p.is_file() and p.parent.name != "validation-reports")


def kill(days: Path, base: Path, engine: str, point: str, nth: int, state_url: str | None = None) -> None:
    shutil.copytree(days, base / "landing")
    killed = shoplake(base, engine, f"{point}@{nth}", state_url)
    assert killed.returncode == -signal.SIGKILL, f"expected a SIGKILL at {point}@{nth}:\n{killed.stderr[-3000:]}"


def kill_and_recover(days: Path, base: Path, engine: str, point: str, nth: int, state_url: str | None = None) -> None:
    kill(days, base, engine, point, nth, state_url)
    recovered = shoplake(base, engine, state_url=state_url)
    assert recovered.returncode in (0, 1), recovered.stderr[-3000:]
    assert "rolled back" in recovered.stdout or "finished archiving" in recovered.stdout, recovered.stdout


def assert_same_lake(base: Path, baseline: Path, state_url: str | None = None) -> None:
    for layer, name in TABLES:
        assert (base / "lake" / layer / name).exists() == (baseline / "lake" / layer / name).exists(), name
        if not (baseline / "lake" / layer / name).exists():
            continue
        got, want = rows(base / "lake" / layer / name), rows(baseline / "lake" / layer / name)
        assert got[0] == want[0], f"{layer}.{name}: columns differ"
        assert len(got[1]) == len(want[1]), f"{layer}.{name}: {len(got[1])} rows, uninterrupted run {len(want[1])}"
        assert got[1] == want[1], f"{layer}.{name}: rows differ"
    assert archived(base) == archived(baseline)
    assert not [p for p in (base / "landing").rglob("*") if p.is_file()], "every file left landing"
    engine = sa.create_engine(database_url(state_url or f"sqlite:///{base / 'lake' / '_state' / 'shoplake.db'}"))
    with engine.connect() as conn:
        final = conn.execute(sa.text(
            "SELECT relative, status FROM files WHERE status NOT IN ('waiting', 'queued', 'archiving')")).all()
        unfinished = conn.execute(sa.text(
            "SELECT count(*) FROM batches WHERE status IN ('running', 'committed')")).scalar()
    engine.dispose()
    assert unfinished == 0
    per_file = Counter(relative for relative, _ in final)
    assert set(per_file.values()) == {1}, f"a file was finished twice: {per_file.most_common(3)}"


# Every kill with the state store on SQLite (in the lake); the one whose recovery rolls back tables that
# were already committed (the ledger's noted versions, its table states) also on PostgreSQL (the suite's
# time budget keeps it to one).
STATE_KILLS = [(point, nth, "sqlite") for point, nth in KILLS] + [
    pytest.param("during_silver", 3, "postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize(("point", "nth", "state_url"), STATE_KILLS, indirect=["state_url"],
                         ids=[f"{p}@{n}" for p, n in KILLS] + ["during_silver@3-postgresql"])
def test_a_killed_duckdb_run_is_recovered_to_the_uninterrupted_result(
        days: Path, baseline: Path, tmp_path: Path, point: str, nth: int, state_url: str) -> None:
    store = None if state_url.startswith("sqlite") else state_url  # SQLite: the default store in the lake
    kill_and_recover(days, tmp_path, "duckdb", point, nth, store)
    assert_same_lake(tmp_path, baseline, store)


# One day of four feeds on Spark (a Spark run's time is mostly per-job overhead, not data): the kill
# leaves some silver tables committed, and the Spark session of the next run rolls them back. A kill
# during archiving is finished without the engine touching a table (the DuckDB kills cover it).
SPARK_KILLS = [("during_silver", 2, "rolled back")]


@pytest.mark.spark
@pytest.mark.parametrize(("point", "nth", "recovery"), SPARK_KILLS, ids=[f"{p}@{n}" for p, n, _ in SPARK_KILLS])
def test_a_killed_spark_run_is_recovered_to_the_uninterrupted_result(
        one_day: Path, one_day_baseline: Path, tmp_path: Path, point: str, nth: int, recovery: str) -> None:
    """The baseline is the DuckDB engine's: the parity tests prove both engines write the same tables.

    The killed run is a Spark process of its own; the recovering run is this process's, on the Spark
    session the other Spark tests share (a second JVM start per case would double the test's time, and
    the recovery reads only the lake and the state store the dead process left)."""
    kill(one_day, tmp_path, "spark", point, nth)
    report = run(Settings(landing=tmp_path / "landing", lake=tmp_path / "lake", archive=tmp_path / "archive",
                          engine="spark"))
    assert len(report.recovered) == 1 and recovery in report.recovered[0], report.recovered
    assert_same_lake(tmp_path, one_day_baseline)
