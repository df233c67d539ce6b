"""Which columns keep statistics: a new table's `delta.dataSkippingStatsColumns`, and in the DuckDB engine's
Parquet files min/max only on those columns (text statistics are a third of a write's CPU)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.pipeline import run
from tests.conftest import copy_fixture


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stats")
    landing = root / "landing"
    landing.mkdir()
    copy_fixture("mini", landing)
    report = run(Settings(landing=landing, lake=root / "lake", archive=root / "archive"))
    assert [b.status for b in report.batches] == ["succeeded"]
    return root / "lake"


def column_stats(table: Path) -> dict[str, bool]:
    """Per column: whether its first row group of each Parquet file of the table has min/max."""
    found: dict[str, bool] = {}
    for path in DeltaTable(str(table)).file_uris():
        meta = pq.ParquetFile(path).metadata
        group = meta.row_group(0)
        for i in range(group.num_columns):
            chunk = group.column(i)
            stats = chunk.statistics
            found[chunk.path_in_schema] = bool(stats is not None and stats.has_min_max)
    return found


@pytest.mark.parametrize(("table", "kept"), [
    ("bronze/order_items", {"_source_file", "_batch_id"}),
    ("silver/order_items", {"order_item_id", "updated_at", "_source_file", "_batch_id"}),
    ("gold/fact_sales", {"order_item_id"}),
])
def test_statistics_are_kept_on_the_lookup_columns_only(lake: Path, table: str, kept: set[str]) -> None:
    configured = DeltaTable(str(lake / table)).metadata().configuration["delta.dataSkippingStatsColumns"]
    assert set(configured.split(",")) == kept
    stats = column_stats(lake / table)
    assert {c for c, has in stats.items() if has} == kept
    # The file statistics Delta readers skip files by are there for those columns.
    actions = pa.table(DeltaTable(str(lake / table)).get_add_actions(flatten=True)).to_pydict()
    for column in kept:
        assert all(v is not None for v in actions[f"min.{column}"]), column
    assert not any(name.startswith("min.") and name[4:] not in kept for name in actions)
