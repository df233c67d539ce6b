"""Times the SCD2 apply of one day of customer changes onto dimensions of growing size.

    .venv/bin/python benchmarks/scd2.py --customers 1000000 --customers 4000000

Day 1 loads N customers (not timed). Day 2 holds 5 % of them changed (a tracked column, `city`) and
1 % new customers; its run is timed in a fresh process, with its peak memory (max RSS), the seconds of
its write stage (where the SCD2 merge runs) and the files the merge's commit removed and added, read
from the silver table's Delta history. The cost should follow the changed rows, not the dimension.
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
COLUMNS = ("customer_id, first_name, last_name, email, phone, birth_date, city, country, segment, "
           "lifecycle_stage, created_at, updated_at")


def write_day(path: Path, query: str) -> int:
    """Write one customers CSV from a DuckDB query over `range`; returns its rows."""
    code = ("import duckdb; con = duckdb.connect(); con.execute('set enable_progress_bar=false'); "
            f"con.execute({f'COPY ({query}) TO {str(path)!r} (HEADER)'!r}); "
            f"print(con.execute({f'select count(*) from read_csv({str(path)!r})'!r}).fetchone()[0])")
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.strip())


def customers(first: int, count: int, *, city: str, updated: str) -> str:
    """`count` customers from id `first`, in the built-in contract's columns."""
    return (f"select i as customer_id, 'First' || i as first_name, 'Last' || i as last_name, "
            f"'customer' || i || '@example.com' as email, '+1 555 ' || lpad(cast(i % 10000000 as varchar), 7, '0') "
            f"as phone, date '1980-01-01' + cast(i % 10000 as integer) as birth_date, {city} as city, 'US' as country, "
            f"'consumer' as segment, 'active' as lifecycle_stage, timestamp '2026-01-01 08:00:00' as created_at, "
            f"timestamp {updated!r} as updated_at from range({first}, {first + count}) t(i)")


def run_day(landing: Path, lake: Path, archive: Path) -> tuple[float, float, dict[str, object]]:
    code = (
        "import json, resource; from pathlib import Path; from shoplake.config import Settings; "
        "from shoplake.pipeline import run; "
        f"r = run(Settings(landing=Path({str(landing)!r}), lake=Path({str(lake)!r}), archive=Path({str(archive)!r}))); "
        "print(json.dumps({'seconds': r.seconds, 'failed': r.failed, "
        "'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"run failed:\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return seconds, result["rss"] / 1024, result


def merge_files(table: Path) -> tuple[int, int, int]:
    """Files the last MERGE commit removed and added, and the table's files now."""
    from deltalake import DeltaTable

    delta = DeltaTable(str(table))
    for commit in delta.history():
        if commit.get("operation") == "MERGE":
            metrics = commit.get("operationMetrics") or {}
            return (int(metrics.get("num_target_files_removed", 0)), int(metrics.get("num_target_files_added", 0)),
                    len(delta.file_uris()))
    return 0, 0, len(delta.file_uris())


def measure(size: int, work: Path) -> dict[str, object]:
    data = work / f"scd2_{size}"
    shutil.rmtree(data, ignore_errors=True)
    landing, lake, archive = data / "landing", data / "lake", data / "archive"
    landing.mkdir(parents=True)
    write_day(landing / "customers_2026_01_01.csv",
              customers(1, size, city="'Springfield'", updated="2026-01-01 08:00:00"))
    run_day(landing, lake, archive)
    changed, new = size // 20, size // 100
    # Every 20th customer moves: the changed keys are spread over the whole dimension, as a day's are.
    moved = customers(1, size, city="'Shelbyville'", updated="2026-01-02 09:00:00").replace(
        f"range(1, {1 + size}) t(i)", f"range(1, {1 + size}, 20) t(i)")
    joined = customers(size + 1, new, city="'Ogdenville'", updated="2026-01-02 09:00:00")
    write_day(landing / "customers_2026_01_02.csv", f"{moved} union all {joined}")
    seconds, rss, result = run_day(landing, lake, archive)
    if result["failed"]:
        raise SystemExit(f"day 2 failed: {result}")
    stages = result["seconds"]
    assert isinstance(stages, dict)
    removed, added, files = merge_files(lake / "silver" / "customers")
    return {"size": size, "changed": changed, "new": new, "run_s": seconds, "write_s": stages.get("write", 0.0),
            "rss": rss, "removed": removed, "added": added, "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, action="append", required=True, help="dimension size (repeatable)")
    parser.add_argument("--work", type=Path, default=HERE / "work")
    args = parser.parse_args()
    print("| customers | changed + new | day-2 run | of which write (SCD2 merge) | peak RSS | merge files "
          "removed / added (table files) |")
    print("|---|---|---|---|---|---|")
    for size in args.customers:
        m = measure(size, args.work)
        print(f"| {m['size']:,} | {m['changed']:,} + {m['new']:,} | {m['run_s']:.1f} s | {m['write_s']:.1f} s "
              f"| {m['rss']:.0f} MiB | {m['removed']} / {m['added']} ({m['files']}) |", flush=True)


if __name__ == "__main__":
    main()
