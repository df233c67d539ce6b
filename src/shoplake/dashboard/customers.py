"""Customer 360: find a customer by id, e-mail or name; their profile versions (SCD2), orders, LTV, segment and
sessions; and the lists of VIP customers and window shoppers."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from shoplake.dashboard import data
from shoplake.dashboard.kpis import DEFINITIONS, count, money
from shoplake.dashboard.widgets import Context, beside, table

_FIND = """
select customer_id, first_name, last_name, email, city, country, lifetime_value, orders, lifecycle_stage,
  value_segment
from gold.agg_customer_metrics
where cast(customer_id as varchar) = :text or email ilike :pattern
  or concat_ws(' ', first_name, last_name) ilike :pattern
order by lifetime_value desc, customer_id
limit 50
"""
# A customer is found by their id as the gold tables type it (a literal of the same type: the big fact
# tables are then compared without casting every row).
_PROFILE = "select * from gold.agg_customer_metrics where customer_id = :customer"
_VERSIONS = """
select valid_from, valid_to, is_current, first_name, last_name, email, age, city, country
from gold.dim_customer where customer_id = :customer order by valid_from
"""
_ORDERS = """
select order_id, min(order_date) as order_date, min(order_status) as order_status, count(*) as items,
  sum(revenue) as revenue, sum(case when is_returned then revenue else 0 end) as returned_revenue,
  bool_or(is_returned) as has_return
from gold.fact_sales where customer_id = :customer
group by order_id order by order_date desc, order_id
"""
_SESSIONS = """
select session_id, session_date, device, started_at, events, page_views, has_add_to_cart, has_purchase
from gold.fact_sessions where customer_id = :customer order by started_at desc limit 200
"""
_VIPS = """
select customer_id, first_name, last_name, email, lifetime_value, orders, ltv_rank, lifecycle_stage
from gold.agg_customer_metrics where is_vip order by ltv_rank, customer_id limit :limit
"""
_WINDOW_SHOPPERS = """
select customer_id, first_name, last_name, email, recent_sessions, created_at
from gold.agg_customer_metrics where is_window_shopper order by recent_sessions desc, customer_id limit :limit
"""
LISTED = 50  # rows of each customer list


def render(ctx: Context) -> None:
    st.title("Customer 360")
    currency = ctx.lake.currency

    def cash(value: float) -> str:
        return money(value, currency)

    text = st.text_input("Find a customer (id, e-mail or name)", key="customer_search").strip()
    if text:
        found = data.query(ctx.lake, _FIND, text=text, pattern=f"%{text}%")
        if found.empty:
            st.warning(f"No customer matches {text!r}.")
        else:
            labels = {str(r.customer_id): f"{r.customer_id} · {r.first_name} {r.last_name} · {r.email}"
                      for r in found.itertuples()}
            ids = {str(i): i.item() if hasattr(i, "item") else i for i in found.customer_id}  # numpy -> Python
            picked = st.selectbox("Customer", list(labels), format_func=labels.__getitem__, key="customer_pick")
            if picked is not None:
                _profile(ctx, ids[picked], cash)

    vips, shoppers = st.columns(2)
    with vips:
        st.subheader("VIP customers")
        st.caption(_definition_line("segments", 0))
        table(data.query(ctx.lake, _VIPS, limit=LISTED), {"lifetime_value": cash, "orders": count, "ltv_rank": count})
    with shoppers:
        st.subheader("Window shoppers")
        st.caption(_definition_line("segments", 1))
        table(data.query(ctx.lake, _WINDOW_SHOPPERS, limit=LISTED), {"recent_sessions": count})


def _profile(ctx: Context, customer: object, cash: Callable[[float], str]) -> None:
    profile = data.query(ctx.lake, _PROFILE, customer=customer)
    if profile.empty:
        st.warning(f"Customer {customer} has no row in gold/agg_customer_metrics.")
        return
    row = profile.iloc[0]
    st.subheader(f"{row.first_name} {row.last_name} (customer {row.customer_id})")
    figures = st.columns(5)
    figures[0].metric("LTV", cash(float(row.lifetime_value)))
    figures[1].metric("Orders", count(int(row.orders)))
    figures[2].metric("Segment", str(row.value_segment) + (" · VIP" if row.is_vip else ""))
    figures[3].metric("Lifecycle", str(row.lifecycle_stage))
    figures[4].metric("Recent sessions", count(int(row.recent_sessions)))
    with beside("ltv", "segments", "lifecycle"):
        st.markdown(f"**E-mail** {row.email} · **city** {row.city}, {row.country} · **first sale** "
                    f"{_day(row.first_sale_date)} · **last sale** {_day(row.last_sale_date)} · "
                    f"**as of** {_day(row.as_of_date)}")
        st.markdown("**Profile history** (every version, SCD2)")
        table(data.query(ctx.lake, _VERSIONS, customer=customer))
        st.markdown("**Orders**")
        orders = data.query(ctx.lake, _ORDERS, customer=customer)
        st.dataframe(orders, hide_index=True, width="stretch",
                     column_config={"revenue": st.column_config.NumberColumn(format="%.2f"),
                                    "returned_revenue": st.column_config.NumberColumn(format="%.2f")})
        st.markdown("**Sessions**")
        st.dataframe(data.query(ctx.lake, _SESSIONS, customer=customer), hide_index=True, width="stretch")


def _day(value: object) -> str:
    return "-" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"


def _definition_line(name: str, part: int) -> str:
    return DEFINITIONS[name].split("; ")[part].replace("**", "")
