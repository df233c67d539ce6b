"""The lake on object storage for the Spark engine: Hadoop's S3A connector serves the lake's `s3://` URLs,
set up from the same AWS_* environment variables that delta-rs (the DuckDB engine) reads.

One lake URL works on both engines: shoplake.yml says `s3://bucket/prefix`, delta-rs opens it as it is, and
on Spark the `s3` scheme is mapped to S3A (`fs.s3.impl`) unless the platform already serves it (EMR's EMRFS,
Databricks). Opting in with `spark.shoplake.s3a: "true"` in spark_conf adds hadoop-aws (at the version of
this Spark's Hadoop) and only the AWS SDK modules S3A loads to the packages the session starts with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shoplake.errors import EngineError

S3A_OPT_IN = "spark.shoplake.s3a"
S3A_FILESYSTEM = "org.apache.hadoop.fs.s3a.S3AFileSystem"

# The AWS SDK v2 release each Hadoop release's hadoop-aws is built and tested with (its hadoop-project POM's
# aws-java-sdk-v2.version); pyspark 4.0.x ships Hadoop 3.4.1, 4.1.x 3.4.2, 4.2.x 3.5.0.
SDK_OF_HADOOP = {"3.4.1": "2.24.6", "3.4.2": "2.29.52", "3.5.0": "2.35.4"}
# hadoop-aws depends on the SDK's ~600 MB `bundle` of every service; S3A loads only these (and what they
# pull in: about 13 MB in all).
SDK_MODULES = ("s3", "s3-transfer-manager", "sts", "apache-client", "netty-nio-client")
# Spark ships newer copies of Netty, Apache HttpClient and commons-codec: the SDK's older ones would
# only shadow them on the classpath.
EXCLUDES = ("software.amazon.awssdk:bundle", "io.netty:*", "org.apache.httpcomponents:*",
            "commons-codec:commons-codec")


def with_s3a(settings: dict[str, str]) -> dict[str, str]:
    """The session's start-up settings, with the S3A packages added when spark_conf opts in."""
    settings = dict(settings)
    wanted = settings.pop(S3A_OPT_IN, "false").strip().lower()
    if wanted not in ("true", "false"):
        raise EngineError(f"spark_conf {S3A_OPT_IN}: {wanted!r} is not true or false")
    if wanted == "false":
        return settings
    if "spark.jars" in settings:
        raise EngineError(f"spark_conf {S3A_OPT_IN} downloads the S3A jars, but spark.jars lists local ones",
                          hint="add hadoop-aws and its AWS SDK jars to spark.jars instead")
    hadoop = hadoop_version()
    sdk = SDK_OF_HADOOP.get(hadoop or "")
    if sdk is None:
        raise EngineError(f"spark_conf {S3A_OPT_IN}: no known AWS SDK for Spark's Hadoop {hadoop or '(not found)'}",
                          hint=f"list org.apache.hadoop:hadoop-aws:<your Hadoop> and its SDK in "
                               f"spark.jars.packages instead (known: Hadoop {', '.join(SDK_OF_HADOOP)})")
    packages = [f"org.apache.hadoop:hadoop-aws:{hadoop}", *(f"software.amazon.awssdk:{m}:{sdk}" for m in SDK_MODULES)]
    for key, added in (("spark.jars.packages", packages), ("spark.jars.excludes", list(EXCLUDES))):
        settings[key] = ",".join([p for p in settings.get(key, "").split(",") if p.strip()] + added)
    return settings


def hadoop_version() -> str | None:
    """The Hadoop release this Spark runs (the hadoop-client-api jar in its jars folder), None if not found."""
    import pyspark

    home = Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent)
    for jar in sorted((home / "jars").glob("hadoop-client-api-*.jar")):
        return jar.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return None


def s3a_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """S3A's Hadoop settings for the endpoint, region, addressing and keys the AWS_* variables give, as
    delta-rs reads them (an endpoint of its own is addressed path-style, as delta-rs does by default)."""
    found: dict[str, str] = {}
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        found["fs.s3a.endpoint"] = endpoint
        found["fs.s3a.connection.ssl.enabled"] = str(not endpoint.lower().startswith("http://")).lower()
        found["fs.s3a.path.style.access"] = "true"
    if "AWS_VIRTUAL_HOSTED_STYLE_REQUEST" in environ:
        hosted = environ["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"].strip().lower() in ("true", "1")
        found["fs.s3a.path.style.access"] = str(not hosted).lower()
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        found["fs.s3a.endpoint.region"] = region
    if environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
        # In the Hadoop configuration, not the JVM's environment: it reaches the executors with every job,
        # and the variables may be set after the session started (the JVM's environment is fixed then).
        found["fs.s3a.access.key"] = environ["AWS_ACCESS_KEY_ID"]
        found["fs.s3a.secret.key"] = environ["AWS_SECRET_ACCESS_KEY"]
        if environ.get("AWS_SESSION_TOKEN"):
            found["fs.s3a.session.token"] = environ["AWS_SESSION_TOKEN"]
            found["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
    return found


def configure(session: Any, environ: Mapping[str, str] | None = None) -> None:
    """Point the running session's Hadoop configuration at the store the environment names; called at
    every engine start, so a session started earlier follows the environment of now. A setting given
    as spark.hadoop.* in spark_conf wins, and a platform's own `s3` file system stays."""
    hadoop = _hadoop_conf(session)
    if hadoop is None:
        return
    conf = session.sparkContext.getConf()
    settings = s3a_settings(os.environ if environ is None else environ)
    if hadoop.get("fs.s3.impl") is None and _loadable(session, S3A_FILESYSTEM):
        settings["fs.s3.impl"] = S3A_FILESYSTEM
    for key, value in settings.items():
        if not conf.contains(f"spark.hadoop.{key}"):
            hadoop.set(key, value)


def _loadable(session: Any, name: str) -> bool:
    jvm = session.sparkContext._jvm
    try:
        jvm.java.lang.Class.forName(name, False, jvm.java.lang.Thread.currentThread().getContextClassLoader())
    except Exception:
        return False
    return True


def by_delta_rs(session: Any, path: str) -> bool:
    """Whether the driver reads a table's log (version, history, partitions, fence) with delta-rs instead of
    a Spark job (a second or more each on object storage): a local table, or one in a bucket that S3A reaches
    with the AWS_* environment delta-rs reads too. A platform's own connector (EMRFS, Databricks') may hold
    credentials delta-rs cannot see: there Spark reads the log."""
    if "://" not in path or path.startswith("file:"):
        return True
    if not path.startswith("s3://") or not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_ENDPOINT_URL")
                                            or os.environ.get("AWS_ENDPOINT_URL_S3")):
        return False
    hadoop = _hadoop_conf(session)
    return hadoop is not None and hadoop.get("fs.s3.impl") == S3A_FILESYSTEM


def _hadoop_conf(session: Any) -> Any:
    try:
        return session.sparkContext._jsc.hadoopConfiguration()
    except Exception:  # a session without a JVM here (Spark Connect): the platform configures its storage
        return None
