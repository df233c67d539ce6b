"""The process's one Spark session with Delta Lake, shared by every Spark engine opened in it."""

from __future__ import annotations

import functools
import os

from pyspark.sql import SparkSession

from shoplake.engines import spark_storage
from shoplake.errors import EngineError

_cores = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
DELTA_JAR = "io.delta:delta-spark_{spark}_2.13:4.4.0"  # the Maven artifact for this pyspark's major.minor


def spark_session(master: str | None, conf: tuple[tuple[str, str], ...]) -> SparkSession:
    """The process's Spark session with Delta Lake; UTC everywhere, quiet, small shuffles by default.

    Without a master, an existing session (spark-submit, a Databricks job) is used as it is; settings
    that only apply at start-up, such as the jars, are then the platform's. Object storage follows the
    AWS_* environment of each call (spark_storage.py), also in a session started before it was set.
    """
    session = _started(master, conf)
    spark_storage.configure(session)
    return session


@functools.cache
def _started(master: str | None, conf: tuple[tuple[str, str], ...]) -> SparkSession:
    """Started once per process and settings: the jars and other start-up settings cannot change later."""
    import pyspark

    spark_version = ".".join(pyspark.__version__.split(".")[:2])
    settings = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.jars.packages": DELTA_JAR.format(spark=spark_version),
        "spark.sql.session.timeZone": "UTC",
        # Local-mode defaults, measured on one SCALE 1 day (benchmarks/spark_profile.py); a cluster overrides
        # them in spark_conf. A task per core: each task costs its closure and generated code again.
        "spark.sql.shuffle.partitions": str(_cores),
        "spark.default.parallelism": str(_cores),
        # Adaptive execution runs every query stage as a job of its own and re-plans between them: hundreds
        # of jobs a batch whose partitions are few and small already.
        "spark.sql.adaptive.enabled": "false",
        # A merge's source is a kept (checkpointed) table already: Delta would copy it once more.
        "spark.databricks.delta.merge.materializeSource": "none",
        # Generated classes are compiled once per distinct plan; the default keeps 100, fewer than a batch has.
        "spark.sql.codegen.cache.maxEntries": "1000",
        # Rows kept or spilled to disk are written by Kryo: Java serialization costs a multiple of it.
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        # The throughput collector: G1's concurrent threads cost a core's share on a small machine.
        "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
        # Delta rebuilds a table's state in this many tasks (default 50: seconds of overhead locally).
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "2g",
        # Parity with the DuckDB engine: JSON keeps NULL fields; merges may add columns.
        "spark.sql.jsonGenerator.ignoreNullFields": "false",
        "spark.databricks.delta.schema.autoMerge.enabled": "true",
        # A UNION ALL over staged (checkpointed) tables computed with a zone conversion fails in Spark 4.2's
        # constraint propagation (key not found in UnionBase.rewriteConstraints); incremental gold unions
        # a model's stored rows with its recomputed partitions. The inferred constraints only prune filters.
        "spark.sql.constraintPropagation.enabled": "false",
        **dict(conf),
    }
    settings = spark_storage.with_s3a(settings)  # spark.shoplake.s3a: the S3A connector's jars
    if "spark.jars" in settings:
        settings.pop("spark.jars.packages")  # jars from a local folder (offline clusters)
    builder = SparkSession.builder.appName("shoplake")
    if master:
        builder = builder.master(master)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as error:
        raise EngineError(f"cannot start Spark ({master or 'default master'}): {short_error(error)}",
                          hint="Spark needs Java 17+ and `pip install shoplake[spark]`") from error
    session.sparkContext.setLogLevel("ERROR")
    return session


def short_error(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return " | ".join(line for line in text[:3] if line.strip())
