"""Read access to the lake's tables for people: counts and small samples, through the engine seam."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from shoplake.config import Settings
from shoplake.engines import open_engine
from shoplake.layers.sql import col, select, table


def query_table(config: Settings, layer: str, name: str, query: exp.Select | None = None) -> list[tuple[Any, ...]]:
    """Rows of `query` over <lake>/<layer>/<name> (exposed as layer.name); all rows when no query."""
    engine = open_engine(config.engine, temp_dir=config.scratch / "_tmp", memory_limit=config.memory_limit,
                         spark_master=config.spark_master, spark_conf=config.spark_conf)
    try:
        if not engine.attach_delta(f"{config.tables_root}/{layer}/{name}", layer, name):
            return []
        return engine.fetch(query or select("*").from_(table(name, layer)))
    finally:
        engine.close()


def top_reasons(config: Settings, feed: str, limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent failed rules of a feed's quarantine."""
    rule = exp.Explode(this=col("_failed_rules"))
    inner = select(exp.alias_(rule, "rule", quoted=True)).from_(table(feed, "quarantine"))
    query = (select(col("rule"), exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True))
             .from_(exp.alias_(inner.subquery(), "r")).group_by(col("rule"))
             .order_by(exp.Ordered(this=col("n"), desc=True)).limit(limit))
    return [(str(r), int(n)) for r, n in query_table(config, "quarantine", feed, query)]
