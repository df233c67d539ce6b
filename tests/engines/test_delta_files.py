"""The DuckDB engine's own Delta writer (engines/delta_files.py): pyarrow writes the Parquet files of a local
table and delta-rs commits them. What it writes must read back as the same rows through delta-rs and
through DuckDB's Parquet reader (as the engine reads), with exact file statistics, in one commit."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from deltalake import DeltaTable
from sqlglot import exp

from shoplake.engines import delta_files

DAYS = [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)]


def rows(n: int, days: list[date | None], start: int = 0) -> pa.Table:
    return pa.table({
        "order_item_id": pa.array(range(start, start + n), pa.int64()),
        "note": pa.array([None if i % 7 == 0 else f"n{i}" for i in range(n)], pa.string()),
        "created_at": pa.array([datetime(2026, 1, 5, 10, 0, 0, 1234 * (i % 5), tzinfo=UTC) for i in range(n)],
                               pa.timestamp("us", tz="UTC")),
        "order_date": pa.array([days[i % len(days)] for i in range(n)], pa.date32()),
    })


def write(path: Path, table: pa.Table, mode: str = "error", replace: str | None = None,
          stats: tuple[str, ...] = ("order_item_id", "created_at"), batch_rows: int = 1000) -> None:
    existing = DeltaTable(str(path)) if (path / "_delta_log").exists() else None
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=batch_rows))
    predicate = sqlglot.parse_one(replace, read="duckdb") if replace else None
    assert delta_files.plan(table.schema, existing, "overwrite" if replace else mode, ("order_date",), predicate)
    delta_files.write(str(path), reader, existing, mode, partition_by=("order_date",), stats=stats,
                      replace=replace, commit=None, configuration=None)


def read_back(path: Path) -> list[dict[str, object]]:
    """The rows as delta-rs reads them, and checked equal to DuckDB's reading of the same files."""
    table = DeltaTable(str(path))
    by_delta = sorted(table.to_pyarrow_table().to_pylist(), key=lambda r: r["order_item_id"])
    files = ", ".join(f"'{f}'" for f in table.file_uris())
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        got = con.sql(f"SELECT order_item_id, note, created_at, order_date FROM read_parquet([{files}], "
                          "union_by_name=true) ORDER BY order_item_id").to_arrow_table()
    assert sorted(got.to_pylist(), key=lambda r: r["order_item_id"]) == by_delta
    return by_delta


def test_a_partitioned_table_reads_back_whole_with_exact_statistics(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delta_files, "ROW_GROUP_ROWS", 500)
    monkeypatch.setattr(delta_files, "TARGET_FILE_BYTES", 4000)  # several files per partition
    source = rows(5000, [*DAYS, None])
    write(tmp_path / "t", source)
    assert read_back(tmp_path / "t") == sorted(source.to_pylist(), key=lambda r: r["order_item_id"])
    table = DeltaTable(str(tmp_path / "t"))
    assert table.version() == 0 and table.metadata().partition_columns == ["order_date"]
    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    assert len(actions) > len(DAYS) + 1
    assert sum(a["num_records"] for a in actions) == 5000
    with duckdb.connect() as con:
        for action in actions:
            ids = con.execute(f"SELECT min(order_item_id), max(order_item_id), count(*) "
                              f"FROM read_parquet('{tmp_path / 't' / action['path']}')").fetchone()
            assert (action["min.order_item_id"], action["max.order_item_id"], action["num_records"]) == ids
    # The NULL partition's folder is delta-rs's, and its value is NULL in the log.
    assert any(a["path"].startswith("order_date=__HIVE_DEFAULT_PARTITION__/") and a["partition.order_date"] is None
               for a in actions)


def test_timestamp_statistics_are_rounded_outwards_to_milliseconds(tmp_path: Path) -> None:
    write(tmp_path / "t", rows(10, [DAYS[0]]))
    log = (tmp_path / "t" / "_delta_log" / f"{0:020d}.json").read_text().splitlines()
    stats = [json.loads(json.loads(line)["add"]["stats"]) for line in log if '"add"' in line]
    assert stats[0]["minValues"]["created_at"] == "2026-01-05T10:00:00.000Z"
    assert stats[0]["maxValues"]["created_at"] == "2026-01-05T10:00:00.005Z"  # 4.936 ms rounded up
    assert stats[0]["nullCount"] == {"order_item_id": 0, "created_at": 0}
    # delta-rs reads them back as the timestamps they name.
    action = pa.table(DeltaTable(str(tmp_path / "t")).get_add_actions(flatten=True)).to_pylist()[0]
    assert action["min.created_at"] == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert action["max.created_at"] == datetime(2026, 1, 5, 10, 0, 0, 5000, tzinfo=UTC)


