"""Timestamps are read into UTC the same way on both engines, whether a value takes the quick path (no
offset, no zone name) or the zone-aware one; a value that is not a whole date is no timestamp."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from shoplake.contracts import load_contracts
from shoplake.engines import open_engine
from shoplake.layers.checks import typed_value
from shoplake.layers.sql import alias, lit, select
from tests.conftest import ENGINES

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
    contract = load_contracts(None)["orders"]
    engine = open_engine(engine_name, temp_dir=tmp_path / "tmp")
    try:
        values = list(CASES)
        rows = [select(alias(lit(i), "i"), alias(lit(v), "created_at")) for i, v in enumerate(values)]
        union = rows[0]
        for row in rows[1:]:
            union = union.union(row, distinct=False)
        engine.create_table("raw_times", union)
        query = select("i", alias(typed_value(contract, "created_at"), "at")).from_("raw_times")
        got = {values[i]: at for i, at in engine.fetch(query)}
    finally:
        engine.close()
    assert got == CASES
