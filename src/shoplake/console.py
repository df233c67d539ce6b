"""What the CLI shows: run, batch and dry-run summaries, lake tables and KPIs, as Rich text.

The console never reads markup: file names, headers and values come from outside and are shown as they
are; styling is applied with `Text` objects only.
"""

from __future__ import annotations

import re
import shutil
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlglot
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlglot import exp

from shoplake.config import Settings
from shoplake.dryrun import DryRunReport
from shoplake.landing.ledger import DUPLICATE, FAILED, LOADED, SUCCEEDED
from shoplake.maintain import MaintainReport
from shoplake.pipeline import BatchOutcome, FileOutcome, RunReport
from shoplake.tables import KeyHistory, Page, query_table, top_reasons

console = Console(width=None if Console().is_terminal else 160, markup=False, emoji=False)


def say(message: str | Text) -> None:
    """One message: a line the console never wraps or cuts (a terminal wraps it where it must)."""
    console.print(message, soft_wrap=True)


def print_dry_run(report: DryRunReport) -> None:
    """Per file: its feed, rows and what a run would do with them; exit 1 if a run would fail."""
    table = Table(title="dry run: nothing was written")
    for name in ("file", "feed", "read", "would load", "quarantine", "duplicates", "note"):
        numbers = ("read", "would load", "quarantine", "duplicates")
        table.add_column(name, justify="right" if name in numbers else "left")
    for f in report.files:
        table.add_row(f.file, f.feed, str(f.rows_read), str(f.rows_loaded), str(f.rows_quarantined),
                      str(f.rows_duplicate), f.note)
    console.print(table)
    for f in report.files:
        for r in f.reasons:
            say(f"{f.file}: {'warning' if r.warning else 'quarantine'} {r.rule}: {r.rows:,} row(s), e.g. {r.example}")
        if f.missing_model_columns:
            say(Text.assemble((f"{f.file}:", "yellow"), f" feed {f.feed} lacks column(s) the gold models read: "
                              + ", ".join(f.missing_model_columns)))
    for model, feeds in report.skipped_models.items():
        say(f"gold model {model} would be skipped: no file or silver table for {', '.join(feeds)}")
    for rule, rows in report.fatal.items():
        say(Text.assemble(("batch would fail:", "red"), f" fail_batch rule {rule} ({rows:,} rows)"))
    for path in report.unrecognised:
        say(Text.assemble(("matches no contract:", "yellow"), " ", path))
    if report.failed:
        raise typer.Exit(1)


def print_batch(outcome: BatchOutcome) -> None:
    loaded = sum(f.rows_loaded for f in outcome.files)
    quarantined = sum(f.rows_quarantined for f in outcome.files)
    failed = [f for f in outcome.files if f.status == FAILED]
    say(Text.assemble(
        f"{outcome.business_date} batch {outcome.batch_id} ({outcome.reason}): ", _colour(outcome.status),
        f", {len(outcome.files)} file(s), {loaded:,} rows loaded, {quarantined:,} quarantined, "
        f"{len(failed)} file(s) failed, {outcome.seconds:.1f} s"))
    if outcome.error:
        say(Text(f"  {outcome.error}", style="red"))
    for f in (f for f in outcome.files if f.too_quarantined):
        say(Text.assemble(("  too many rows quarantined:", "red"), " ", _quarantine_note(f)))


def print_page(page: Page) -> None:
    """Rows of a lake table as a table; every value shown as text, control characters made visible."""
    at = f" at {page.as_of}" if page.as_of else ""
    table = Table(title=Text(f"{page.table}{at}: {len(page.rows):,} of {page.matched:,} row(s)"))
    for column in page.columns:
        table.add_column(Text(column), overflow="fold")
    for row in page.rows:
        table.add_row(*(_cell(value) for value in row))
    console.print(table)


