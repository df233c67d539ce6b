"""Product performance: revenue and margin by category and by SKU over the chosen days, the top and bottom
products, and stock health at the latest inventory snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from shoplake.dashboard import data
from shoplake.dashboard.kpis import count, money
from shoplake.dashboard.widgets import Context, beside, categories, date_range, table

# Per product over the chosen days (the product level of the measures), with its name, SKU and category
# as agg_product_performance has them (the current or last version).
_PRODUCTS = """
with measures as (
  select product_id, sum(gross_revenue) as gross_revenue, sum(net_revenue) as net_revenue,
    sum(margin) as margin, sum(items) as items, sum(orders) as orders
  from gold.agg_sales_measures
  where level = 'product' and order_date between :start and :end
  group by product_id
)
select m.product_id, p.sku, p.name, p.category, m.gross_revenue, m.net_revenue, m.margin, m.items, m.orders
from measures as m
join gold.agg_product_performance as p on p.product_id = m.product_id
where :every or list_contains(:chosen, p.category)
order by m.net_revenue desc, m.product_id
"""
_DAYS = """
select min(order_date) as first_day, max(order_date) as last_day from gold.agg_sales_measures where level = 'product'
"""
_CATEGORIES = "select distinct category from gold.agg_product_performance"
# The latest snapshot's stock per warehouse and product, with the product's current category.
_STOCK = """
with latest as (select max(snapshot_date) as snapshot_date from gold.agg_inventory_health)
select h.snapshot_date, h.warehouse_id, h.product_id, p.sku, p.category, h.quantity_on_hand, h.is_negative,
  h.is_drop, h.is_spike, h.days_of_cover
from gold.agg_inventory_health as h
join latest as l on l.snapshot_date = h.snapshot_date
left join gold.dim_product as p on p.product_id = h.product_id and p.is_current
where :every or list_contains(:chosen, p.category)
"""
TOP = 10  # products in each of the top and bottom lists
LOW_COVER_DAYS = 7  # stock that lasts less than a week at the recent pace is shown as low


def render(ctx: Context) -> None:
    st.title("Product performance")
    currency = ctx.lake.currency

    def cash(value: float) -> str:
        return money(value, currency)

    span = data.query(ctx.lake, _DAYS)
    if span.empty or pd.isna(span["first_day"][0]):
        st.info("No sales in the lake yet.")
        return
    chosen = categories("product_categories", data.query(ctx.lake, _CATEGORIES).category.dropna().tolist())
    start, end = date_range("product_days", pd.Timestamp(span["first_day"][0]).date(),
                            pd.Timestamp(span["last_day"][0]).date())
    products = data.query(ctx.lake, _PRODUCTS, start=start, end=end, every=not chosen, chosen=chosen)
    st.caption(f"{start:%Y-%m-%d} to {end:%Y-%m-%d} · {', '.join(chosen) if chosen else 'every category'} · "
               f"amounts in {currency}")
    figures = st.columns(4)
    figures[0].metric("Net revenue", cash(float(products.net_revenue.sum())))
    figures[1].metric("Margin", cash(float(products.margin.sum())))
    figures[2].metric("Items", count(float(products["items"].sum())))
    figures[3].metric("Products sold", count(len(products)))

    by_category = (products.groupby("category", as_index=False)[["gross_revenue", "net_revenue", "margin", "items"]]
                   .sum().sort_values("net_revenue", ascending=False))
    with beside("net_revenue", "margin"):
        st.subheader("Revenue and margin by category")
        long = by_category.melt(id_vars=["category"], value_vars=["net_revenue", "margin"], var_name="measure",
                                value_name="amount")
        chart = alt.Chart(long).mark_bar().encode(
            y=alt.Y("category:N", sort="-x", title=None), x=alt.X("amount:Q", title=currency),
            yOffset="measure:N", color=alt.Color("measure:N", title=None),
            tooltip=["category:N", "measure:N", alt.Tooltip("amount:Q", format=",.2f")])
        st.altair_chart(chart, width="stretch")
        table(by_category, {"gross_revenue": cash, "net_revenue": cash, "margin": cash, "items": count})

    shown = ["sku", "name", "category", "net_revenue", "margin", "items", "orders"]
    formats: dict[str, Callable[[Any], str]] = {"net_revenue": cash, "margin": cash, "items": count, "orders": count}
    top, bottom = st.columns(2)
    with top:
        st.subheader(f"Top {TOP} products by net revenue")
        table(products.head(TOP)[shown], formats)
    with bottom:
        st.subheader(f"Bottom {TOP} products by net revenue")
        table(products.tail(TOP).iloc[::-1][shown], formats)

    st.subheader("Every product sold")
    st.dataframe(products[shown], hide_index=True, width="stretch",
                 column_config={"net_revenue": st.column_config.NumberColumn(format="%.2f"),
                                "margin": st.column_config.NumberColumn(format="%.2f")})
    _stock(ctx, chosen)


def _stock(ctx: Context, chosen: list[str]) -> None:
    stock = data.query(ctx.lake, _STOCK, every=not chosen, chosen=chosen)
    with beside("stock"):
        if stock.empty:
            st.subheader("Stock health")
            st.caption("no inventory snapshot yet")
            return
        low = stock.days_of_cover.notna() & (stock.days_of_cover < LOW_COVER_DAYS)
        st.subheader(f"Stock health on {pd.Timestamp(stock.snapshot_date[0]):%Y-%m-%d}")
        figures = st.columns(5)
        figures[0].metric("Stock rows", count(len(stock)))
        figures[1].metric("Negative", count(int(stock.is_negative.sum())))
        figures[2].metric("Drops", count(int(stock.is_drop.sum())))
        figures[3].metric("Spikes", count(int(stock.is_spike.sum())))
        figures[4].metric(f"Under {LOW_COVER_DAYS} days of cover", count(int(low.sum())))
        flagged = stock[stock.is_negative | stock.is_drop | stock.is_spike | low]
        st.dataframe(flagged.drop(columns=["snapshot_date"]), hide_index=True, width="stretch")
