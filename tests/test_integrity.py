"""Exactly once when a process stalls, a file changes under it, or the state store and the tables disagree.

The stall tests are real: `python -m shoplake run` in a subprocess stops itself with SIGSTOP at a named
point (every thread freezes, the heartbeat too), its lease runs out, a second process takes the lake,
and the first is resumed with SIGCONT.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.engines.base import APP_ID
from shoplake.errors import LakeStateMismatch
from shoplake.generate import generate
from shoplake.pipeline import Session, run
from tests.test_crash import assert_same_lake, uninterrupted

pytestmark = pytest.mark.integration

LEASE = 5  # the shortest lease shoplake accepts


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stall") / "generated"
    generate(folder, days=1, scale=0.002, defect_rate=0.05, seed=31)
    return folder


@pytest.fixture(scope="module")
def baseline(day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return uninterrupted(day, tmp_path_factory.mktemp("baseline"))


def start(base: Path, stop_at: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLAKE_")}
    env["SHOPLAKE_LEASE_SECONDS"] = str(LEASE)
    if stop_at:
        env["SHOPLAKE_STOP_AT"] = stop_at
        # One writer thread: a second one frozen inside a state-store transaction would hold SQLite's
        # write lock and block the next process for reasons unrelated to the lease.
        env["SHOPLAKE_THREADS"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "shoplake", "run", "--landing", str(base / "landing"), "--lake", str(base / "lake"),
         "--archive", str(base / "archive")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_stopped(process: subprocess.Popen[str], timeout: float = 120) -> None:
    """Until the process has stopped itself (state T in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"it ended instead of stopping (exit {process.returncode}):\n{(out + err)[-3000:]}")
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the process never reached its stop point")


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


@pytest.mark.parametrize("stop_at", ["after_bronze", "fenced@3"])
def test_a_stalled_run_resumed_after_another_took_the_lake_writes_nothing(
        day: Path, baseline: Path, tmp_path: Path, stop_at: str) -> None:
    """A stalls (after its bronze commit, or holding a fence about to commit to silver) past its lease;
    B takes the lake, rolls A's batch back and loads the day; A resumes and must not write on top."""
    shutil.copytree(day, tmp_path / "landing")
    a = start(tmp_path, stop_at)
    wait_stopped(a)
    time.sleep(LEASE + 1)
    b = start(tmp_path)
    code, out, err = finish(b)
    assert code == 0, (out + err)[-3000:]
    assert "rolled back" in out
    os.kill(a.pid, signal.SIGCONT)
    code, out, err = finish(a)
    assert code == 1, (out + err)[-3000:]
    assert "lost the lake's lease" in out + err
    assert "Traceback" not in err
    assert_same_lake(tmp_path, baseline)


def test_a_stalled_run_resumed_while_another_holds_the_lake_rolls_nothing_back(
        day: Path, baseline: Path, tmp_path: Path) -> None:
    """A stalls; B takes the lake and stalls itself after writing silver; A resumes (it used to roll
    back to its own noted versions, erasing B's writes); then B resumes and finishes."""
    shutil.copytree(day, tmp_path / "landing")
    a = start(tmp_path, "after_bronze")
    wait_stopped(a)
    time.sleep(LEASE + 1)
    b = start(tmp_path, "after_silver")
    wait_stopped(b)
    os.kill(a.pid, signal.SIGCONT)
    code, out, err = finish(a)
    assert code == 1, (out + err)[-3000:]
    assert "lost the lake's lease" in out + err
    os.kill(b.pid, signal.SIGCONT)
    code, out, err = finish(b)
    assert code == 0, (out + err)[-3000:]
    assert_same_lake(tmp_path, baseline)


def test_every_commit_carries_the_leases_fence_as_a_delta_application_transaction(
        day: Path, tmp_path: Path) -> None:
    shutil.copytree(day, tmp_path / "landing")
    settings = Settings(landing=tmp_path / "landing", lake=tmp_path / "lake", archive=tmp_path / "archive")
    run(settings)
    silver = tmp_path / "lake" / "silver"
    # Every silver table, and the observation logs of the SCD2 feeds (silver/_observations/<feed>)
    tables = [p for p in silver.iterdir() if not p.name.startswith("_")] + list((silver / "_observations").iterdir())
    fences = {str(p.relative_to(silver)): DeltaTable(str(p)).transaction_version(APP_ID) for p in tables}
    assert "_observations/customers" in fences
    assert fences and all(v is not None and v > 0 for v in fences.values()), fences
    assert len(set(fences.values())) == len(fences), "each commit draws its own fence"
    engine = sa.create_engine(settings.state_db_url)
    with engine.connect() as conn:
        lock_fence = conn.execute(sa.text("SELECT fence FROM locks")).scalar_one()
    engine.dispose()
    assert max(v for v in fences.values() if v is not None) <= lock_fence


