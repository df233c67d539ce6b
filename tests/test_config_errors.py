"""A configuration error touches no data: exit 2 before any file moves or any ledger row changes.

Each case runs the real CLI in a subprocess, as a user does: an engine that cannot start (PySpark not
importable, Java not where JAVA_HOME says), a setting DuckDB would refuse, a model the contracts do not
fit. The landed files stay in landing, waiting, and the state store is not created or not changed.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from pydantic import ValidationError

from shoplake.config import Settings
from tests.conftest import FIXTURES

# An environment in which PySpark is not installed, as far as Python can tell: every import of it fails
# the way a missing package fails.
NO_PYSPARK = '''
import importlib.abc, sys

class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyspark", "delta"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    landing.mkdir()
    for path in (FIXTURES / "mini").glob("*.csv"):
        (landing / path.name).write_bytes(path.read_bytes())
    return tmp_path


def shoplake(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoplake", *args, "--landing", "landing", "--lake", "lake", "--archive", "archive"],
        cwd=project, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200", **(env or {})})


def without_pyspark(project: Path) -> dict[str, str]:
    folder = project / "no_pyspark"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(NO_PYSPARK)
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)}


def assert_config_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    """Exit 2 with one `error:` line naming each of `names` (its hint may follow), no traceback."""
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    for name in names:
        assert name in errors[0], text


def landed(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "landing").iterdir())


def ledger(project: Path) -> dict[str, list[tuple[object, ...]]]:
    with closing(sqlite3.connect(project / "lake" / "_state" / "shoplake.db")) as conn:
        return {"files": conn.execute("SELECT * FROM files ORDER BY file_id").fetchall(),
                "batches": conn.execute("SELECT * FROM batches ORDER BY batch_id").fetchall(),
                "table_state": conn.execute("SELECT * FROM table_state ORDER BY 1").fetchall()}


def assert_untouched(project: Path, before: list[str]) -> None:
    assert landed(project) == before
    assert not (project / "archive").exists()
    assert not (project / "lake" / "_state").exists(), "a state store was created"


def test_an_invalid_memory_limit_is_a_configuration_error(project: Path) -> None:
    before = landed(project)
    (project / "shoplake.yml").write_text("memory_limit: lots\n")
    assert_config_error(shoplake(project, "run"), "memory_limit", "'lots'", "1GB")
    assert_untouched(project, before)


def test_spark_without_pyspark_is_a_configuration_error(project: Path) -> None:
    before = landed(project)
    result = shoplake(project, "run", "--engine", "spark", env=without_pyspark(project))
    assert_config_error(result, "engine spark is not installed", "pyspark")
    assert_untouched(project, before)


@pytest.mark.skipif(importlib.util.find_spec("pyspark") is None, reason="the missing-Java case needs PySpark")
def test_spark_without_java_is_a_configuration_error(project: Path) -> None:
    before = landed(project)
    result = shoplake(project, "run", "--engine", "spark", env={"JAVA_HOME": str(project / "no-java-here")})
    assert_config_error(result, "cannot start Spark")
    assert_untouched(project, before)


def test_a_model_the_contracts_do_not_fit_is_a_configuration_error(project: Path) -> None:
    before = landed(project)
    models = project / "models"
    models.mkdir()
    (models / "by_coupon.sql").write_text("select coupon_code, count(*) as orders from silver.orders group by 1\n")
    (project / "shoplake.yml").write_text("models: [models]\n")
    assert_config_error(shoplake(project, "run"), "models/by_coupon.sql", "'coupon_code'", "orders.yml")
    assert_untouched(project, before)


def test_a_contract_that_does_not_load_is_a_configuration_error(project: Path) -> None:
    before = landed(project)
    contracts = project / "contracts"  # found by default next to shoplake.yml
    contracts.mkdir()
    (contracts / "orders.yml").write_text("feed: orders\nfiles: [orders_*.csv]\nprimary_key: [order_id]\n"
                                          "columns:\n  order_id: {type: integr}\n")
    (project / "shoplake.yml").write_text("engine: duckdb\n")
    assert_config_error(shoplake(project, "run"), "orders.yml", "'integr'")
    assert_untouched(project, before)


def test_an_engine_that_cannot_start_leaves_an_existing_lake_and_its_ledger_as_they_were(project: Path) -> None:
    (project / "landing" / "shipping_2026_01_05.csv").unlink()  # the fixture's binary file fails the first run
    first = shoplake(project, "run")
    assert first.returncode == 0, first.stdout + first.stderr
    late = project / "landing" / "orders_2026_01_06.csv"
    late.write_bytes((FIXTURES / "mini" / "orders_2026_01_05.csv").read_bytes().replace(b"2026-01-05", b"2026-01-06"))
    archived = sorted(p.relative_to(project) for p in (project / "archive").rglob("*"))
    before = ledger(project)
    result = shoplake(project, "run", "--engine", "spark", env=without_pyspark(project))
    assert_config_error(result, "engine spark is not installed")
    assert landed(project) == ["orders_2026_01_06.csv"]
    assert sorted(p.relative_to(project) for p in (project / "archive").rglob("*")) == archived
    assert ledger(project) == before


@pytest.mark.parametrize("value", ["1GB", "1.5GB", "512MiB", "2 GiB", "80%", "1gb"])
def test_memory_limits_duckdb_accepts_are_accepted(value: str) -> None:
    assert Settings(memory_limit=value).memory_limit == value


@pytest.mark.parametrize(("name", "value"), [("memory_limit", "lots"), ("memory_limit", "100"), ("threads", 0)])
def test_an_invalid_engine_setting_is_refused_when_settings_load(name: str, value: object) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings.model_validate({name: value})
