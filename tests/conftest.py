"""Shared fixtures: a fresh landing folder, lake and archive per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shoplake.config import Settings
from tests.pg import pg_database, postgres, state_url  # noqa: F401  (PostgreSQL: one server per session)

FIXTURES = Path(__file__).parent / "fixtures"


ENGINES = ["duckdb", pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.integration])]


@pytest.fixture
def workspace(tmp_path: Path) -> Settings:
    landing = tmp_path / "landing"
    landing.mkdir()
    return Settings(landing=landing, lake=tmp_path / "lake", archive=tmp_path / "archive")


@pytest.fixture(params=ENGINES)
def on_engine(request: pytest.FixtureRequest, workspace: Settings) -> Settings:
    """The workspace on each engine: the behaviour tests that use it run on DuckDB and on Spark.

    On Spark, a test builds gold only when marked `builds_gold`: gold is a third of a Spark batch, the
    parity and interop tests prove Spark's gold equal to DuckDB's, and the others test bronze and silver."""
    workspace.engine = request.param
    if request.param == "spark" and request.node.get_closest_marker("builds_gold") is None:
        workspace.gold_models = []
    return workspace


def copy_fixture(name: str, landing: Path) -> None:
    for path in (FIXTURES / name).iterdir():
        if path.is_file() and path.suffix in (".csv", ".json"):
            shutil.copy(path, landing / path.name)


# The audit adds about 25 s to every Spark batch (re-reading every table and one planned query over all
# checks). Spark tests about something else (crashes, parity, interop, incremental gold) run without it;
# tests/quality audits on both engines. DuckDB batches are always audited.
SPARK_AUDIT = {"on": False}


@pytest.fixture(scope="session", autouse=True)
def _one_spark_session_with_s3a(request: pytest.FixtureRequest) -> None:
    """A run with Spark tests starts its one Spark session with the S3A connector's jars (which join a
    session only at its start) for tests/engines/test_spark_s3a.py; every Spark test shares that session."""
    if any(item.get_closest_marker("spark") for item in request.session.items):
        from shoplake.engines.spark_session import spark_session

        spark_session(None, (("spark.shoplake.s3a", "true"),))


@pytest.fixture(scope="session", autouse=True)
def _spark_batches_skip_the_audit() -> Iterator[None]:
    from shoplake import session
    from shoplake.quality.audit import AuditHook

    real = session.batch_hooks

    def hooks(settings: Settings, **kwargs: Any) -> list[Any]:
        found = real(settings, **kwargs)
        if settings.engine != "spark" or SPARK_AUDIT["on"]:
            return found
        return [h for h in found if not isinstance(h, AuditHook)]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(session, "batch_hooks", hooks)
        yield
