"""Compute engines behind one interface; `open_engine` is the only place an engine is chosen."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shoplake.engines.base import Capabilities, Engine, MergeSpec, WriteJob, WriteResult
from shoplake.errors import ConfigError, EngineError

ENGINES = ("duckdb", "spark")


def open_engine(
    name: str,
    *,
    temp_dir: Path,
    memory_limit: str = "1GB",
    threads: int | None = None,
    spark_master: str | None = None,
    spark_conf: Mapping[str, str] | None = None,
) -> Engine:
    """The engine called `name`, started; an unknown name is an error, never a fallback.

    An engine that cannot start (not installed, no Java, a setting it refuses) is a ConfigError: a person
    has to change the setup, and nothing was read or written yet.
    """
    try:
        return _start(name, temp_dir=temp_dir, memory_limit=memory_limit, threads=threads,
                      spark_master=spark_master, spark_conf=spark_conf)
    except EngineError as error:
        raise ConfigError(error.message, hint=error.hint) from error


def _start(name: str, *, temp_dir: Path, memory_limit: str, threads: int | None, spark_master: str | None,
           spark_conf: Mapping[str, str] | None) -> Engine:
    if name == "duckdb":
        from shoplake.engines.duckdb_engine import DuckDBEngine

        return DuckDBEngine(temp_dir=temp_dir, memory_limit=memory_limit, threads=threads)
    if name == "spark":
        try:
            from shoplake.engines.spark_engine import SparkEngine
        except ImportError as error:
            raise EngineError(f"engine spark is not installed ({error.name} is missing)",
                              hint="pip install 'shoplake[spark]'") from None
        return SparkEngine(master=spark_master, conf=spark_conf)
    raise EngineError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Capabilities", "Engine", "EngineError", "MergeSpec", "WriteJob", "WriteResult", "open_engine"]
