"""The DuckDB engine reads a Delta table as its log defines it: deletion vectors and column mapping applied
(a lake continued by delta-spark or Databricks), plain tables still by DuckDB's own Parquet reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from sqlglot import exp

from shoplake.engines.duckdb_engine import DuckDBEngine
from shoplake.errors import EngineError


@pytest.fixture
def duckdb_engine(tmp_path: Path) -> Any:
    engine = DuckDBEngine(temp_dir=tmp_path / "_tmp")
    yield engine
    engine.close()


def attached_rows(engine: DuckDBEngine, path: Path) -> list[tuple[Any, ...]]:
    assert engine.attach_delta(str(path), "silver", "t")
    return sorted(engine.fetch(exp.select("*").from_(exp.table_("t", db="silver"))))


def view_sql(engine: DuckDBEngine) -> str:
    return str(engine._con.execute(
        "SELECT sql FROM duckdb_views() WHERE schema_name = 'silver' AND view_name = 't'").fetchone()[0])


def test_a_plain_table_is_read_by_duckdbs_parquet_reader(duckdb_engine: DuckDBEngine, tmp_path: Path) -> None:
    write_deltalake(str(tmp_path / "t"), pa.table({"id": [1, 2], "name": ["a", "b"]}))
    assert attached_rows(duckdb_engine, tmp_path / "t") == [(1, "a"), (2, "b")]
    assert "read_parquet(" in view_sql(duckdb_engine)


def test_a_table_this_deltalake_cannot_read_is_refused_by_name(duckdb_engine: DuckDBEngine, tmp_path: Path) -> None:
    path = tmp_path / "t"
    write_deltalake(str(path), pa.table({"id": [1, 2]}))
    protocol = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["someFutureFeature"],
                "writerFeatures": ["someFutureFeature"]}
    commit = [{"protocol": protocol}, {"commitInfo": {"operation": "SET TBLPROPERTIES"}}]
    (path / "_delta_log" / "00000000000000000001.json").write_text("".join(json.dumps(a) + "\n" for a in commit))
    with pytest.raises(EngineError, match=r"cannot read the Delta table .*/t: .*someFutureFeature"):
        duckdb_engine.attach_delta(str(path), "silver", "t")


@pytest.mark.spark
@pytest.mark.integration
def test_a_table_spark_wrote_with_deletion_vectors_reads_as_spark_reads_it(
        duckdb_engine: DuckDBEngine, tmp_path: Path) -> None:
    from shoplake.engines.spark_engine import spark_session

    spark = spark_session(None, ())  # the session the Spark engine (and test_interop) uses in this process
    path = str(tmp_path / "orders")
    spark.sql(f"CREATE TABLE delta.`{path}` (order_id BIGINT, status STRING, amount DOUBLE) USING delta "
              "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true', 'delta.columnMapping.mode' = 'name', "
              "'delta.minReaderVersion' = '3', 'delta.minWriterVersion' = '7')")
    spark.range(0, 40).selectExpr("id AS order_id", "'created' AS status", "CAST(id * 1.5 AS DOUBLE) AS amount") \
        .repartition(2).write.format("delta").mode("append").save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE order_id % 4 = 0")
    spark.sql(f"MERGE INTO delta.`{path}` t USING (SELECT id AS order_id, 'shipped' AS status, "
              "CAST(id * 2 AS DOUBLE) AS amount FROM range(30, 50)) s ON t.order_id = s.order_id "
              "WHEN MATCHED AND s.order_id % 3 = 0 THEN DELETE WHEN MATCHED THEN UPDATE SET * "
              "WHEN NOT MATCHED THEN INSERT *")
    spark.sql(f"ALTER TABLE delta.`{path}` RENAME COLUMN amount TO order_amount")
    table = DeltaTable(path)
    assert "deletionVectors" in (table.protocol().reader_features or [])
    files_rows = sum(pq.read_metadata(f).num_rows for f in table.file_uris())
    spark_frame = spark.read.format("delta").load(path)
    spark_rows = sorted(tuple(r) for r in spark_frame.collect())
    assert files_rows > len(spark_rows), "the deletes left rows in the files, masked by deletion vectors"

    assert attached_rows(duckdb_engine, Path(path)) == spark_rows
    columns = [r[0] for r in duckdb_engine._con.execute("DESCRIBE silver.t").fetchall()]
    assert columns == spark_frame.columns == ["order_id", "status", "order_amount"]
