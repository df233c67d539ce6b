"""The dashboard in a real browser: `streamlit run` as a subprocess over a generated lake, Debian's chromium
driven by Playwright; every page renders its charts and tables with the gold tables' numbers, a filter
changes them, and each page's screenshot goes to docs/screenshots/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from playwright.sync_api import expect

from shoplake.commands.dashboard import streamlit_command
from shoplake.config import Settings
from shoplake.generate import generate
from shoplake.pipeline import run

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")  # Debian's package (make test installs it)
STARTUP_SECONDS = 30
PAGE_TIMEOUT_MS = 20_000


def chromium() -> str:
    """The system chromium; a missing one fails the test (make test installs it), it never skips."""
    found = next((p for p in CHROMIUM if os.access(p, os.X_OK)), None) or shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install -y chromium)")
    return found


def gold(lake: Path, name: str) -> Any:
    """A gold table read on its own, by deltalake: what the page's numbers must equal."""
    return DeltaTable(str(lake / "gold" / name)).to_pyarrow_table()


def dollars(value: float) -> str:
    return f"${value:,.2f}"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard")
    generate(root / "landing", days=2, scale=0.002, defect_rate=0.05, seed=5)
    settings = Settings(landing=root / "landing", lake=root / "lake", archive=root / "archive", engine="duckdb")
    report = run(settings)
    assert report.batches and all(b.status == "succeeded" for b in report.batches)
    return root / "lake"


@pytest.fixture(scope="module")
def server(lake: Path) -> Iterator[str]:
    with socket.socket() as probe:  # a free port, chosen by the OS
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (lake.parent / "streamlit.log").open("wb")
    process = subprocess.Popen(streamlit_command(str(lake), None, "127.0.0.1", port), cwd=lake.parent,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as answer:
                    if answer.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not become healthy: {(lake.parent / 'streamlit.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # the dashboard extra; make test installs it

    executable = chromium()
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = launched.new_page(viewport={"width": 1400, "height": 1000})
        yield page
        launched.close()


def open_page(page: Any, server: str, path: str) -> None:
    page.goto(f"{server}/{path}")
    # The page's title is written first; the script has run once its last element (a table) is there.
    page.wait_for_selector("h1", timeout=PAGE_TIMEOUT_MS)
    settled(page)


def settled(page: Any) -> None:
    """Wait until the app has finished its run (Streamlit marks its root with the script's state)."""
    page.wait_for_timeout(200)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=PAGE_TIMEOUT_MS)
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]').first.inner_text()


def value(page: Any, label: str) -> Any:
    """The value element of the metric labelled `label`."""
    box = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True)).first
    return box.locator('[data-testid="stMetricValue"]')


def metric(page: Any, label: str) -> str:
    return str(value(page, label).inner_text()).strip()


def charts(page: Any) -> int:
    """Charts drawn: Vega-Lite charts that have rendered their canvas or SVG."""
    page.wait_for_selector('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg',
                           timeout=PAGE_TIMEOUT_MS)
    return int(page.locator('[data-testid="stVegaLiteChart"]').count())


def table_texts(page: Any) -> list[str]:
    page.wait_for_selector('[data-testid="stTable"]', timeout=PAGE_TIMEOUT_MS)
    settled(page)
    return [str(t) for t in page.locator('[data-testid="stTable"]').all_inner_texts()]


def screenshot(page: Any, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the window is made as tall as that first."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = int(page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight"))
    page.set_viewport_size({"width": 1400, "height": min(max(height, 800), 4000)})
    settled(page)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def choose(page: Any, label: str, option: str) -> None:
    """Pick `option` in the multiselect labelled `label`, as a person would: click, type, Enter."""
    box = page.locator('[data-testid="stMultiSelect"]').filter(has=page.get_by_text(label, exact=True)).first
    box.locator("input").click()
    box.locator("input").fill(option)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    settled(page)


def test_sales_overview_shows_gold_numbers_and_a_category_filter_changes_them(browser: Any, server: str,
                                                                               lake: Path) -> None:
    daily = gold(lake, "agg_daily_sales")
    gross = sum(float(v) for v in daily.column("gross_revenue").to_pylist())
    orders = sum(daily.column("orders").to_pylist())
    open_page(browser, server, "")
    assert charts(browser) >= 1
    assert metric(browser, "Gross revenue") == dollars(gross)
    assert metric(browser, "Orders") == f"{orders:,}"
    days = "\n".join(table_texts(browser))
    for row in daily.to_pylist():  # every day's row, its numbers as the gold table has them
        assert f"{row['order_date']:%Y-%m-%d}" in days
        assert dollars(float(row["net_revenue"])) in days
    screenshot(browser, "sales")

    per_category = gold(lake, "agg_category_daily")
    category = str(per_category.column("category")[0])
    mine = per_category.filter(pc.equal(per_category.column("category"), category))
    choose(browser, "Category", category)
    expected = sum(float(v) for v in mine.column("gross_revenue").to_pylist())
    assert expected < gross
    expect(value(browser, "Gross revenue")).to_have_text(dollars(expected))
    expect(value(browser, "Orders")).to_have_text(f"{sum(mine.column('orders').to_pylist()):,}")
    assert category in browser.locator('[data-testid="stCaptionContainer"]').first.inner_text()


