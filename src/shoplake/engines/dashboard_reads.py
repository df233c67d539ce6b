"""Read-only queries for the dashboard: lake tables through DuckDB (whichever engine wrote them), as Arrow."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from shoplake.engines.duckdb_engine import DuckDBEngine
from shoplake.engines.duckdb_io import open_table


def table_version(path: str) -> int | None:
    """The Delta version of the table at `path` (None: no table there yet); what the dashboard's caches key on."""
    table = open_table(path)
    return None if table is None else int(table.version())


def read_arrow(root: str, tables: Iterable[tuple[str, str]], query: exp.Query, *, scratch: Path,
               memory_limit: str = "1GB") -> pa.Table | None:
    """The rows of `query` over the lake tables `tables` ((layer, name), exposed as layer.name); None when
    one of them does not exist. Decimal columns come back as floats: a chart plots numbers, and money
    has two decimals, which a double holds exactly enough to show.

    Always DuckDB: a dashboard answers in a second, and a Delta table written by Spark reads the same
    (attach_delta applies deletion vectors and column mapping a Spark-written table may carry)."""
    engine = DuckDBEngine(temp_dir=scratch, memory_limit=memory_limit, threads=2)
    try:
        for layer, name in tables:
            if not engine.attach_delta(f"{root}/{layer}/{name}", layer, name):
                return None
        # The engine's connection, read as Arrow (its own fetch gives Python tuples, one object per value).
        result = engine._con.sql(query.sql(dialect="duckdb")).to_arrow_table()
    finally:
        engine.close()
    return _floats(result)


def _floats(result: pa.Table) -> pa.Table:
    columns = [result.column(i).cast(pa.float64()) if pa.types.is_decimal(f.type) else result.column(i)
               for i, f in enumerate(result.schema)]
    return pa.Table.from_arrays(columns, names=result.column_names)
