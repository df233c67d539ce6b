"""SCD2 that keeps every version: late changes split a period, deletes close and reopen, untracked
columns update or stay, reprocessing keeps history whole; run through the real pipeline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.errors import ContractError
from shoplake.layers.scd2 import observations_path
from shoplake.pipeline import run
from shoplake.reprocess import replay_quarantine, reprocess

STOCK = """
feed: stock_levels
files: ["stock_levels_*.csv"]
primary_key: [sku]
max_quarantine_rate: 1.0
load:
  mode: scd2
  sequence: changed_at
  tracked: [level]
  untracked: {untracked}
  deletes: is_deleted = 'true'
columns:
  sku: {{type: string, required: true}}
  level: {{type: integer, required: true}}
  note: {{type: string}}
  is_deleted: {{type: string}}
  changed_at: {{type: timestamp}}
rules:
  - name: level_below_limit
    expr: level < {limit}
"""
HEADER = "sku,level,note,is_deleted,changed_at\n"


def project(settings: Settings, tmp_path: Path, *, untracked: str = "update", limit: int = 1000) -> Settings:
    contracts = tmp_path / "contracts"
    contracts.mkdir(exist_ok=True)
    (contracts / "stock_levels.yml").write_text(STOCK.format(untracked=untracked, limit=limit))
    settings.contracts = [contracts]
    return settings


def land(settings: Settings, day: int, *rows: str, name: str | None = None) -> str:
    """A stock_levels file of rows `sku,level,note,is_deleted,hour` (changed_at on 2026-01-01 at that hour)."""
    lines = []
    for row in rows:
        sku, level, note, deleted, hour = row.split(",")
        lines.append(f"{sku},{level},{note},{deleted},2026-01-01 {int(hour):02d}:00:00\n")
    file = name or f"stock_levels_2026_01_{day:02d}.csv"
    (settings.landing / file).write_text(HEADER + "".join(lines))
    return file


def load(settings: Settings) -> None:
    report = run(settings)
    assert report.batches and not report.failed, [b.error for b in report.batches]


def history(settings: Settings) -> list[dict[str, Any]]:
    """Every version, by key and start, after checking that each key has at most one current version."""
    rows = DeltaTable(f"{settings.lake}/silver/stock_levels").to_pyarrow_table().to_pylist()
    rows.sort(key=lambda r: (r["sku"], r["_valid_from"]))
    for sku in {r["sku"] for r in rows}:
        current = [r for r in rows if r["sku"] == sku and r["_is_current"]]
        assert len(current) <= 1, f"{sku} has {len(current)} current versions"
    return rows


def at(hour: int | None) -> datetime | None:
    return None if hour is None else datetime(2026, 1, 1, hour)


def periods(settings: Settings) -> list[tuple[str, int, int, int | None, bool]]:
    """(sku, level, valid from hour, valid to hour, current) per version, checked to be numbered 1, 2, ..."""
    rows = history(settings)
    for sku in {r["sku"] for r in rows}:
        assert [r["_version"] for r in rows if r["sku"] == sku] == list(
            range(1, 1 + sum(r["sku"] == sku for r in rows)))
    return [(r["sku"], r["level"], r["_valid_from"].hour, r["_valid_to"].hour if r["_valid_to"] else None,
             r["_is_current"]) for r in rows]


def test_a_late_change_splits_the_period_it_falls_in(workspace: Settings, tmp_path: Path) -> None:
    # On Spark, late rows and deletes are covered by test_scd2_property's Spark run (the same merge).
    settings = project(workspace, tmp_path)
    land(settings, 1, "A,5,,false,1", "B,1,,false,1")
    load(settings)
    land(settings, 2, "A,5,,false,3")  # unchanged: no version, but remembered
    load(settings)
    land(settings, 3, "A,7,,false,2")  # late: between the two observations of 5
    load(settings)
    assert periods(settings) == [("A", 5, 1, 2, False), ("A", 7, 2, 3, False), ("A", 5, 3, None, True),
                                 ("B", 1, 1, None, True)]


def test_several_changes_in_one_batch_become_versions_in_order(workspace: Settings, tmp_path: Path) -> None:
    settings = project(workspace, tmp_path)
    land(settings, 1, "A,7,,false,4", "A,5,,false,1", "A,6,,false,2", "A,6,,false,3")  # out of order in the file
    load(settings)
    assert periods(settings) == [("A", 5, 1, 2, False), ("A", 6, 2, 4, False), ("A", 7, 4, None, True)]
    second = history(settings)[1]
    assert second["_last_seen"] == at(3), "the version accounts for the unchanged row at 3"
    assert (second["_source_file"], second["_row_number"]) == ("stock_levels_2026_01_01.csv", 3)


def test_an_unchanged_row_makes_no_version_and_rewrites_nothing(workspace: Settings, tmp_path: Path) -> None:
    settings = project(workspace, tmp_path)
    land(settings, 1, "A,5,x,false,1", "B,2,x,false,1")
    load(settings)
    silver = DeltaTable(f"{settings.lake}/silver/stock_levels")
    before = silver.version()
    land(settings, 2, "B,2,x,false,1", "A,5,x,false,1")  # the snapshot sent again (rows reordered), unchanged
    load(settings)
    silver = DeltaTable(f"{settings.lake}/silver/stock_levels")
    assert silver.version() == before, "no merge commit: no source row changed"
    assert periods(settings) == [("A", 5, 1, None, True), ("B", 2, 1, None, True)]
    log = DeltaTable(observations_path(str(settings.lake), "stock_levels")).to_pyarrow_table()
    assert log.num_rows == 4, "every observation is logged"


@pytest.mark.parametrize(("untracked", "note"), [("update", "second"), ("ignore", "first")])
def test_untracked_columns_update_the_version_or_keep_its_first_values(
        workspace: Settings, tmp_path: Path, untracked: str, note: str) -> None:
    settings = project(workspace, tmp_path, untracked=untracked)
    land(settings, 1, "A,5,first,false,1")
    load(settings)
    land(settings, 2, "A,5,second,false,2")
    load(settings)
    rows = history(settings)
    assert [(r["level"], r["note"], r["_is_current"]) for r in rows] == [(5, note, True)]
    assert rows[0]["_last_seen"] == at(2)
    assert rows[0]["_source_file"] == "stock_levels_2026_01_01.csv", "lineage names the version's first row"


def test_a_delete_closes_the_version_and_the_key_comes_back(workspace: Settings, tmp_path: Path) -> None:
    # On Spark, late rows and deletes are covered by test_scd2_property's Spark run (the same merge).
    settings = project(workspace, tmp_path)
    land(settings, 1, "A,5,,false,1", "B,1,,false,1")
    load(settings)
    land(settings, 2, "A,5,,true,3")
    load(settings)
    assert periods(settings) == [("A", 5, 1, 3, False), ("B", 1, 1, None, True)], "A has no current version"
    land(settings, 3, "A,6,,false,5")
    load(settings)
    land(settings, 4, "A,9,,false,2", "B,1,,true,4")  # late for A: inside its first period; B deleted
    load(settings)
    assert periods(settings) == [("A", 5, 1, 2, False), ("A", 9, 2, 3, False), ("A", 6, 5, None, True),
                                 ("B", 1, 1, 4, False)]


def test_a_late_row_before_a_delete_of_an_unknown_key_is_closed_by_it(workspace: Settings, tmp_path: Path) -> None:
    settings = project(workspace, tmp_path)
    land(settings, 1, "A,5,,true,4")  # deleted before it was ever seen
    load(settings)
    assert history(settings) == []
    land(settings, 2, "A,5,,false,2")
    load(settings)
    assert periods(settings) == [("A", 5, 2, 4, False)]


@pytest.mark.integration
def test_reprocessing_a_file_keeps_history_whole(on_engine: Settings, tmp_path: Path) -> None:
    settings = project(on_engine, tmp_path)
    for day, level in ((1, 5), (2, 7), (3, 9)):
        land(settings, day, f"A,{level},,false,{day}", f"B,{level},,false,{day}")
        load(settings)
    whole = [("A", 5, 1, 2, False), ("A", 7, 2, 3, False), ("A", 9, 3, None, True),
             ("B", 5, 1, 2, False), ("B", 7, 2, 3, False), ("B", 9, 3, None, True)]
    assert periods(settings) == whole
    again = reprocess(settings, file="stock_levels_2026_01_02.csv")
    assert [b.status for b in again.batches] == ["succeeded"]
    assert periods(settings) == whole, "the version the file made is still there, and nothing else moved"
    # The contract now quarantines level 7: reprocessed, the file's versions leave history, with no gap.
    project(settings, tmp_path, limit=7)
    again = reprocess(settings, file="stock_levels_2026_01_02.csv")
    assert [b.status for b in again.batches] == ["succeeded"]
    assert periods(settings) == [("A", 5, 1, 3, False), ("A", 9, 3, None, True),
                                 ("B", 5, 1, 3, False), ("B", 9, 3, None, True)]
    # The limit is lifted and the quarantined rows replayed: the versions come back in their place.
    project(settings, tmp_path)
    assert [b.status for b in replay_quarantine(settings, "stock_levels").batches] == ["succeeded"]
    assert periods(settings) == whole


def test_delete_markers_and_untracked_are_checked_at_load(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    path = contracts / "stock_levels.yml"
    for text, problem in [
        (STOCK.format(untracked="update", limit=1).replace("is_deleted = 'true'", "gone = 'true'"),
         "load.deletes: \"gone = 'true'\" names unknown column(s) gone"),
        (STOCK.format(untracked="update", limit=1).replace("is_deleted = 'true'", "level + 1"),
         "load.deletes: 'level + 1' is not a boolean expression"),
        (STOCK.format(untracked="sometimes", limit=1), "load.untracked: Input should be 'update' or 'ignore'"),
        (STOCK.format(untracked="update", limit=1).replace("mode: scd2", "mode: upsert").replace(
            "  tracked: [level]\n", "").replace("  untracked: update\n", ""), "load.deletes only applies to mode scd2"),
    ]:
        path.write_text(text)
        with pytest.raises(ContractError) as caught:
            load_contracts([contracts])
        assert problem in str(caught.value)
