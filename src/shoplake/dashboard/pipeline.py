"""Pipeline health: batches and their stages, the file ledger, the quarantine browser (by feed, rule and file,
raw values and every reason), check history, and the monitor's freshness and volume findings. Read-only:
replaying a quarantine stays a command (`shoplake quarantine replay FEED`)."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from shoplake.dashboard import store
from shoplake.dashboard.data import versions
from shoplake.dashboard.kpis import DEFINITIONS, count, percent, ratio
from shoplake.dashboard.widgets import Context, beside, table
from shoplake.landing.ledger import FAILED, ROLLED_BACK

QUARANTINE_ROWS = 200  # rows of a feed's quarantine shown at once


def render(ctx: Context) -> None:
    st.title("Pipeline health")
    settings = ctx.settings
    try:
        stamp = store.marker(settings)
    except store.StoreMissing as missing:
        st.info(f"{missing} Run `shoplake run` first.")
        return
    batches = store.batches(settings, stamp)
    files = store.files(settings, stamp)
    read, quarantined = float(files.rows_read.fillna(0).sum()), float(files.rows_quarantined.fillna(0).sum())
    figures = st.columns(5)
    figures[0].metric("Batches", count(len(batches)))
    figures[1].metric("Failed batches", count(int(batches.status.isin([FAILED, ROLLED_BACK]).sum())))
    figures[2].metric("Files", count(len(files)))
    figures[3].metric("Rows read", count(read))
    figures[4].metric("Quarantine rate", percent(ratio(quarantined, read)))

    # One long page rather than tabs: a person scrolls from the alerts down to the row that caused them.
    _alerts(ctx, stamp)
    _batches(batches)
    _checks(store.checks(settings, stamp))
    _quarantine(ctx, store.rules(settings, stamp), files)
    _ledger(files)


def _batches(batches: pd.DataFrame) -> None:
    stages = [c for c in batches.columns if c.endswith("_s")]
    with beside("reconciled"):
        st.subheader("Batches and their stages")
        if stages and not batches.empty:
            long = batches.melt(id_vars=["batch_id"], value_vars=stages, var_name="stage", value_name="seconds")
            long["stage"] = long.stage.str.removesuffix("_s")
            chart = alt.Chart(long.dropna()).mark_bar().encode(
                y=alt.Y("batch_id:N", title=None, sort=None), x=alt.X("seconds:Q", stack="zero", title="seconds"),
                color=alt.Color("stage:N"), tooltip=["batch_id:N", "stage:N", alt.Tooltip("seconds:Q", format=".2f")])
            st.altair_chart(chart, width="stretch")
        table(batches[["batch_id", "business_date", "kind", "status", "files", "rows_read", "rows_loaded",
                       "rows_quarantined", *stages]],
              {"files": count, "rows_read": count, "rows_loaded": count, "rows_quarantined": count,
               **{s: (lambda v: "-" if pd.isna(v) else f"{v:.2f}") for s in stages}})


def _ledger(files: pd.DataFrame) -> None:
    st.subheader("File ledger")
    st.caption(DEFINITIONS["reconciled"].replace("**", ""))
    left, right = st.columns(2)
    feeds = left.multiselect("Feed", sorted(files.feed.dropna().unique()), key="ledger_feeds",
                             placeholder="every feed")
    statuses = right.multiselect("Status", sorted(files.status.dropna().unique()), key="ledger_statuses",
                                 placeholder="every status")
    keep = pd.Series(True, index=files.index)
    if feeds:
        keep &= files.feed.isin(feeds)
    if statuses:
        keep &= files.status.isin(statuses)
    shown = files[keep]
    st.dataframe(shown, hide_index=True, width="stretch")


def _quarantine(ctx: Context, rules: pd.DataFrame, files: pd.DataFrame) -> None:
    st.subheader("Quarantine browser")
    st.caption(DEFINITIONS["quarantine"].replace("**", "") + " Replay a feed with `shoplake quarantine replay FEED`.")
    feeds = sorted(set(files.feed[files.rows_quarantined.fillna(0) > 0].dropna()))
    if not feeds:
        st.success("No row is in quarantine.")
        return
    feed_box, rule_box, file_box = st.columns(3)
    feed = feed_box.selectbox("Feed", feeds, key="quarantine_feed")
    failed = rules[rules.feed == feed].groupby("rule", as_index=False).failed_rows.sum().sort_values(
        "failed_rows", ascending=False)
    rule = rule_box.selectbox("Rule", ["every rule", *failed.rule], key="quarantine_rule")
    names = files.relative[(files.feed == feed) & (files.rows_quarantined.fillna(0) > 0)].tolist()
    file = file_box.selectbox("File", ["every file", *names], key="quarantine_file")
    with beside("quarantine"):
        table(failed, {"failed_rows": count})
    page = _quarantine_page(ctx.settings, versions(ctx.lake, (("quarantine", feed),)), feed,
                            None if rule == "every rule" else rule, None if file == "every file" else file)
    st.caption(f"{count(page['matched'])} quarantined row(s) of {feed} match; the first {len(page['rows'])} shown")
    st.dataframe(pd.DataFrame(page["rows"], columns=page["columns"]).astype(str), hide_index=True, width="stretch")


@st.cache_data(show_spinner=False, max_entries=64)
def _quarantine_page(_settings: Any, stamp: tuple[int | None, ...], feed: str, rule: str | None,
                     file: str | None) -> dict[str, Any]:
    from shoplake import tables

    # Read with DuckDB whatever engine the project runs: the dashboard answers in a second, not a JVM start.
    page = tables.quarantine_rows(_settings.model_copy(update={"engine": "duckdb"}), feed, rule=rule, file=file,
                                  limit=QUARANTINE_ROWS)
    return {"columns": page.columns, "rows": page.rows, "matched": page.matched}


def _checks(checks: pd.DataFrame) -> None:
    with beside("checks"):
        st.subheader("Check history")
        if checks.empty:
            st.caption("no check has run yet")
            return
        per_batch = checks.groupby("batch_id", as_index=False).agg(checked_at=("checked_at", "max"),
                                                                   checks=("check_name", "count"),
                                                                   passed=("passed", "sum"))
        per_batch["failed"] = per_batch.checks - per_batch.passed
        table(per_batch.sort_values("checked_at", ascending=False), {"checks": count, "passed": count,
                                                                      "failed": count})
    st.dataframe(checks, hide_index=True, width="stretch")


def _alerts(ctx: Context, stamp: tuple[Any, ...]) -> None:
    findings, feeds = _monitor(ctx.settings, stamp)
    with beside("freshness"):
        st.subheader("Freshness and volume")
        if findings.empty:
            st.success("The monitor finds nothing wrong.")
        else:
            table(findings)
    st.dataframe(feeds, hide_index=True, width="stretch")


@st.cache_data(show_spinner=False, max_entries=8, ttl=60)
def _monitor(_settings: Any, stamp: tuple[Any, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    # Freshness depends on the clock too: a minute's cache (ttl) keeps a late feed from looking on time.
    from shoplake.monitor import monitor

    report = monitor(_settings)
    findings = pd.DataFrame([{"level": f.level.value, "check": f.check.value, "feed": f.feed,
                              "business_date": f.business_date, "message": f.message} for f in report.findings],
                            columns=["level", "check", "feed", "business_date", "message"])
    feeds = pd.DataFrame([{"feed": name, **{k: v for k, v in facts.items() if not isinstance(v, dict | list)}}
                          for name, facts in report.feeds.items()])
    return findings, feeds
