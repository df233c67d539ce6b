"""A per-engine-call profile of one Spark run: calls, wall seconds and Spark jobs of each SparkEngine method.

    .venv/bin/python benchmarks/spark_profile.py --landing /tmp/bench/w/scale_1.0/landing --work /tmp/spark-prof

The landing folder is copied first (a run archives what it loads). Printed: one line per engine method
(calls, seconds, Spark jobs), the run's stage seconds, and the JVM's CPU seconds (steadier than wall time
on a shared machine). Nested calls count in both (a write's table_version inside write, say).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])  # name -> [calls, seconds, jobs]
CALLS: list[tuple[float, int, str]] = []  # (seconds, jobs, "method(first argument)") of each top-level call
_depth = [0]


def _jobs(spark: Any) -> int:
    """Jobs started so far: Spark numbers them from 0, one after the other."""
    ids = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    return max(ids) + 1 if ids else 0


def _timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        jobs, started = _jobs(self._spark), time.perf_counter()
        _depth[0] += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            _depth[0] -= 1
            if _depth[0] == 0:
                label = str(args[0])[:60] if args and isinstance(args[0], str) else ""
                if not label and args and isinstance(args[0], list):
                    label = ",".join(str(getattr(j, "path", j)).rsplit("/", 1)[-1] for j in args[0])[:60]
                CALLS.append((time.perf_counter() - started, _jobs(self._spark) - jobs, f"{name}({label})"))
            entry = STATS[name]
            entry[0] += 1
            entry[1] += time.perf_counter() - started
            entry[2] += _jobs(self._spark) - jobs
    return wrapper


def _jvm_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu(pid: int) -> dict[str, float]:
    """The JVM's CPU seconds by kind of thread (JIT compilers, GC, task threads, the rest)."""
    kinds: dict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = next((k for k in ("C2", "C1", "GC", "G1", "Executor") if comm.startswith(k)), "other")
        kinds[kind] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return dict(kinds)


def _java_pid() -> int | None:
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if "(java)" in stat and int(stat.rsplit(")", 1)[1].split()[1]) == me:
                return int(entry.name)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--conf", action="append", default=[], help="key=value: a Spark setting for the run")
    args = parser.parse_args()
    conf = dict(item.split("=", 1) for item in args.conf)
    from shoplake.config import Settings
    from shoplake.engines import spark_engine
    from shoplake.engines.spark_session import spark_session
    from shoplake.pipeline import run

    engine_class = spark_engine.SparkEngine
    for name in list(vars(engine_class)):
        if not name.startswith("__") and callable(getattr(engine_class, name)) and name != "render":
            setattr(engine_class, name, _timed(name, getattr(engine_class, name)))
    landing, lake, archive = args.work / "landing", args.work / "lake", args.work / "archive"
    for folder in (landing, lake, archive):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(args.landing, landing)
    spark_session(None, tuple(sorted(conf.items()))).range(1).count()  # the JVM's start is not the run's
    pid = _java_pid()
    cpu = _jvm_cpu_seconds(pid) if pid else 0.0
    started = time.perf_counter()
    result = run(Settings(landing=landing, lake=lake, archive=archive, engine="spark", spark_conf=conf))
    wall = time.perf_counter() - started
    cpu = (_jvm_cpu_seconds(pid) - cpu) if pid else float("nan")
    print(f"{'method':28} {'calls':>6} {'seconds':>9} {'jobs':>6}")
    for name, (calls, seconds, jobs) in sorted(STATS.items(), key=lambda kv: -kv[1][1]):
        print(f"{name:28} {calls:6d} {seconds:9.1f} {jobs:6d}")
    print("\nslowest top-level calls:")
    for seconds, jobs, label in sorted(CALLS, reverse=True)[:40]:
        print(f"{seconds:8.2f} s {jobs:4d} jobs  {label}")
    jvm: Any = spark_session(None, tuple(sorted(conf.items())))._jvm
    gc = sum(b.getCollectionTime() for b in jvm.java.lang.management.ManagementFactory.getGarbageCollectorMXBeans())
    if pid:
        print("JVM CPU seconds by thread kind:", {k: round(v, 1) for k, v in _thread_cpu(pid).items()})
    print(f"JVM GC seconds: {gc / 1000:.1f}")
    print(json.dumps({"wall_s": round(wall, 1), "jvm_cpu_s": round(cpu, 1), "stages": result.seconds,
                      "failed": result.failed,
                      "loaded": sum(f.rows_loaded for b in result.batches for f in b.files)}))


if __name__ == "__main__":
    main()
