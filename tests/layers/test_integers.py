"""Integers are read the same way on both engines: digits with an optional sign, or digits followed by a
point and zeros (a spreadsheet's 1050.0); anything a cast would round, or read only on one engine, is no
integer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ENGINES
from tests.layers.typed import read_typed

CASES = {
    "1050": 1050,
    " 1050 ": 1050,
    "+7": 7,
    "-3": -3,
    "1050.0": 1050,
    "1050.": 1050,
    "1050.7": None,
    "1.23457E+15": None,
    "1e3": None,
    "0x10": None,
    "1_000": None,
    "12a": None,
    "9223372036854775808": None,
}


@pytest.mark.parametrize("engine_name", ENGINES)
def test_integers_are_digits_or_whole_decimals_on_both_engines(engine_name: str, tmp_path: Path) -> None:
    got = read_typed(engine_name, tmp_path, "orders", "order_id", list(CASES))
    assert got == CASES
