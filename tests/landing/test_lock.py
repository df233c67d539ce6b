"""One writer per lake: the lease in the state store."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.errors import LakeBusy
from shoplake.landing.ledger import Ledger


def alive(owner: str) -> bool:
    return False


def test_a_live_holder_keeps_the_lake_and_a_dead_or_expired_one_loses_it(tmp_path: Path) -> None:
    ledger = Ledger(f"sqlite:///{tmp_path / 'state.db'}")
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
