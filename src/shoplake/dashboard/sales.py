"""Executive sales overview: daily gross and net revenue with average order value on a second axis,
orders, return rate and the change against the period before, for chosen days and categories."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import altair as alt
import pandas as pd
import streamlit as st

from shoplake.dashboard import data
from shoplake.dashboard.kpis import change, count, money, percent, ratio
from shoplake.dashboard.widgets import Context, beside, categories, date_range, previous_period, table

# Every day's measures of the shop (level day), or of the chosen categories added up per day (an order
# of two chosen categories counts in each: the per-category definition).
_DAYS = """
select order_date, sum(orders) as orders, sum(returned_orders) as returned_orders, sum(items) as items,
  sum(gross_revenue) as gross_revenue, sum(returned_revenue) as returned_revenue,
  sum(net_revenue) as net_revenue, sum(margin) as margin
from gold.agg_sales_measures
where level = :level and (:every or list_contains(:chosen, category))
group by order_date
order by order_date
"""
_CATEGORIES = "select distinct category from gold.agg_sales_measures where level = 'category'"


def days(ctx: Context, chosen: list[str]) -> pd.DataFrame:
    level = "category" if chosen else "day"
    frame = data.query(ctx.lake, _DAYS, level=level, every=not chosen, chosen=chosen)
    frame["order_date"] = pd.to_datetime(frame["order_date"]).dt.date
    frame["average_order_value"] = [ratio(g, o) for g, o in zip(frame.gross_revenue, frame.orders, strict=True)]
    return frame


def totals(frame: pd.DataFrame) -> dict[str, float]:
    orders = float(frame.orders.sum())
    gross = float(frame.gross_revenue.sum())
    return {"gross_revenue": gross, "net_revenue": float(frame.net_revenue.sum()), "orders": orders,
            "margin": float(frame.margin.sum()), "average_order_value": ratio(gross, orders),
            "return_rate": ratio(float(frame.returned_orders.sum()), orders)}


def render(ctx: Context) -> None:
    st.title("Executive sales overview")
    currency = ctx.lake.currency
    options = data.query(ctx.lake, _CATEGORIES).category.dropna().tolist()
    chosen = categories("sales_categories", options)
    every_day = days(ctx, chosen)
    if every_day.empty:
        st.info("No sales in the lake yet.")
        return
    start, end = date_range("sales_days", min(every_day.order_date), max(every_day.order_date))
    shown = _between(every_day, start, end)
    before = _between(every_day, *previous_period(start, end))
    now, then = totals(shown), totals(before)
    st.caption(f"{start:%Y-%m-%d} to {end:%Y-%m-%d} · {', '.join(chosen) if chosen else 'every category'} · "
               f"amounts in {currency} · " + (f"change against the {len(before)} day(s) before" if not before.empty
                                              else "no earlier days to compare with"))

    columns = [*st.columns(3), *st.columns(3)]
    def cash(value: float) -> str:
        return money(value, currency)

    figures: list[tuple[str, str, Callable[[float], str]]] = [
        ("Gross revenue", "gross_revenue", cash), ("Net revenue", "net_revenue", cash), ("Orders", "orders", count),
        ("Average order value", "average_order_value", cash), ("Return rate", "return_rate", percent),
        ("Margin", "margin", cash)]
    for column, (label, name, write) in zip(columns, figures, strict=True):
        delta = change(now[name], then[name]) if not before.empty else None
        # A higher return rate is bad news: its change is coloured the other way round.
        column.metric(label, write(now[name]), delta, delta_color="inverse" if name == "return_rate" else "normal")

    with beside("gross_revenue", "net_revenue", "average_order_value", "days"):
        st.subheader("Revenue and average order value per day")
        st.altair_chart(_revenue_chart(shown, currency), width="stretch")
    st.subheader("Days")
    with beside("orders", "return_rate", *(["category_orders"] if chosen else []), "period"):
        table(shown[["order_date", "orders", "items", "gross_revenue", "net_revenue", "average_order_value",
                     "returned_orders", "margin"]].assign(return_rate=[
                         ratio(r, o) for r, o in zip(shown.returned_orders, shown.orders, strict=True)]),
              {"orders": count, "items": count, "returned_orders": count, "return_rate": percent,
               **dict.fromkeys(("gross_revenue", "net_revenue", "average_order_value", "margin"), cash)})


def _between(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    return frame[(frame.order_date >= start) & (frame.order_date <= end)]


def _revenue_chart(frame: pd.DataFrame, currency: str) -> alt.LayerChart:
    # Days as labels, not a time axis: bars of a few days stay wide, and every day gets its tick.
    daily = frame.assign(day=[f"{d:%Y-%m-%d}" for d in frame.order_date])
    long = daily.melt(id_vars=["day"], value_vars=["gross_revenue", "net_revenue"], var_name="measure",
                      value_name="amount")
    revenue = alt.Chart(long).mark_bar(opacity=0.8).encode(
        x=alt.X("day:O", title="day", axis=alt.Axis(labelAngle=0)), xOffset="measure:N",
        y=alt.Y("amount:Q", title=f"revenue ({currency})"), color=alt.Color("measure:N", title=None),
        tooltip=["day:O", "measure:N", alt.Tooltip("amount:Q", format=",.2f")])
    aov = alt.Chart(daily).mark_line(point=True, color="#d62728").encode(
        x="day:O", y=alt.Y("average_order_value:Q", title=f"average order value ({currency})"),
        tooltip=["day:O", alt.Tooltip("average_order_value:Q", format=",.2f")])
    layered: alt.LayerChart = alt.layer(revenue, aov).resolve_scale(y="independent")
    return layered
