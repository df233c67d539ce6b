"""Event-driven ingestion: files per second through a running watcher, and drop-to-gold latency.

    .venv/bin/python benchmarks/watch.py                    # DuckDB engine
    .venv/bin/python benchmarks/watch.py --engine spark     # the same on Spark

burst:   1,000 small files (one generated SCALE 0.01 day cut into parts) are hard-linked into the
         landing folder of a running watcher at once; timed from the first link to the last batch's end.
latency: a running watcher (engine already warm from a first day) gets a SCALE 0.01 day; its trigger
         file is renamed into place last. Timed from the trigger's arrival to the end of the batch
         (rows in silver and gold, files archived). The data files settle (unchanged for the settle
         interval) before the trigger arrives; a trigger that is one whole JSON object needs no settling
         itself, and there is no batching wait: the trigger starts the batch.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from shoplake.config import Settings  # noqa: E402
from shoplake.generate import generate  # noqa: E402
from shoplake.pipeline import BatchOutcome  # noqa: E402
from shoplake.watch import Watcher  # noqa: E402

SETTLE = 0.5


def split_day(source: Path, target: Path, pieces: int) -> int:
    target.mkdir(parents=True)
    files = sorted(p for p in source.iterdir() if p.suffix == ".csv")
    made = 0
    for i, path in enumerate(files):
        parts = pieces // len(files) + (1 if i < pieces % len(files) else 0)
        with path.open(newline="", encoding="utf-8") as handle:
            lines = list(csv.reader(handle))
        stem, day = path.stem.rsplit("_", 3)[0], "_".join(path.stem.rsplit("_", 3)[1:])
        for n in range(parts):
            with (target / f"{stem}_part{n:04d}_{day}.csv").open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows([lines[0], *lines[1:][n::parts]])
            made += 1
    return made


class Running:
    """A watcher in a thread, with the time each batch ended."""

    def __init__(self, settings: Settings) -> None:
        self.ended: list[tuple[float, BatchOutcome]] = []
        self.watcher = Watcher(settings, on_batch=lambda b: self.ended.append((time.perf_counter(), b)))
        self.thread = threading.Thread(target=self.watcher.run)
        self.thread.start()

    def wait(self, done: int, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while len(self.ended) < done or any(b.status != "succeeded" for _, b in self.ended):
            if any(b.status != "succeeded" for _, b in self.ended):
                raise SystemExit(f"a batch failed: {[b.error for _, b in self.ended]}")
            if time.monotonic() > deadline:
                raise SystemExit("timed out")
            time.sleep(0.02)

    def stop(self) -> None:
        self.watcher.stop.set()
        self.thread.join()


def settings_for(work: Path, engine: str, **extra: object) -> Settings:
    shutil.rmtree(work, ignore_errors=True)
    (work / "landing").mkdir(parents=True)
    return Settings(landing=work / "landing", lake=work / "lake", archive=work / "archive", engine=engine,
                    settle_seconds=SETTLE, scan_seconds=5, **extra)


def burst(work: Path, engine: str) -> None:
    day = work.parent / "burst_day"
    if not day.exists():
        generate(day, days=1, scale=0.01, seed=3)
    parts = work.parent / "burst_parts"
    shutil.rmtree(parts, ignore_errors=True)
    n = split_day(day, parts, 1000)
    settings = settings_for(work, engine)
    running = Running(settings)
    started = time.perf_counter()
    for path in sorted(parts.iterdir()):
        os.link(path, settings.landing / path.name)
    while any(settings.landing.iterdir()) or not running.ended:
        time.sleep(0.05)
    running.wait(len(running.ended))
    seconds = running.ended[-1][0] - started
    running.stop()
    rows = sum(f.rows_read for _, b in running.ended for f in b.files)
    print(f"burst  | {engine} | {n} files, {rows:,} rows | {len(running.ended)} batch(es) | {seconds:.1f} s | "
          f"{n / seconds:.0f} files/s (settle {SETTLE} s included)")


def latency(work: Path, engine: str, repeat: int) -> None:
    days = work.parent / "latency_days"
    if not days.exists():
        generate(days, days=1 + repeat, scale=0.01, seed=4)
    settings = settings_for(work, engine)
    running = Running(settings)
    by_day: dict[str, list[Path]] = {}
    for path in sorted(days.iterdir()):
        by_day.setdefault("_".join(path.stem.split("_")[-3:]), []).append(path)
    figures = []
    for i, (day, files) in enumerate(sorted(by_day.items())):
        trigger = next(p for p in files if p.name.startswith("trigger_"))
        for path in files:
            if path != trigger:
                shutil.copy(path, settings.landing / path.name)
        time.sleep(SETTLE * 2)  # the data files are in place before the trigger, as a sender would do it
        shutil.copy(trigger, settings.landing / f".{trigger.name}.tmp")
        arrived = time.perf_counter()
        os.rename(settings.landing / f".{trigger.name}.tmp", settings.landing / trigger.name)
        running.wait(i + 1)
        ended, batch = running.ended[i]
        rows = sum(f.rows_read for f in batch.files)
        if i == 0:
            print(f"latency | {engine} | warm-up day {day}: {ended - arrived:.2f} s")
            continue
        figures.append((ended - arrived, batch.seconds))
        print(f"latency | {engine} | day {day}: {rows:,} rows | drop -> gold {ended - arrived:.2f} s "
              f"(batch {batch.seconds:.2f} s, before it {ended - arrived - batch.seconds:.2f} s)")
    running.stop()
    best, batch_seconds = min(figures)
    print(f"latency | {engine} | best of {len(figures)}: {best:.2f} s (its batch {batch_seconds:.2f} s; "
          f"a whole trigger file needs no settling, the settle interval is {SETTLE} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="duckdb")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("burst", "latency"), help="run one of the two measures")
    args = parser.parse_args()
    work = HERE / "work" / "watch"
    if args.only != "latency":
        burst(work / f"burst_{args.engine}", args.engine)
    if args.only != "burst":
        latency(work / f"latency_{args.engine}", args.engine, args.repeat)


if __name__ == "__main__":
    main()
