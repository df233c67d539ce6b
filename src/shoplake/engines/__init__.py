"""Compute engines behind one interface; `open_engine` is the only place an engine is chosen."""

from __future__ import annotations

from pathlib import Path

from shoplake.engines.base import Capabilities, Engine, MergeSpec, WriteJob, WriteResult
from shoplake.errors import EngineError

ENGINES = ("duckdb",)


def open_engine(name: str, *, temp_dir: Path, memory_limit: str = "1GB", threads: int | None = None) -> Engine:
    """The engine called `name`; an unknown name is an error, never a fallback."""
    if name == "duckdb":
        from shoplake.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(temp_dir=temp_dir, memory_limit=memory_limit, threads=threads)
    raise EngineError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Capabilities", "Engine", "EngineError", "MergeSpec", "WriteJob", "WriteResult", "open_engine"]
