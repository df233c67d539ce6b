"""One writer per lake: the lease in the state store."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from shoplake.errors import LakeBusy
from shoplake.landing.ledger import Ledger


def alive(owner: str) -> bool:
    return False


def test_a_live_holder_keeps_the_lake_and_a_dead_or_expired_one_loses_it(state_url: str) -> None:
    ledger = Ledger(state_url)
    try:
        ledger.acquire_lock("lake", "host:1", 60, dead=alive)
        ledger.acquire_lock("lake", "host:1", 60, dead=alive)  # renewing is fine
        with pytest.raises(LakeBusy, match="in use by host:1"):
            ledger.acquire_lock("lake", "host:2", 60, dead=alive)
        ledger.acquire_lock("lake", "host:2", 60, dead=lambda owner: owner == "host:1")  # its holder died
        with pytest.raises(LakeBusy, match="in use by host:2"):
            ledger.acquire_lock("lake", "host:1", 60, dead=alive)
        ledger.acquire_lock("lake", "host:2", -1, dead=alive)  # a lease that ran out ...
        ledger.acquire_lock("lake", "host:3", 60, dead=alive)  # ... is free to take
        ledger.release_lock("lake", "host:3")
        ledger.acquire_lock("lake", "host:4", 60, dead=alive)
    finally:
        ledger.close()


# Each process opens its own state connection and, at the same instant, tries to take each of ROUNDS
# fresh locks; it prints the locks it took and whether it could draw fences on them.
_CONTENDER = """
import json, sys, time
from shoplake.errors import LakeBusy
from shoplake.landing.ledger import Ledger
url, owner, start, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
ledger = Ledger(url)
taken, fenced = [], []
for n in range(rounds):
    while time.time() < start + n * 0.2:
        time.sleep(0.001)
    try:
        ledger.acquire_lock(f"lake-{n}", owner, 60, dead=lambda other: False)
        taken.append(n)
    except LakeBusy:
        pass
time.sleep(0.3)
for n in range(rounds):
    if ledger.next_fence(f"lake-{n}", owner, 60) is not None:
        fenced.append(n)
print(json.dumps({"taken": taken, "fenced": fenced}))
"""


@pytest.mark.postgres
def test_two_processes_on_one_postgresql_store_hold_one_lease(pg_database: str) -> None:
    Ledger(pg_database).close()  # the tables exist before the race (both processes would create them)
    rounds, start = 8, time.time() + 3
    contenders = [subprocess.Popen([sys.executable, "-c", _CONTENDER, pg_database, f"host:{n}", str(start),
                                    str(rounds)], stdout=subprocess.PIPE, text=True) for n in (1, 2)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in contenders]
    assert all(p.returncode == 0 for p in contenders)
    for n in range(rounds):
        holders = [r for r in results if n in r["taken"]]
        assert len(holders) == 1, f"lock {n}: taken by {len(holders)} processes"
        assert [n in r["fenced"] for r in results] == [n in r["taken"] for r in results], \
            f"lock {n}: only its holder draws fences"
