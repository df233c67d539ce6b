"""Timestamps are read into UTC the same way on both engines, whether a value takes the quick path (no
offset, no zone name) or the zone-aware one; a value that is not a whole date is no timestamp."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import ENGINES
from tests.layers.typed import read_typed

CASES = {
    "2026-01-05": datetime(2026, 1, 5),
    "2026-01-05 10:30": datetime(2026, 1, 5, 10, 30),
    "2026-01-05 10:30:15": datetime(2026, 1, 5, 10, 30, 15),
    "2026-01-05T10:30:15.250000": datetime(2026, 1, 5, 10, 30, 15, 250000),
    "2026-01-05T10:30:15Z": datetime(2026, 1, 5, 10, 30, 15),
    "2026-01-05 10:30:15+02:00": datetime(2026, 1, 5, 8, 30, 15),
    "2026-01-05T21:30:00-05:00": datetime(2026, 1, 6, 2, 30),
    "2026-01-05 10:00:00 UTC": datetime(2026, 1, 5, 10, 0),
    "2026-01-05 10:00:00 Europe/Paris": datetime(2026, 1, 5, 9, 0),
    "2026-01": None,
    "2026-1-05 10:00:00": None,
    "05/01/2026 10:00": None,
    "2026-01-05 25:00:00": None,
}


@pytest.mark.parametrize("engine_name", ENGINES)
def test_timestamps_with_and_without_a_zone_are_read_into_utc(engine_name: str, tmp_path: Path) -> None:
    got = read_typed(engine_name, tmp_path, "orders", "created_at", list(CASES))
    assert got == CASES
