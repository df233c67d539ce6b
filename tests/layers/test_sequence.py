"""A row without a sequence value takes the time it was ingested: it never wins by being NULL, and in
SCD2 it opens a version of its key instead of disappearing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.errors import ContractError
from shoplake.pipeline import run
from shoplake.tables import query_table

# Two feeds of their own, so the test reads only what it wrote: one upserted, one historised (SCD2).
PRICES = """
feed: prices
files: ["prices_*.csv"]
primary_key: [sku]
load: {mode: upsert, sequence: changed_at}
columns:
  sku: {type: string, required: true}
  price: {type: decimal, required: true}
  changed_at: {type: timestamp}
"""
STOCK = """
feed: stock_levels
files: ["stock_levels_*.csv"]
primary_key: [sku]
load: {mode: scd2, sequence: changed_at, tracked: [level]}
columns:
  sku: {type: string, required: true}
  level: {type: integer, required: true}
  changed_at: {type: timestamp}
"""


def project(settings: Settings, tmp_path: Path) -> Settings:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "prices.yml").write_text(PRICES)
    (contracts / "stock_levels.yml").write_text(STOCK)
    settings.contracts = [contracts]
    return settings


def land(settings: Settings, name: str, text: str) -> None:
    (settings.landing / name).write_text(text)


@pytest.mark.integration
def test_a_row_without_a_sequence_value_takes_its_ingestion_time(on_engine: Settings, tmp_path: Path) -> None:
    settings = project(on_engine, tmp_path)
    # Day 1: A has no change time (so it stands at its ingestion, today); B and the stock of A have one.
    land(settings, "prices_2026_01_05.csv", "sku,price,changed_at\nA,10.00,\nB,20.00,2026-01-05 08:00:00\n")
    land(settings, "stock_levels_2026_01_05.csv", "sku,level,changed_at\nA,5,2026-01-05 08:00:00\n")
    assert not run(settings).failed
    # Day 2: an older change of A must not replace it (it did: a stored NULL lost to any row); a change of B
    # without a time is newer than B's 08:00 and wins; A's stock changes without a time: a new version.
    land(settings, "prices_2026_01_06.csv", "sku,price,changed_at\nA,99.00,2026-01-04 08:00:00\nB,21.00,\n")
    land(settings, "stock_levels_2026_01_06.csv", "sku,level,changed_at\nA,7,\n")
    assert not run(settings).failed

    prices = {r[0]: str(r[1]) for r in query_table(settings, "silver", "prices")}
    assert prices == {"A": "10.00", "B": "21.00"}
    stock = sorted(query_table(settings, "silver", "stock_levels"), key=lambda r: r[-3])
    assert [(r[0], r[1], r[-1]) for r in stock] == [("A", 5, False), ("A", 7, True)]
    opened = stock[1][-3]
    assert isinstance(opened, datetime) and opened > datetime(2026, 1, 5, 8), "it opens at its ingestion time"
    assert stock[0][-2] == opened, "the version before it closes where it opens"


def test_a_sequence_column_must_be_a_timestamp(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    integer_sequence = PRICES.replace("changed_at: {type: timestamp}", "changed_at: {type: integer}")
    (contracts / "prices.yml").write_text(integer_sequence)
    with pytest.raises(ContractError) as caught:
        load_contracts([contracts])
    assert "load.sequence column 'changed_at' is integer, not a timestamp" in str(caught.value)