def test_a_predicate_overwrite_replaces_only_its_partitions(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write(path, rows(300, DAYS))
    late = rows(50, [DAYS[1], date(2026, 1, 8)], start=1000)
    write(path, late, mode="overwrite",
          replace="order_date IN (CAST('2026-01-06' AS DATE), CAST('2026-01-08' AS DATE))")
    got = read_back(path)
    kept = [r for r in rows(300, DAYS).to_pylist() if r["order_date"] != DAYS[1]]
    assert got == sorted(kept + late.to_pylist(), key=lambda r: r["order_item_id"])
    assert DeltaTable(str(path)).version() == 1  # one commit


def test_rows_outside_the_predicate_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write(path, rows(30, DAYS))
    before = sorted(p.name for p in path.rglob("*.parquet"))
    with pytest.raises(ValueError, match="do not match the predicate"):
        write(path, rows(10, [DAYS[0], DAYS[2]], start=100), mode="overwrite",
              replace="order_date = CAST('2026-01-05' AS DATE)")
    assert sorted(p.name for p in path.rglob("*.parquet")) == before
    assert DeltaTable(str(path)).version() == 0


def test_append_and_whole_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write(path, rows(20, DAYS))
    write(path, rows(10, [DAYS[2]], start=20), mode="append")
    assert [r["order_item_id"] for r in read_back(path)] == list(range(30))
    write(path, rows(5, [DAYS[0]], start=50), mode="overwrite")
    assert [r["order_item_id"] for r in read_back(path)] == list(range(50, 55))
    # No stats columns named: the first 32 columns keep statistics, as delta-rs keeps them.
    write(tmp_path / "u", rows(5, [DAYS[0]]), stats=())
    actions = pa.table(DeltaTable(str(tmp_path / "u")).get_add_actions(flatten=True)).column_names
    assert {"min.order_item_id", "min.note", "min.created_at"} <= set(actions)


def test_what_it_cannot_write_alike_is_left_to_delta_rs(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write(path, rows(5, DAYS))
    table = DeltaTable(str(path))
    wider = rows(5, DAYS).append_column("extra", pa.array([1] * 5, pa.int64()))
    assert not delta_files.plan(wider.schema, table, "append", ())  # a schema change
    text_days = pa.schema([("k", pa.int64()), ("day", pa.string())])
    assert not delta_files.plan(text_days, None, "error", ("day",))  # partitions by text
    assert not delta_files.plan(pa.schema([("t", pa.timestamp("ns"))]), None, "error", ())
    assert not delta_files.plan(pa.schema([("n", pa.uint64())]), None, "error", ())
    assert not delta_files.plan(rows(1, DAYS).schema, table, "overwrite", ())  # another layout
    by_key = exp.column("order_item_id").eq(1)
    assert not delta_files.plan(rows(1, DAYS).schema, table, "overwrite", ("order_date",), by_key)


def test_a_table_with_constraints_or_a_change_feed_is_left_to_delta_rs(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write(path, rows(5, DAYS))
    table = DeltaTable(str(path))
    table.alter.add_constraint({"positive": "order_item_id >= 0"})
    assert not delta_files.plan(rows(1, DAYS).schema, DeltaTable(str(path)), "append", ())
    feed = tmp_path / "u"
    write(feed, rows(5, DAYS))
    DeltaTable(str(feed)).alter.set_table_properties({"delta.enableChangeDataFeed": "true"})
    assert not delta_files.plan(rows(1, DAYS).schema, DeltaTable(str(feed)), "append", ())


def test_checkpoints_are_written_as_delta_rs_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "t"
    write(path, rows(5, DAYS))
    DeltaTable(str(path)).alter.set_table_properties({"delta.checkpointInterval": "5"})
    for i in range(5):
        write(path, rows(1, [DAYS[0]], start=100 + i), mode="append")
    assert list((path / "_delta_log").glob("*.checkpoint.parquet"))
    assert len(read_back(path)) == 10
