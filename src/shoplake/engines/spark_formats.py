"""The Spark engine's readers of the formats beyond plain CSV: Spark's own Parquet and text readers (gzip
read natively) with its JSON functions; a workbook goes through a local Parquet copy of its sheet, a
JSON array through a local NDJSON copy (engines/formats.py makes both)."""

from __future__ import annotations

import uuid
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StructType

from shoplake.contracts.formats import FileRead
from shoplake.contracts.model import FileFormat
from shoplake.engines.formats import ROW_NUMBER, json_lines, json_path, local_file, scratch_dir, sheet_rows
from shoplake.engines.spark_csv import staged_or_dropped

if TYPE_CHECKING:
    from shoplake.engines.spark_engine import SparkEngine


def stage(engine: SparkEngine, path: str, table: str, columns: list[str], read: FileRead) -> int:
    """SparkEngine.load_file: the file's rows as text columns `columns` plus `_row_number`, kept (cut from
    the file, so a local copy made to be read can go) as the temporary view `table`; returns its rows."""
    made: list[Path] = []
    try:
        with staged_or_dropped(engine, table):
            frame = _frame(engine._spark, Path(path), columns, read, made)
            staged = engine._persist(table, frame)
            rows = int(staged.count())  # computes and keeps the rows: one job
            engine.counted(table, rows)
    finally:
        for copy in made:
            with suppress(OSError):
                copy.unlink()
    staged.createOrReplaceTempView(table)
    return rows


def _frame(spark: SparkSession, path: Path, columns: list[str], read: FileRead, made: list[Path]) -> DataFrame:
    source = local_file(path, read.kind)
    file_format = read.kind.format
    if file_format is FileFormat.XLSX:
        _, rows = sheet_rows(source, read.sheet)
        copy = scratch_dir() / f"sheet-{uuid.uuid4().hex}.parquet"
        made.append(copy)
        pq.write_table(rows, copy)
        sheet = spark.read.parquet(str(copy))
        return sheet.select(*[F.col(f"c{i}").alias(name) for i, name in enumerate(columns)], ROW_NUMBER)
    if file_format is FileFormat.PARQUET:
        raw = spark.read.parquet(str(source))
        kinds = {field.name: field.dataType for field in raw.schema.fields}
        picked = [_as_text(_column(keys[0]), isinstance(kinds.get(keys[0]), StructType | ArrayType | MapType))
                  .alias(name) for keys, name in zip(read.fields, columns, strict=True)]
        return _numbered(raw, picked)
    if file_format is FileFormat.JSON:  # records of an array are not lines: one record per line first
        source = json_lines(source, read.kind)
        made.append(source)
    lines = spark.read.text(str(source))
    lines = lines.where(F.trim(F.col("value")) != "")  # DuckDB's reader skips blank lines too
    picked = [F.get_json_object(F.col("value"), json_path(keys, spark=True)).alias(name)
              for keys, name in zip(read.fields, columns, strict=True)]
    return _numbered(lines, picked)


def _numbered(raw: DataFrame, picked: list[Column]) -> DataFrame:
    """Rows numbered in file order: monotonically_increasing_id grows with the partition and the position
    in it, and a file's partitions are its consecutive parts."""
    order = Window.orderBy(F.col("_position"))
    return (raw.withColumn("_position", F.monotonically_increasing_id())
            .select(*picked, F.row_number().over(order).cast("bigint").alias(ROW_NUMBER)))


def _column(name: str) -> Column:
    return F.col("`" + name.replace("`", "``") + "`")  # a name with dots is one column, not a path


def _as_text(column: Column, nested: bool) -> Column:
    return F.to_json(column) if nested else column.cast("string")  # as DuckDB's to_json / CAST AS VARCHAR
