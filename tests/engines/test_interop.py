"""One lake, two engines: a table written by one engine is continued by the other and read back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.pipeline import run
from tests.engines.test_parity import rows

pytestmark = [pytest.mark.spark, pytest.mark.integration]

TABLES = [("bronze", "events"), ("silver", "events"), ("silver", "orders"), ("silver", "customers"),
          ("quarantine", "order_items"), ("gold", "agg_daily_sales")]


def run_days(base: Path, name: str, engines: tuple[str, str]) -> Path:
    lake = base / name / "lake"
    for day, engine in zip(("2026_01_05", "2026_01_06"), engines, strict=True):
        landing = base / name / f"landing_{day}"
        landing.mkdir(parents=True)
        for path in (base / "generated").glob(f"*_{day}.*"):
            shutil.copy(path, landing / path.name)
        # gold: the one table compared and the models it reads (the parity test compares every model)
        report = run(Settings(landing=landing, lake=lake, archive=base / name / "archive", engine=engine,
                              gold_models=["agg_daily_sales"]))
        assert [b.status for b in report.batches] == ["succeeded"]
    return lake


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("interop")
    generate(base / "generated", days=2, scale=0.001, defect_rate=0.02, seed=5)
    return {
        "duckdb then spark": run_days(base, "ds", ("duckdb", "spark")),
        "spark then duckdb": run_days(base, "sd", ("spark", "duckdb")),
        "duckdb only": run_days(base, "dd", ("duckdb", "duckdb")),
    }


@pytest.mark.parametrize("mixed", ["duckdb then spark", "spark then duckdb"])
@pytest.mark.parametrize(("layer", "name"), TABLES, ids=[f"{a}.{b}" for a, b in TABLES])
def test_a_lake_continued_by_the_other_engine_equals_a_single_engine_lake(
    lakes: dict[str, Path], mixed: str, layer: str, name: str
) -> None:
    assert rows(lakes[mixed] / layer / name) == rows(lakes["duckdb only"] / layer / name)


@pytest.mark.parametrize("mixed", ["duckdb then spark", "spark then duckdb"])
def test_both_engines_commits_are_in_one_history(lakes: dict[str, Path], mixed: str) -> None:
    history = DeltaTable(str(lakes[mixed] / "bronze" / "events")).history()
    operations = [entry["operation"] for entry in reversed(history)]
    assert len(operations) == 2, operations  # one commit per day, whichever engine made it
    engines = [str(entry.get("engineInfo") or entry.get("clientVersion") or "") for entry in reversed(history)]
    first, second = mixed.split(" then ")
    assert ("Spark" in engines[0]) == (first == "spark") and ("Spark" in engines[1]) == (second == "spark"), engines
