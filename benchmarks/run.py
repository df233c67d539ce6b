"""Times generate, each stage of a run, and peak memory, against the floor of DuckDB alone.

    .venv/bin/python benchmarks/run.py --scale 0.1 --scale 1

The workload is one generated business day of every feed (orders, order items, customers, products,
inventory, shipping, events, fx rates) validated, quarantined and loaded, then every gold model;
`--feeds four` keeps DESIGN.md's comparison workload (orders, order items, customers, products:
SCALE 1 = 1M + 2.5M + 200k + 20k rows), with the marts those four feed. The floor
is DuckDB reading the same CSVs and writing each once as Parquet, with no logic. Each measured step runs
in its own process so its peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
WORKLOAD = ("orders", "order_items", "customers", "products")


def child(code: str) -> tuple[float, float, str]:
    """Run Python code in a fresh process; returns wall seconds, peak RSS in MiB and its stdout."""
    report_rss = "\nimport resource; print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code + report_rss], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    rss_kib = int(lines[-1].split()[1])
    return seconds, rss_kib / 1024, "\n".join(lines[:-1])


def pipeline_run(files: Path, data: Path, engine: str) -> tuple[float, float, str]:
    """One shoplake run over a fresh copy of the files (a run archives what it loads) into a fresh lake."""
    landing, lake, archive = data / "run_landing", data / "lake", data / "archive"
    for folder in (landing, lake, archive):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(files, landing)
    return child(
        "import json; from pathlib import Path; from shoplake.config import Settings; "
        "from shoplake.pipeline import run; "
        f"r = run(Settings(landing=Path({str(landing)!r}), lake=Path({str(lake)!r}), archive=Path({str(archive)!r}), "
        f"engine={engine!r})); "
        "print(json.dumps({'seconds': r.seconds, 'loaded': sum(f.rows_loaded for b in r.batches for f in b.files), "
        "'quarantined': sum(f.rows_quarantined for b in r.batches for f in b.files), 'failed': r.failed}))"
    )


def best(repeat: int, step: Callable[[], tuple[float, float, str]]) -> tuple[float, float, str]:
    """The fastest of `repeat` runs (the least disturbed by the rest of the machine), with the highest peak."""
    runs = [step() for _ in range(repeat)]
    fastest = min(runs, key=lambda r: r[0])
    return fastest[0], max(r[1] for r in runs), fastest[2]


def spark_start() -> tuple[float, float, str]:
    """A Spark session with Delta, started and stopped: the JVM's share of a Spark run."""
    return child("from shoplake.engines.spark_engine import spark_session; "
                 "spark_session(None, ()).range(1).count()")


def measure(scale: float, work: Path, repeat: int, engines: list[str], feeds: str) -> list[dict[str, object]]:
    data = work / f"scale_{scale}"
    shutil.rmtree(data, ignore_errors=True)
    generated = data / "generated"
    gen_s, _, _ = child(
        "from pathlib import Path; from shoplake.generate import generate; "
        f"generate(Path({str(generated)!r}), days=1, scale={scale}, defect_rate=0.01, seed=1)"
    )
    landing = data / "landing"
    landing.mkdir()
    rows = 0
    for path in sorted(generated.glob("*.csv")):
        if feeds == "all" or path.name.rsplit("_", 3)[0] in WORKLOAD:
            shutil.copy(path, landing / path.name)
            rows += sum(1 for _ in path.open("rb")) - 1
    floor_s, floor_mb, _ = best(repeat, lambda: child(
        "import duckdb, glob; con = duckdb.connect(); "
        "[con.execute(f\"COPY (SELECT * FROM read_csv('{p}', all_varchar=true, null_padding=true)) "
        "TO '{p}.parquet'\") "
        f"for p in sorted(glob.glob({str(landing / '*.csv')!r}))]"
    ))
    for parquet in landing.glob("*.parquet"):
        parquet.unlink()
    measured = []
    for engine in engines:
        run_s, run_mb, out = best(repeat if engine == "duckdb" else 1, lambda e=engine: pipeline_run(landing, data, e))
        result = json.loads(out.strip().splitlines()[-1])
        measured.append({
            "engine": engine, "scale": scale, "rows": rows, "generate_s": gen_s, "floor_s": floor_s,
            "floor_mb": floor_mb, "run_s": run_s, "run_mb": run_mb, "stages": result["seconds"],
            "loaded": result["loaded"], "quarantined": result["quarantined"], "ratio": run_s / floor_s,
        })
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, action="append", required=True)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement, the fastest reported (Spark runs once)")
    parser.add_argument("--engine", action="append", choices=["duckdb", "spark"],
                        help="engines to time (default duckdb); repeat the option for several")
    parser.add_argument("--feeds", choices=["all", "four"], default="all",
                        help="every generated feed (default), or DESIGN.md's four-feed workload")
    args = parser.parse_args()
    engines = args.engine or ["duckdb"]
    if "spark" in engines:
        start_s, start_mb, _ = spark_start()
        print(f"Spark session start (JVM + Delta, jars cached): {start_s:.1f} s, {start_mb:.0f} MiB (Python side)\n")
    print("| engine | scale | rows | generate (all feeds) | floor: DuckDB CSV->Parquet | shoplake run | run / floor "
          "| stages (detect / read / check / write / gold) | peak RSS run (floor) |", flush=True)
    print("|---|---|---|---|---|---|---|---|---|")
    for scale in args.scale:
        for m in measure(scale, args.work, args.repeat, engines, args.feeds):
            stages = m["stages"]
            assert isinstance(stages, dict)
            staged = " / ".join(f"{stages.get(k, 0.0):.1f}" for k in ("detect", "read", "check", "write", "gold"))
            print(f"| {m['engine']} | {m['scale']} | {m['rows']:,} | {m['generate_s']:.1f} s | {m['floor_s']:.1f} s "
                  f"| {m['run_s']:.1f} s | {m['ratio']:.1f}x | {staged} s | {m['run_mb']:.0f} MiB "
                  f"({m['floor_mb']:.0f} MiB) |", flush=True)


if __name__ == "__main__":
    main()