def test_product_performance_ranks_products_by_net_revenue(browser: Any, server: str, lake: Path) -> None:
    products = gold(lake, "agg_product_performance").to_pylist()
    best = min(products, key=lambda p: (p["revenue_rank"], p["product_id"]))
    open_page(browser, server, "products")
    assert charts(browser) >= 1
    assert metric(browser, "Net revenue") == dollars(sum(float(p["net_revenue"]) for p in products))
    assert metric(browser, "Products sold") == f"{len(products):,}"
    tables = table_texts(browser)
    assert any(best["sku"] in t and dollars(float(best["net_revenue"])) in t for t in tables)
    assert browser.locator('[data-testid="stMetric"]').filter(has=browser.get_by_text("Negative", exact=True)
                                                               ).count() == 1  # stock health
    screenshot(browser, "products")


def test_funnel_adds_up_the_days(browser: Any, server: str, lake: Path) -> None:
    funnel = gold(lake, "agg_funnel_daily").to_pylist()
    view = sum(d["view_sessions"] for d in funnel)
    purchase = sum(d["purchase_sessions"] for d in funnel)
    open_page(browser, server, "funnel")
    assert charts(browser) >= 2
    assert metric(browser, "Viewed") == f"{view:,}"
    assert metric(browser, "View → purchase") == f"{min(1.0, purchase / view) * 100:.1f} %"
    days = "\n".join(table_texts(browser))
    for day in funnel:
        assert f"{day['view_to_cart'] * 100:.1f} %" in days
    screenshot(browser, "funnel")


def test_customer_360_finds_a_vip_and_shows_their_history(browser: Any, server: str, lake: Path) -> None:
    customers = gold(lake, "agg_customer_metrics").to_pylist()
    vip = min((c for c in customers if c["is_vip"]), key=lambda c: (c["ltv_rank"], c["customer_id"]))
    versions = [v for v in gold(lake, "dim_customer").to_pylist() if v["customer_id"] == vip["customer_id"]]
    open_page(browser, server, "customers")
    assert any(vip["email"] in t for t in table_texts(browser))  # the VIP list
    browser.get_by_label("Find a customer (id, e-mail or name)").fill(vip["email"])
    browser.keyboard.press("Enter")
    settled(browser)
    browser.wait_for_selector('[data-testid="stMetric"]', timeout=PAGE_TIMEOUT_MS)
    assert metric(browser, "LTV") == dollars(float(vip["lifetime_value"]))
    assert metric(browser, "Orders") == f"{vip['orders']:,}"
    assert metric(browser, "Segment") == "vip · VIP"
    history = "\n".join(table_texts(browser))
    assert history.count(f"{versions[0]['valid_from']:%Y-%m-%d %H:%M:%S}") >= 1
    screenshot(browser, "customers")


def test_pipeline_health_shows_batches_ledger_and_quarantine(browser: Any, server: str, lake: Path) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{lake / '_state' / 'shoplake.db'}")
    with engine.connect() as conn:
        batches = conn.execute(sa.text("select batch_id, rows_read from batches")).all()
        files, quarantined = conn.execute(sa.text("select count(*), sum(rows_quarantined) from files")).one()
    engine.dispose()
    open_page(browser, server, "pipeline")
    assert charts(browser) >= 1
    assert metric(browser, "Batches") == str(len(batches))
    assert metric(browser, "Files") == str(files)
    assert metric(browser, "Rows read") == f"{sum(r for _, r in batches):,}"
    tables = "\n".join(table_texts(browser))
    assert all(batch_id in tables for batch_id, _ in batches)
    assert quarantined > 0
    # The quarantine browser: a feed with quarantined rows, its rules and their counts.
    assert browser.get_by_text("Quarantine browser").count() == 1
    assert browser.locator('[data-testid="stDataFrame"]').count() >= 2  # quarantined rows, the ledger
    screenshot(browser, "pipeline")


def test_the_command_binds_loopback_unless_told(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shoplake.cli import app
    from shoplake.commands import dashboard

    started: list[list[str]] = []
    monkeypatch.setattr(dashboard.subprocess, "run", lambda command, check: started.append(command) or
                        subprocess.CompletedProcess(command, 0))
    lake = str(tmp_path / "lake")
    assert CliRunner().invoke(app, ["dashboard", "--lake", lake]).exit_code == 0
    assert CliRunner().invoke(app, ["dashboard", "--lake", lake, "--host", "0.0.0.0", "--port", "9000"]).exit_code == 0
    first, second = started
    assert first[first.index("--server.address") + 1] == "127.0.0.1"
    assert first[first.index("--server.port") + 1] == "8501"
    assert (second[second.index("--server.address") + 1], second[second.index("--server.port") + 1]) == ("0.0.0.0",
                                                                                                        "9000")
    assert first[first.index("--lake") + 1] == str(Path(lake).resolve())
