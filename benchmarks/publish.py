"""Times `shoplake publish` of a lake's gold into PostgreSQL, whole and after an incremental day, in rows
per second against the floor: a plain COPY of the same rows (already rendered as CSV) into bare tables
without keys, indexes, foreign keys or comments.

    .venv/bin/python benchmarks/publish.py --scale 0.01            # a quick check
    .venv/bin/python benchmarks/publish.py --scale 1               # the issue's SCALE 1

Without --to it starts a PostgreSQL server of its own under a temporary folder (as the tests do).
The lake is built once per scale under benchmarks/work/publish-<scale> (DuckDB engine, two days: the
first published whole, the second incrementally).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # tests.pg: the same server start as the tests


def build_lake(base: Path, scale: float) -> tuple[Any, Path]:
    from shoplake.config import Settings
    from shoplake.generate import generate
    from shoplake.pipeline import run

    days = base / "days"
    if not days.exists():
        generate(days, days=2, scale=scale, defect_rate=0.02, seed=7)
    shutil.rmtree(base / "lake", ignore_errors=True)
    shutil.rmtree(base / "archive", ignore_errors=True)
    shutil.rmtree(base / "landing", ignore_errors=True)
    (base / "landing").mkdir(parents=True)
    for path in days.glob("*_2026_01_05.*"):
        shutil.copy(path, base / "landing" / path.name)
    settings = Settings(landing=base / "landing", lake=base / "lake", archive=base / "archive")
    run(settings)
    return settings, days


def land_second_day(settings: Any, days: Path) -> None:
    from shoplake.pipeline import run

    for path in days.glob("*_2026_01_06.*"):
        shutil.copy(path, Path(str(settings.landing)) / path.name)
    run(settings)


Rendered = list[tuple[str, list[tuple[str, str]], list[tuple[bytes, int]]]]  # table, columns, (CSV, rows)


def floor_copy(url: str, specs: Rendered) -> float:
    """Seconds to COPY pre-rendered CSV into bare tables (created beforehand, not timed), one transaction."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as conn:
        conn.execute("DROP SCHEMA IF EXISTS floor CASCADE")
        conn.execute("CREATE SCHEMA floor")
        for name, columns, _ in specs:
            conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier("floor", name), sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(kind)) for c, kind in columns)))
        conn.commit()
        started = time.perf_counter()
        for name, columns, chunks in specs:
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
                sql.Identifier("floor", name), sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns))
            with conn.cursor() as cursor, cursor.copy(statement) as copy:
                for chunk, _ in chunks:
                    copy.write(chunk)
        conn.commit()
        return time.perf_counter() - started


def rendered(settings: Any, since: dict[str, int] | None) -> Rendered:
    """Every gold table's CSV chunks (only the partitions changed since `since` when given)."""
    from shoplake.engines import postgres_io

    out = []
    for table in sorted((Path(str(settings.lake)) / "gold").iterdir()):
        snap = postgres_io.snapshot(str(table))
        if snap is None:
            continue
        values = None
        if since is not None:
            if since.get(table.name) == snap.version:
                continue
            if snap.partition is not None and table.name in since:
                values = postgres_io.changed_partitions(str(table), since[table.name], snap.partition)
        names = [c for c, _ in snap.columns]
        chunks = list(postgres_io.csv_chunks(str(table), snap.version, names, partition=snap.partition,
                                             values=values))
        out.append((table.name, list(snap.columns), chunks))
    return out


def published(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT target_table, delta_version FROM shoplake.publish_state "
                            "WHERE target_schema = 'warehouse'").fetchall()
    return {str(t): int(v) for t, v in rows}


def measure(settings: Any, url: str, label: str, since: dict[str, int] | None) -> dict[str, Any]:
    from shoplake.publish import publish

    chunks = rendered(settings, since)
    floor = floor_copy(url, chunks)
    started = time.perf_counter()
    report = publish(settings, to=url)
    seconds = time.perf_counter() - started
    rows = report.rows_copied
    slowest = sorted(report.tables, key=lambda t: -t.seconds)[:5]
    print(f"{label}: slowest tables " + ", ".join(f"{t.table} {t.action} {t.rows_copied} rows {t.seconds:.2f} s"
                                                  for t in slowest))
    return {"step": label, "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds if seconds else 0.0,
            "floor_rows": sum(n for _, _, table in chunks for _, n in table), "floor_seconds": floor}


@contextlib.contextmanager
def target(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.pg import running_server

    with running_server() as server:
        yield server.new_database("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--to", default=None, help="postgresql://user@host/db (default: a server of its own)")
    args = parser.parse_args()
    base = HERE / "work" / f"publish-{args.scale:g}"
    built = time.perf_counter()
    settings, days = build_lake(base, args.scale)
    print(f"lake of day 1 built in {time.perf_counter() - built:.1f} s (not part of the figures)")
    with target(args.to) as url:
        results = [measure(settings, url, "publish, whole gold (day 1)", None)]
        land_second_day(settings, days)
        results.append(measure(settings, url, "publish, incremental day 2", published(url)))
    print(f"{'step':<32} {'rows':>10} {'seconds':>8} {'rows/s':>10} {'floor s':>8} {'floor rows/s':>12} {'x floor':>8}")
    for r in results:
        floor_rate = r["floor_rows"] / r["floor_seconds"] if r["floor_seconds"] else 0.0
        print(f"{r['step']:<32} {r['rows']:>10} {r['seconds']:>8.2f} {r['rows_per_s']:>10.0f} "
              f"{r['floor_seconds']:>8.2f} {floor_rate:>12.0f} {r['seconds'] / max(r['floor_seconds'], 1e-9):>8.1f}")


if __name__ == "__main__":
    main()
