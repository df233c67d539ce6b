"""Shared fixtures: a fresh landing folder, lake and archive per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shoplake.config import Settings

FIXTURES = Path(__file__).parent / "fixtures"


ENGINES = ["duckdb", pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.integration])]


@pytest.fixture
def workspace(tmp_path: Path) -> Settings:
    landing = tmp_path / "landing"
    landing.mkdir()
    return Settings(landing=landing, lake=tmp_path / "lake", archive=tmp_path / "archive")


@pytest.fixture(params=ENGINES)
def on_engine(request: pytest.FixtureRequest, workspace: Settings) -> Settings:
    """The workspace on each engine: the behaviour tests that use it run on DuckDB and on Spark."""
    workspace.engine = request.param
    return workspace


def copy_fixture(name: str, landing: Path) -> None:
    for path in (FIXTURES / name).iterdir():
        if path.is_file() and path.suffix in (".csv", ".json"):
            shutil.copy(path, landing / path.name)