def test_a_lease_shorter_than_five_seconds_is_a_configuration_error(tmp_path: Path) -> None:
    for seconds in ("0", "-1", "4.9"):
        result = subprocess.run(
            [sys.executable, "-m", "shoplake", "run", "--landing", str(tmp_path), "--lake", str(tmp_path / "lake")],
            env={**os.environ, "SHOPLAKE_LEASE_SECONDS": seconds}, capture_output=True, text=True, check=False)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "lease_seconds" in result.stdout + result.stderr
        assert not (tmp_path / "lake").exists(), "a configuration error touches no data"


def test_a_file_changed_after_hashing_waits_and_is_loaded_once_with_the_hash_of_its_bytes(
        workspace: Settings) -> None:
    full = "order_id,customer_id,status,num_items,order_amount,currency,created_at,updated_at\n" + "".join(
        f"{1000 + i},{i},complete,1,1.00,USD,2026-01-05 10:00:00,2026-01-05 10:00:00\n" for i in range(40))
    partial = full[: len(full) // 2].rsplit("\n", 1)[0] + "\n"
    landed = workspace.landing / "orders_2026_01_05.csv"
    landed.write_text(partial)
    with Session(workspace) as session:
        waiting = session.scan()
        landed.write_text(full)  # the sender finishes the file after the scan hashed its first half
        os.utime(landed, (time.time() + 5, time.time() + 5))
        outcome = session.run_batch(waiting)
    changed = next(f for f in outcome.files if f.file == landed.name)
    assert changed.status == "waiting" and "changed while the batch read it" in str(changed.error)
    assert landed.exists(), "it stays in landing to settle"
    run(workspace)
    (workspace.landing / landed.name).write_text(full)  # the complete file sent again
    report = run(workspace)
    assert [f.status for f in report.skipped_duplicates] == ["duplicate"]
    bronze = DeltaTable(str(workspace.tables_root) + "/bronze/orders").to_pyarrow_table()
    assert bronze.num_rows == 40, "loaded once, the complete file"


def loaded_lake(day: Path, tmp_path: Path) -> Settings:
    tmp_path.mkdir(exist_ok=True)
    settings = Settings(landing=tmp_path / "landing", lake=tmp_path / "lake", archive=tmp_path / "archive")
    shutil.copytree(day, tmp_path / "landing")
    run(settings)
    return settings


def test_a_lost_state_store_is_refused_instead_of_loading_everything_again(day: Path, tmp_path: Path) -> None:
    settings = loaded_lake(day, tmp_path)
    bronze_before = DeltaTable(str(tmp_path / "lake" / "bronze" / "orders")).version()
    Path(settings.state_db_url.removeprefix("sqlite:///")).unlink()
    for path in (tmp_path / "archive" / "processed").rglob("*.csv"):
        shutil.copy(path, tmp_path / "landing" / path.name)  # the same files sent again
    with pytest.raises(LakeStateMismatch, match="does not know"):
        run(settings)
    assert DeltaTable(str(tmp_path / "lake" / "bronze" / "orders")).version() == bronze_before
    assert any((tmp_path / "landing").iterdir()), "the files stay waiting"
    result = subprocess.run(
        [sys.executable, "-m", "shoplake", "run", "--landing", str(tmp_path / "landing"),
         "--lake", str(tmp_path / "lake"), "--archive", str(tmp_path / "archive")],
        capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "state store" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_table_behind_the_ledger_is_refused_with_both_versions(tmp_path: Path) -> None:
    days = tmp_path / "generated"
    generate(days, days=2, scale=0.002, defect_rate=0.05, seed=31)
    settings = loaded_lake(days, tmp_path / "lake_base")
    table = tmp_path / "lake_base" / "lake" / "silver" / "orders"
    version = DeltaTable(str(table)).version()
    assert version >= 1
    (table / "_delta_log" / f"{version:020d}.json").unlink()
    with pytest.raises(LakeStateMismatch) as refused:
        run(settings)
    message = str(refused.value)
    assert str(table) in message and f"version {version - 1}" in message and f"version {version}" in message
    assert DeltaTable(str(table)).version() == version - 1, "nothing was written"
