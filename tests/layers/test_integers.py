"""Integers are read the same way on both engines: digits with an optional sign, or digits followed by a
point and zeros (a spreadsheet's 1050.0); anything a cast would round, or read only on one engine, is no
integer."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplake.contracts import load_contracts
from shoplake.engines import open_engine
from shoplake.layers.checks import typed_value
from shoplake.layers.sql import alias, lit, select
from tests.conftest import ENGINES

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
    contract = load_contracts(None)["orders"]
    engine = open_engine(engine_name, temp_dir=tmp_path / "tmp")
    try:
        values = list(CASES)
        rows = [select(alias(lit(i), "i"), alias(lit(v), "order_id")) for i, v in enumerate(values)]
        union = rows[0]
        for row in rows[1:]:
            union = union.union(row, distinct=False)
        engine.create_table("raw_ids", union)
        got = {values[i]: v for i, v in engine.fetch(select("i", alias(typed_value(contract, "order_id"), "v"))
                                                      .from_("raw_ids"))}
    finally:
        engine.close()
    assert got == CASES
