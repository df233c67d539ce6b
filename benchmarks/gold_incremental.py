"""Times gold after a new day: incremental (only changed partitions rewritten) against a full rebuild.

    .venv/bin/python benchmarks/gold_incremental.py --scale 0.1 --scale 1

Per scale: `--days` generated days (default 2) are loaded one run per day, the last day's run with its
gold stage timed as the batch ran it. Then, on that same silver, the gold models are built twice more in
fresh processes from a copy of the gold tables as the day before left them: incrementally (told what the
last batch wrote, as the batch tells gold: its id and the silver versions it noted before writing), and
with a forced full rebuild; each reports wall seconds of the gold step, peak memory (max RSS), the
partitions of fact_sales computed and written, the models not computed at all, and the files and bytes
fact_sales's commit added. Results are equal (tests/layers/test_incremental.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
FACT = "fact_sales"

GOLD_STEP = """
import json, time
from pathlib import Path
from shoplake.config import Settings
from shoplake.contracts import load_contracts
from shoplake.engines import open_engine
from shoplake.landing.ledger import Ledger
from shoplake.layers import gold, silver, touched
s = Settings(lake=Path({lake!r}), engine={engine!r})
engine = open_engine(s.engine, temp_dir=Path({spill!r}), memory_limit=s.memory_limit, threads=s.threads)
contracts = load_contracts(s.contracts)
models = gold.load_models(s.models, contracts=contracts)
ledger = Ledger(s.state_db_url)
batch_id = ledger.batch_rows(1)[0]["batch_id"]
changes = touched.batch_changes(contracts, s.tables_root, batch_id, ledger.table_versions(batch_id))
ledger.close()
started = time.perf_counter()
available = silver.attach_silver(engine, contracts, s.tables_root)
built = gold.run_models(engine, models, {root!r}, available, parameters=s.model_parameters(), full={full!r},
                        tag=batch_id, changes=changes)
seconds = time.perf_counter() - started
engine.close()
print(json.dumps({{"seconds": seconds, "rewritten": built.rewritten.get({fact!r}, "not partitioned"),
                  "computed": built.recomputed.get({fact!r}), "rows": built.built.get({fact!r}),
                  "not_computed": sorted(m for m, p in built.recomputed.items() if p == [])}}))
"""


def child(code: str) -> tuple[float, dict[str, object]]:
    """Run Python code in a fresh process; returns its peak RSS in MiB and the JSON it printed last."""
    report_rss = "\nimport resource; print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    proc = subprocess.run([sys.executable, "-c", code + report_rss], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{proc.stderr}")
    lines = proc.stdout.strip().splitlines()
    return int(lines[-1].split()[1]) / 1024, json.loads(lines[-2])


def last_commit(table: Path) -> tuple[int, int, int]:
    """Files added, bytes added and files removed by the table's latest commit."""
    log = sorted((table / "_delta_log").glob("*.json"))[-1]
    added = [json.loads(line)["add"] for line in log.read_text().splitlines() if '"add"' in line[:8]]
    removed = sum(1 for line in log.read_text().splitlines() if line.startswith('{"remove"'))
    return len(added), sum(int(a["size"]) for a in added), removed


def run_day(data: Path, generated: Path, day: str, engine: str) -> dict[str, float]:
    """Load one generated day into the lake; the run's stage seconds."""
    landing = data / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir(parents=True)
    for path in generated.glob(f"*_{day}.*"):
        shutil.copy(path, landing / path.name)
    code = ("import json; from pathlib import Path; from shoplake.config import Settings; "
            "from shoplake.pipeline import run; "
            f"r = run(Settings(landing=Path({str(landing)!r}), lake=Path({str(data / 'lake')!r}), "
            f"archive=Path({str(data / 'archive')!r}), engine={engine!r})); "
            "assert not r.failed, [b.error for b in r.batches]; print(json.dumps(r.seconds))")
    return child(code)[1]  # type: ignore[return-value]


def measure(scale: float, days: int, engine: str, work: Path) -> dict[str, object]:
    from shoplake.generate import generate

    data = work / f"scale_{scale}_{engine}"
    shutil.rmtree(data, ignore_errors=True)
    generated = work / f"generated_{scale}_{days}"
    if not generated.exists():
        generate(generated, days=days, scale=scale, seed=42)
    names = sorted(p.stem.removeprefix("orders_") for p in generated.glob("orders_*.csv"))  # 2026_01_05, ...
    for day in names[:-1]:
        run_day(data, generated, day, engine)
    before = data / "gold_before"
    shutil.copytree(data / "lake" / "gold", before)  # the gold tables as the day before left them
    batch = run_day(data, generated, names[-1], engine)
    results: dict[str, object] = {"scale": scale, "days": days, "engine": engine,
                                  "batch gold stage": round(batch.get("gold", 0.0), 2)}
    for label, full in (("incremental", False), ("full", True)):
        root = data / label
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(before, root / "gold")
        started = time.perf_counter()
        rss, out = child(GOLD_STEP.format(lake=str(data / "lake"), engine=engine, spill=str(data / "spill"),
                                          root=str(root), full=full, fact=FACT))
        files, size, removed = last_commit(root / "gold" / FACT)
        results[label] = {"seconds": round(float(out["seconds"]), 2),  # type: ignore[arg-type]
                          "process": round(time.perf_counter() - started, 2), "rss_mib": round(rss),
                          "fact_rows": out["rows"], "fact_partitions": out["rewritten"],
                          "fact_computed": out["computed"], "not_computed": out["not_computed"],
                          "fact_files_added": files, "fact_mib_added": round(size / 2**20, 1),
                          "fact_files_removed": removed}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, action="append")
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--engine", default="duckdb")
    parser.add_argument("--work", type=Path, default=HERE / "work" / "gold_incremental")
    args = parser.parse_args()
    rows = [measure(scale, args.days, args.engine, args.work) for scale in args.scale or [0.1]]
    print(f"| scale | days | engine | batch gold stage | way | gold seconds | peak RSS | {FACT} rows | "
          "partitions computed | partitions rewritten | models not computed | files added (MiB) | files removed |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def shown(parts: object) -> str:
        return "all" if parts is None else ", ".join(parts) or "none" if isinstance(parts, list) else str(parts)

    for r in rows:
        for label in ("incremental", "full"):
            m = r[label]
            assert isinstance(m, dict)
            skipped = m["not_computed"]
            print(f"| {r['scale']} | {r['days']} | {r['engine']} | {r['batch gold stage']} s | {label} | "
                  f"{m['seconds']} s | {m['rss_mib']} MiB | {m['fact_rows']:,} | {shown(m['fact_computed'])} | "
                  f"{shown(m['fact_partitions'])} | {', '.join(skipped) if skipped else 'none'} | "
                  f"{m['fact_files_added']} ({m['fact_mib_added']}) | {m['fact_files_removed']} |")


if __name__ == "__main__":
    main()
