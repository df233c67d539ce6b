"""One lake in a bucket, two engines: day 1 by the DuckDB engine (delta-rs), day 2 by Spark through Hadoop's
S3A connector, the same `s3://` lake URL for both; every table equals that of a one-engine lake.

The bucket is tests/s3server.py's local S3-compatible server; the S3A jars come from Maven Central with the
process's one Spark session (tests/conftest.py starts it with `spark.shoplake.s3a`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from shoplake.config import Settings
from shoplake.engines import spark_storage
from shoplake.errors import EngineError
from shoplake.generate import generate
from shoplake.pipeline import run
from tests.engines.test_parity import VARYING, normal
from tests.s3server import BUCKET, keys, s3  # noqa: F401  (the module's S3 server)

DAYS = ("2026_01_05", "2026_01_06")
S3A = {"spark.shoplake.s3a": "true"}  # as a user opts in, in shoplake.yml's spark_conf


def rows(uri: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    table = DeltaTable(uri).to_pyarrow_table()
    names = sorted(n for n in table.column_names if n not in VARYING)
    return names, sorted((tuple(normal(r[n]) for n in names) for r in table.select(names).to_pylist()), key=repr)


# Gold up to the daily mart and what it reads (facts, dimensions): every gold model on Spark over S3 costs
# minutes of the suite, and the interop test compares all of them on a local lake.
GOLD = ["agg_daily_sales"]


def run_days(base: Path, name: str, lake: str | Path, engines: tuple[str, str]) -> None:
    for day, engine in zip(DAYS, engines, strict=True):
        landing = base / name / f"landing_{day}"
        landing.mkdir(parents=True)
        for path in (base / "generated").glob(f"*_{day}.*"):
            shutil.copy(path, landing / path.name)
        report = run(Settings(landing=landing, lake=lake, archive=base / name / "archive", engine=engine,
                              work_dir=base / name / "work", spark_conf=S3A if engine == "spark" else {},
                              gold_models=GOLD))
        assert [b.status for b in report.batches] == ["succeeded"], (day, engine)


@pytest.mark.spark
@pytest.mark.integration
def test_duckdb_then_spark_on_one_bucket_equal_a_one_engine_lake(s3: object, tmp_path: Path) -> None:  # noqa: F811
    generate(tmp_path / "generated", days=2, scale=0.001, defect_rate=0.02, seed=5)
    mixed = f"s3://{BUCKET}/mixed/lake"
    run_days(tmp_path, "mixed", mixed, ("duckdb", "spark"))
    run_days(tmp_path, "single", tmp_path / "single" / "lake", ("duckdb", "duckdb"))

    single = tmp_path / "single" / "lake"
    expected = sorted(str(log.parent.relative_to(single)) for log in single.rglob("_delta_log"))
    found = sorted({key.split("/_delta_log/")[0] for key in keys(s3, "mixed/lake/") if "/_delta_log/" in key})
    assert found == expected
    assert {"silver/orders", "silver/customers", "gold/fact_sales", "gold/agg_daily_sales"} <= set(found)

    history = DeltaTable(f"{mixed}/silver/orders").history()
    writers = [str(h.get("engineInfo") or h.get("clientVersion") or "") for h in reversed(history)]
    assert len(writers) == 2 and "Spark" not in writers[0] and "Spark" in writers[1], writers

    differ = [table for table in expected if rows(f"{mixed}/{table}") != rows(str(single / table))]
    assert differ == [], f"tables of the mixed lake on S3 that differ from the DuckDB-only lake: {differ}"


def test_the_opt_in_adds_hadoop_aws_at_sparks_hadoop_and_the_sdk_modules_without_the_bundle() -> None:
    import pyspark

    jars = [j.name for j in (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")]
    assert len(jars) == 1, jars
    hadoop = jars[0].removeprefix("hadoop-client-api-").removesuffix(".jar")
    settings = spark_storage.with_s3a({"spark.jars.packages": "io.delta:delta-spark_4.2_2.13:4.4.0",
                                       "spark.shoplake.s3a": "TRUE"})
    packages = settings["spark.jars.packages"].split(",")
    assert packages[0] == "io.delta:delta-spark_4.2_2.13:4.4.0", "the packages already asked for stay"
    assert f"org.apache.hadoop:hadoop-aws:{hadoop}" in packages
    sdk = {p.rsplit(":", 1)[1] for p in packages if p.startswith("software.amazon.awssdk:")}
    assert len(sdk) == 1, "every SDK module at one release"
    assert "software.amazon.awssdk:s3:" + sdk.pop() in packages
    assert "software.amazon.awssdk:bundle" in settings["spark.jars.excludes"].split(",")
    assert "spark.shoplake.s3a" not in settings
    assert spark_storage.with_s3a({"spark.shoplake.s3a": "false", "x": "1"}) == {"x": "1"}
    with pytest.raises(EngineError, match="not true or false"):
        spark_storage.with_s3a({"spark.shoplake.s3a": "yes"})
    with pytest.raises(EngineError, match=r"spark\.jars lists local ones"):
        spark_storage.with_s3a({"spark.shoplake.s3a": "true", "spark.jars": "/opt/jars/x.jar"})


def test_s3a_follows_the_aws_environment_delta_rs_reads() -> None:
    local = spark_storage.s3a_settings({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1",
                                        "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"})
    assert (local["fs.s3a.endpoint"], local["fs.s3a.endpoint.region"]) == ("http://127.0.0.1:9000", "eu-west-1")
    assert (local["fs.s3a.connection.ssl.enabled"], local["fs.s3a.path.style.access"]) == ("false", "true")
    assert (local["fs.s3a.access.key"], local["fs.s3a.secret.key"]) == ("key", "secret")
    assert "fs.s3a.aws.credentials.provider" not in local, "S3A's own chain finds the keys"
    hosted = spark_storage.s3a_settings({"AWS_ENDPOINT_URL_S3": "https://s3.example.com", "AWS_ENDPOINT_URL": "x",
                                         "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "true"})
    assert hosted == {"fs.s3a.endpoint": "https://s3.example.com", "fs.s3a.connection.ssl.enabled": "true",
                      "fs.s3a.path.style.access": "false"}
    temporary = spark_storage.s3a_settings({"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
                                            "AWS_SESSION_TOKEN": "t"})
    assert temporary["fs.s3a.session.token"] == "t"
    assert temporary["fs.s3a.aws.credentials.provider"].endswith("TemporaryAWSCredentialsProvider")
    assert spark_storage.s3a_settings({"AWS_DEFAULT_REGION": ""}) == {}, "nothing set: S3A's defaults (AWS, IAM roles)"
