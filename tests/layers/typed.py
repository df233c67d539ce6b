"""Raw text values through a feed column's typed value, as the checks compute it, on one engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shoplake.contracts import load_contracts
from shoplake.engines import open_engine
from shoplake.layers.checks import typed_value
from shoplake.layers.sql import alias, lit, select


def read_typed(engine_name: str, tmp_path: Path, feed: str, column: str, values: list[str]) -> dict[str, Any]:
    """Each raw value -> the typed value the built-in contract of `feed` reads it as."""
    contract = load_contracts(None)[feed]
    engine = open_engine(engine_name, temp_dir=tmp_path / "tmp")
    try:
        rows = [select(alias(lit(i), "i"), alias(lit(v), column)) for i, v in enumerate(values)]
        union = rows[0]
        for row in rows[1:]:
            union = union.union(row, distinct=False)
        engine.create_table("raw_values", union)
        query = select("i", alias(typed_value(contract, column), "typed")).from_("raw_values")
        return {values[i]: typed for i, typed in engine.fetch(query)}
    finally:
        engine.close()