def print_history(history: KeyHistory) -> None:
    """A key's versions (or rows) with where each came from; the Delta version its batch committed."""
    key = ", ".join(f"{k}={v}" for k, v in history.key.items())
    tracked = f", tracked: {', '.join(history.tracked)}" if history.tracked else ""
    what = (f"{len(history.rows)} version(s), SCD2{tracked}" if history.scd2
            else f"{len(history.rows)} row(s), {history.mode}")
    table = Table(title=Text(f"{history.table} {_shown(key)}: {what}"))
    # file and row in one column, the file by its name: the table stays readable at 160 characters
    columns = list(history.columns)
    merged = "_source_file" in columns and "_row_number" in columns
    dropped = {"_row_number", "_ingested_at"} if merged and history.scd2 else {"_row_number"} if merged else set()
    keep = [i for i, c in enumerate(columns) if c not in dropped]
    for i in keep:
        table.add_column(Text("from" if merged and columns[i] == "_source_file" else columns[i]), overflow="fold")
    batches = "_batch_id" in columns  # the Delta version a row's batch committed: only for rows that name one
    if batches:
        table.add_column("table version", justify="right")
    for row, version in zip(history.rows, history.table_versions, strict=True):
        cells = []
        for i in keep:
            value = row[i]
            if merged and columns[i] == "_source_file" and value is not None:
                value = f"{Path(str(value)).name} row {row[columns.index('_row_number')]}"
            cells.append(_cell(value))
        table.add_row(*cells, *([_cell(version)] if batches else []))
    console.print(table)
    if history.note:
        say(Text.assemble(("note:", "yellow"), " ", history.note))


