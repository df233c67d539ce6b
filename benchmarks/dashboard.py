"""Dashboard page render times: `streamlit run` over a lake, each page opened in the system chromium
(Playwright), timed until the app's run has ended: "open" loads the page's URL in a new tab (the browser
loads the app, the server reads with empty caches), "switch" clicks the page in the sidebar from another page
once its reads are cached (what a person moving between pages waits for).

    .venv/bin/python benchmarks/dashboard.py --scale 1            # generates + loads a SCALE 1 lake once
    .venv/bin/python benchmarks/dashboard.py --lake PATH          # an existing lake, read-only

Goal (issue 12): every page under 2 s on SCALE 1 data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from deltalake import DeltaTable

from shoplake.commands.dashboard import streamlit_command
from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.pipeline import run

WORK = Path(__file__).parent / "work"
# (URL path, sidebar title); "" is the default page (sales)
PAGES = (("", "Executive sales"), ("products", "Product performance"), ("funnel", "Funnel"),
         ("customers", "Customer 360"), ("pipeline", "Pipeline health"))
GOAL_SECONDS = 2.0


def lake_at(scale: float) -> Path:
    """A lake of two generated days at `scale`, built once under benchmarks/work/ and reused after."""
    root = WORK / f"dashboard_{scale:g}"
    lake = root / "lake"
    if (lake / "gold" / "agg_daily_sales" / "_delta_log").is_dir():
        return lake
    shutil.rmtree(root, ignore_errors=True)
    generate(root / "landing", days=2, scale=scale, defect_rate=0.01, seed=12)
    run(Settings(landing=root / "landing", lake=lake, archive=root / "archive", engine="duckdb"))
    return lake


def serve(lake: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(streamlit_command(str(lake), None, "127.0.0.1", port), cwd=lake.parent,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("streamlit did not start")


def finished(page: Any) -> None:
    page.wait_for_selector("h1", timeout=120_000)
    page.wait_for_timeout(100)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=120_000)


def timed(page: Any, action: Any) -> float:
    start = time.perf_counter()
    action()
    finished(page)
    return time.perf_counter() - start


def measure(lake: Path, chromium: str) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    customers = DeltaTable(str(lake / "gold" / "agg_customer_metrics")).to_pyarrow_table(
        columns=["email", "ltv_rank"]).sort_by("ltv_rank")
    email = str(customers.column("email")[0])
    process, url = serve(lake)
    results: dict[str, dict[str, float]] = {}
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path, title in PAGES:
                name = path or "sales"
                opened = timed(page, lambda path=path: page.goto(f"{url}/{path}"))
                if name == "customers":  # a customer's 360: a search, then the profile's own reads
                    box = page.get_by_label("Find a customer (id, e-mail or name)")
                    results["customer_profile"] = {"open_s": round(timed(page, lambda box=box: (
                        box.fill(email), page.keyboard.press("Enter"))), 2)}
                other = PAGES[0][1] if path else PAGES[1][1]
                timed(page, lambda other=other: page.get_by_role("link", name=other).click())
                switched = timed(page, lambda title=title: page.get_by_role("link", name=title).click())
                results[name] = {"open_s": round(opened, 2), "switch_s": round(switched, 2)}
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=15)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--lake", type=Path, help="an existing lake (read only); overrides --scale")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    lake = args.lake or lake_at(args.scale)
    results = measure(lake, args.chromium)
    rows = DeltaTable(str(lake / "gold" / "fact_sales")).to_pyarrow_dataset().count_rows()
    print(f"lake {lake} (fact_sales {rows:,} rows); goal: every page under {GOAL_SECONDS} s")
    print(f"{'page':<18}{'open s':>8}{'switch s':>10}")
    for name, figures in results.items():
        switch = f"{figures['switch_s']:>10.2f}" if "switch_s" in figures else f"{'-':>10}"
        print(f"{name:<18}{figures['open_s']:>8.2f}{switch}")
    print(json.dumps({"lake": str(lake), "fact_sales_rows": rows, "pages": results}))


if __name__ == "__main__":
    main()
