-- name: agg_funnel_daily
-- kind: kpi
-- grain: one row per local day with at least one session
-- key: session_date
-- partition: session_date
-- description: The view -> cart -> purchase funnel per day: sessions reaching each step, and conversion rates capped at 1 (a zero denominator gives 0).
with sessions as (
  select * from gold.fact_sessions
),
counts as (
  select
    session_date,
    count(*) as sessions,
    count(case when has_page_view then 1 end) as view_sessions,
    count(case when has_add_to_cart then 1 end) as cart_sessions,
    count(case when has_purchase then 1 end) as purchase_sessions
  from sessions
  group by session_date
),
final as (
  select
    session_date,
    sessions,
    view_sessions,
    cart_sessions,
    purchase_sessions,
    -- Steps are counted independently (a cart without a view in the same session happens), hence the cap.
    case when view_sessions = 0 then 0.0
      else least(1.0, cast(cart_sessions as double) / view_sessions) end as view_to_cart,
    case when cart_sessions = 0 then 0.0
      else least(1.0, cast(purchase_sessions as double) / cart_sessions) end as cart_to_purchase,
    case when view_sessions = 0 then 0.0
      else least(1.0, cast(purchase_sessions as double) / view_sessions) end as view_to_purchase
  from counts
)
select * from final