def print_maintain(report: MaintainReport) -> None:
    """Per table: files compacted and vacuumed; the archived files deleted; the totals."""
    done = "would be deleted" if report.dry_run else "deleted"
    table = Table(title=Text("maintain (dry run: nothing was changed)" if report.dry_run else "maintain"))
    for name in ("table", "files compacted", "into", "old files to delete" if report.dry_run else "old files deleted",
                 "bytes"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for t in report.tables:
        compacted = "-" if report.dry_run else f"{t.files_compacted:,}"
        into = "-" if report.dry_run else f"{t.files_written:,}"
        size = "?" if t.bytes_vacuumed is None else f"{t.bytes_vacuumed:,}"
        table.add_row(t.table, compacted, into, f"{len(t.files_vacuumed):,}", size)
    console.print(table)
    for line in report.recovered:
        say(Text.assemble(("recovered:", "yellow"), " ", line))
    if report.dry_run:
        for t in report.tables:
            for name in t.files_vacuumed:
                say(f"would vacuum {t.table}/{_shown(name)}")
    for a in report.archived:
        say(f"{'would delete' if report.dry_run else 'deleted'} archived file {_shown(a.path)} "
            f"(archived {a.archived_at:%Y-%m-%d}, {a.size:,} bytes)")
    kept = ("archived files are kept forever (maintenance.archive_retention_days: null)"
            if report.archive_retention_days is None else
            f"archived files older than {report.archive_retention_days:g} day(s): {len(report.archived):,} {done}")
    say(f"{sum(t.files_compacted for t in report.tables):,} small file(s) compacted, "
        f"{sum(len(t.files_vacuumed) for t in report.tables):,} table file(s) older than "
        f"{report.vacuum_retention_hours} hour(s) {done}; {kept}; {report.bytes_freed:,} bytes "
        f"{'would be freed' if report.dry_run else 'freed'} ({report.seconds:.1f} s)")


def _cell(value: Any) -> Text:
    return Text("NULL", style="dim") if value is None else Text(_shown(str(value)))


def _shown(text: str) -> str:
    # an escape sequence in a value would restyle or move the user's terminal: shown as \x1b instead
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def print_run(report: RunReport) -> None:
    for line in report.recovered:
        say(Text.assemble(("recovered:", "yellow"), " ", line))
    table = Table(title="files loaded")
    for name in ("date", "file", "feed", "status", "read", "loaded", "quarantined", "duplicates", "note"):
        # A rejected file's reason is shown whole (wrapped, long words folded): it says what to fix.
        table.add_column(name, justify="right" if name in ("read", "loaded", "quarantined", "duplicates") else "left",
                         overflow="fold" if name == "note" else "ellipsis")
    for batch in report.batches:
        for f in batch.files:
            table.add_row(str(batch.business_date), f.file, f.feed or "-", _colour(f.status), str(f.rows_read),
                          str(f.rows_loaded), str(f.rows_quarantined), str(f.rows_duplicate), f.error or "")
    for f in report.skipped_duplicates:
        table.add_row("", f.file, f.feed or "-", _colour(f.status), "", "", "", "", f.error or "")
    console.print(table)
    for batch in report.batches:
        if batch.status != SUCCEEDED:
            say(Text.assemble((f"batch {batch.batch_id} failed:", "red"), " ", batch.error or ""))
    for f in (f for batch in report.batches for f in batch.files if f.too_quarantined):
        say(Text.assemble(("too many rows quarantined:", "red"), " ", _quarantine_note(f)))
    for path in report.unrecognised:
        say(Text.assemble(("left in landing (matches no contract):", "yellow"), " ", path))
    if report.gold:
        say("gold: " + ", ".join(f"{name} ({rows} rows)" for name, rows in report.gold.items()))
    if report.gold_skipped:
        say(Text.assemble(("gold skipped:", "yellow"), " ",
                          "; ".join(f"{name} ({why})" for name, why in report.gold_skipped.items())))


def _quarantine_note(f: FileOutcome) -> str:
    return (f"{f.file}: {f.rows_quarantined:,} of {f.rows_read:,} rows ({f.rows_quarantined / f.rows_read:.0%}) "
            f"went to quarantine, above max_quarantine_rate {f.max_quarantine_rate:g} of feed {f.feed} (each row's "
            f"reasons are in the lake's quarantine/{f.feed}); fix the export or the contract (then `shoplake "
            f"quarantine replay {f.feed}`), or raise max_quarantine_rate in its contract")


def print_feeds(report: RunReport) -> None:
    totals: dict[str, list[int]] = {}
    for batch in report.batches:
        for f in batch.files:
            row = totals.setdefault(f.feed or "-", [0, 0, 0, 0, 0])
            for i, n in enumerate((1, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_duplicate)):
                row[i] += n
    table = Table(title=f"rows per feed ({len(report.batches)} batches)")
    for name in ("feed", "files", "read", "loaded", "quarantined", "duplicates"):
        table.add_column(name, justify="left" if name == "feed" else "right")
    for feed, row in sorted(totals.items()):
        table.add_row(feed, *(f"{n:,}" for n in row))
    console.print(table)
    failed = [f for b in report.batches for f in b.files if f.status != LOADED]
    for f in failed:
        say(Text.assemble((f"{f.file} {f.status}:", "red"), " ", f.error or ""))
    if report.gold:
        say("gold: " + ", ".join(f"{name} ({rows:,} rows)" for name, rows in report.gold.items()))


def print_quarantine(settings: Settings, report: RunReport) -> None:
    feeds = sorted({f.feed for b in report.batches for f in b.files if f.feed and f.rows_quarantined})
    table = Table(title="top quarantine reasons")
    for name in ("feed", "rule", "rows"):
        table.add_column(name)
    for feed in feeds:
        for rule, n in top_reasons(settings, feed, limit=3):
            table.add_row(feed, rule, str(n))
    console.print(table)


def print_kpis(settings: Settings) -> None:
    # By name: a partitioned table's columns need not come back in the model's order.
    names = ("order_date", "orders", "items", "gross_revenue", "net_revenue", "margin", "average_order_value",
             "return_rate", "sales_without_rate")
    query = exp.select(*(exp.column(n, quoted=True) for n in names)).from_(exp.table_("agg_daily_sales", "gold"))
    rows = query_table(settings, "gold", "agg_daily_sales", query)
    table = Table(title=f"headline KPIs (gold.agg_daily_sales, in {settings.reporting_currency})")
    for name in ("order_date", "orders", "items", "gross_revenue", "net_revenue", "margin", "avg order value",
                 "return rate", "sales without rate"):
        table.add_column(name, justify="right")
    for r in sorted(rows):
        order_date, orders, items, gross, net, margin, aov, return_rate, without_rate = r
        table.add_row(str(order_date), f"{orders:,}", f"{items:,}", f"{gross:,.2f}", f"{net:,.2f}", f"{margin:,.2f}",
                      f"{aov:,.2f}", f"{return_rate:.1%}", f"{without_rate:,}")
    console.print(table)


# Headline figures of the other marts, as fixed queries (no user text) over one gold table each.
_MART_HEADLINES = {
    "agg_customer_metrics": (
        "customers by lifecycle stage (gold.agg_customer_metrics)",
        "select lifecycle_stage, count(*) as customers, count(case when is_vip then 1 end) as vip, "
        "count(case when is_window_shopper then 1 end) as window_shoppers, sum(lifetime_value) as ltv "
        "from gold.agg_customer_metrics group by lifecycle_stage order by customers desc",
        ("lifecycle stage", "customers", "VIP", "window shoppers", "LTV")),
    "agg_funnel_daily": (
        "funnel per day (gold.agg_funnel_daily)",
        "select session_date, sessions, view_to_cart, cart_to_purchase, view_to_purchase "
        "from gold.agg_funnel_daily order by session_date",
        ("day", "sessions", "view -> cart", "cart -> purchase", "view -> purchase")),
    "agg_delivery_sla": (
        "delivery SLA per carrier (gold.agg_delivery_sla)",
        "select carrier, sum(shipments) as shipments, sum(delivered) as delivered, "
        "case when sum(on_time) + sum(late) = 0 then 0.0 else sum(on_time) / (sum(on_time) + sum(late)) end "
        "from gold.agg_delivery_sla group by carrier order by carrier",
        ("carrier", "shipments", "delivered", "on-time rate")),
}


def print_marts(settings: Settings) -> None:
    """A table of headline figures per mart that exists (customer metrics, funnel, delivery)."""
    for name, (title, sql, columns) in _MART_HEADLINES.items():
        query = sqlglot.parse_one(sql, dialect="duckdb")
        assert isinstance(query, exp.Select)
        rows = query_table(settings, "gold", name, query)
        if not rows:
            continue
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*(_figure(column, value) for column, value in zip(columns, row, strict=True)))
        console.print(table)


def history_hint(settings: Settings) -> str | None:
    """A `shoplake history` command for a customer with more than one version, if there is one."""
    query = sqlglot.parse_one("select min(customer_id) from silver.customers where _version > 1", dialect="duckdb")
    assert isinstance(query, exp.Select)
    rows = query_table(settings, "silver", "customers", query)
    if not rows or rows[0][0] is None:
        return None
    return f"{_self_command()} history silver/customers --key {rows[0][0]} --lake {settings.lake}"


def _figure(column: str, value: Any) -> str:
    if value is None:
        return ""
    if "->" in column or "rate" in column:
        return f"{value:.1%}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (float, Decimal)):
        return f"{value:,.2f}"
    return str(value)


def _self_command() -> str:
    """How the user can call this CLI again: `shoplake` when on PATH, else the path they used."""
    if shutil.which("shoplake"):
        return "shoplake"
    used = Path(sys.argv[0])
    try:
        return str(used.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(used)


def _colour(status: str) -> Text:
    return Text(status, style={LOADED: "green", SUCCEEDED: "green", FAILED: "red",
                               DUPLICATE: "yellow"}.get(status, ""))
