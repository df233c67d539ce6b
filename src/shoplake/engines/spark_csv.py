"""The Spark engine's CSV reader: a file's rows staged as text columns, counted and checked in one Spark job.

Spark reads a CSV row of any length, pads short rows, cuts long ones and replaces bytes that are not
UTF-8; each of these rejects the file, as it does on the DuckDB engine. One aggregate over the staged rows
counts them and finds whether any such row exists (a job costs a second or more on a busy machine; a job
per check was four per file); only a file that has one is read again, for the message.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from shoplake.engines.base import MAX_ROW_BYTES, ROW_TOO_LONG
from shoplake.engines.spark_session import short_error
from shoplake.errors import EngineError

if TYPE_CHECKING:
    from shoplake.engines.spark_engine import SparkEngine

CORRUPT = "_corrupt_record"


def stage(engine: SparkEngine, path: str, table: str, columns: list[str]) -> int:
    """SparkEngine.load_csv: the file's rows as `columns` (text) plus `_row_number` (1 = the first row
    after the header), kept as the temporary view `table`; returns its rows."""
    spark = engine._spark
    fields = [F.col(f"c{i}") for i in range(len(columns))]
    schema = StructType([StructField(f"c{i}", StringType()) for i in range(len(columns))]
                        + [StructField(CORRUPT, StringType())])
    with staged_or_dropped(engine, table):
        # multiLine: quoted values may span lines, and each file is read whole, as one partition,
        # so monotonically_increasing_id() counts its rows in file order from 0.
        raw = spark.read.csv(
            path, schema=schema, header=True, enforceSchema=True, mode="PERMISSIVE", multiLine=True,
            quote='"', escape='"', encoding="UTF-8", columnNameOfCorruptRecord=CORRUPT,
        ).withColumn("_row_number", F.monotonically_increasing_id() + 1)
        staged = engine._persist(table, raw)  # kept by the job below
        # A row is measured as its fields and commas (quotes uncounted), which a file smaller than the
        # limit cannot reach.
        long_possible = not os.path.isfile(path) or os.path.getsize(path) >= MAX_ROW_BYTES
        too_long = F.octet_length(F.concat_ws(",", *fields)) >= MAX_ROW_BYTES if long_possible else F.lit(False)
        not_utf8 = F.exists(F.array(*fields), lambda v: v.contains("\ufffd")) if fields else F.lit(False)
        [found] = staged.agg(
            F.count(F.lit(1)).alias("rows"),
            F.min(F.when(too_long, F.col("_row_number"))).alias("longest"),
            F.count(F.col(CORRUPT)).alias("corrupt"),
            F.max(not_utf8.cast("int")).alias("not_utf8"),
        ).collect()
        if found["longest"] is not None:
            raise EngineError(f"line {found['longest'] + 1} {ROW_TOO_LONG}")  # line 1 is the header
        if found["corrupt"]:
            _reject_long_rows(staged, len(columns))
        if found["not_utf8"]:
            raise EngineError("invalid UTF-8: the file is not UTF-8 encoded")
    engine.counted(table, int(found["rows"]))
    named = staged.select(*[F.col(f"c{i}").alias(name) for i, name in enumerate(columns)], "_row_number")
    named.createOrReplaceTempView(table)
    return int(found["rows"])


@contextmanager
def staged_or_dropped(engine: SparkEngine, table: str) -> Iterator[None]:
    """A file that fails to stage leaves no table behind; Spark's error comes out as one short line."""
    try:
        yield
    except EngineError:
        engine.drop(table)
        raise
    except Exception as error:
        engine.drop(table)
        raise EngineError(short_error(error)) from None


def _reject_long_rows(staged: DataFrame, fields: int) -> None:
    """A row with more fields than the header rejects the file (Spark keeps such a row as corrupt)."""
    for line, row_number in staged.where(F.col(CORRUPT).isNotNull()).select(CORRUPT, "_row_number").take(1000):
        found = len(next(csv.reader([line]), []))
        if found > fields:
            raise EngineError(f"CSV error: row {row_number} has {found} fields, the header {fields}")
