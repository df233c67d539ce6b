"""Funnel: sessions reaching view -> cart -> purchase per day and over the chosen days, with conversion and
drop-off rates (the clickstream has no product category, so days are the only filter)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from shoplake.dashboard import data
from shoplake.dashboard.kpis import count, percent, ratio
from shoplake.dashboard.widgets import Context, beside, date_range, table

_DAYS = """
select session_date, sessions, view_sessions, cart_sessions, purchase_sessions, view_to_cart, cart_to_purchase,
  view_to_purchase
from gold.agg_funnel_daily
order by session_date
"""
STEPS = (("view", "view_sessions"), ("cart", "cart_sessions"), ("purchase", "purchase_sessions"))


def overall(frame: pd.DataFrame) -> dict[str, float]:
    """The funnel over several days: the days' sessions added up, the rates computed from the sums."""
    view, cart, purchase = (float(frame[c].sum()) for _, c in STEPS)
    return {"sessions": float(frame.sessions.sum()), "view": view, "cart": cart, "purchase": purchase,
            "view_to_cart": ratio(cart, view, cap=True), "cart_to_purchase": ratio(purchase, cart, cap=True),
            "view_to_purchase": ratio(purchase, view, cap=True)}


def render(ctx: Context) -> None:
    st.title("Funnel")
    every_day = data.query(ctx.lake, _DAYS)
    if every_day.empty:
        st.info("No sessions in the lake yet.")
        return
    every_day["session_date"] = pd.to_datetime(every_day["session_date"]).dt.date
    start, end = date_range("funnel_days", min(every_day.session_date), max(every_day.session_date))
    shown = every_day[(every_day.session_date >= start) & (every_day.session_date <= end)]
    total = overall(shown)
    st.caption(f"{start:%Y-%m-%d} to {end:%Y-%m-%d} · every session of the clickstream")

    figures = st.columns(6)
    figures[0].metric("Sessions", count(total["sessions"]))
    figures[1].metric("Viewed", count(total["view"]))
    figures[2].metric("Carted", count(total["cart"]))
    figures[3].metric("Purchased", count(total["purchase"]))
    figures[4].metric("View → purchase", percent(total["view_to_purchase"]))
    figures[5].metric("Cart drop-off", percent(1 - total["cart_to_purchase"]))

    with beside("funnel", "drop_off"):
        st.subheader("Over the chosen days")
        steps = pd.DataFrame({"step": [s for s, _ in STEPS], "sessions": [total[s] for s, _ in STEPS],
                              "order": range(len(STEPS))})
        chart = alt.Chart(steps).mark_bar().encode(
            y=alt.Y("step:N", sort=alt.SortField("order"), title=None), x=alt.X("sessions:Q", title="sessions"),
            tooltip=["step:N", alt.Tooltip("sessions:Q", format=",")])
        st.altair_chart(chart, width="stretch")
        rates = pd.DataFrame({
            "step": ["view → cart", "cart → purchase", "view → purchase"],
            "conversion": [total["view_to_cart"], total["cart_to_purchase"], total["view_to_purchase"]]})
        rates["drop_off"] = 1 - rates.conversion
        table(rates, {"conversion": percent, "drop_off": percent})

    with beside("days"):
        st.subheader("Per day")
        long = shown.melt(id_vars=["session_date"], value_vars=["view_to_cart", "cart_to_purchase",
                                                                "view_to_purchase"], var_name="rate")
        long["day"] = [f"{d:%Y-%m-%d}" for d in long.session_date]  # one tick per day, not a time axis
        chart = alt.Chart(long).mark_line(point=True).encode(
            x=alt.X("day:O", title="day", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("value:Q", title="conversion", axis=alt.Axis(format="%")), color=alt.Color("rate:N", title=None),
            tooltip=["day:O", "rate:N", alt.Tooltip("value:Q", format=".1%")])
        st.altair_chart(chart, width="stretch")
        table(shown, {"sessions": count, "view_sessions": count, "cart_sessions": count, "purchase_sessions": count,
                      "view_to_cart": percent, "cart_to_purchase": percent, "view_to_purchase": percent})
