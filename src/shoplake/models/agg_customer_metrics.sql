-- name: agg_customer_metrics
-- kind: full
-- grain: one row per customer (current version)
-- key: customer_id
-- description: Customer 360: lifetime value (net revenue in the reporting currency), orders, first and last sale, recency, lifecycle stage, value segment, VIP and window-shopper flags, as of the lake's latest day with a sale or a session.
with settings as (
  select new_days, active_days, at_risk_days, vip_share, window_shopper_sessions, window_shopper_days
  from shoplake.settings
),
-- The CRM's own lifecycle_stage and segment columns stay in silver: gold's stage and segment are computed below.
customers as (
  select customer_id, first_name, last_name, email, city, country, age, created_at
  from silver.customers
),
sales as (
  select customer_id, order_id, order_date, is_returned, revenue from gold.fact_sales
),
sessions as (
  select customer_id, session_date, has_page_view from gold.fact_sessions
),
-- "Today" for recency is the lake's latest day with a sale or a session, not the clock: the same lake
-- gives the same marts whenever (and however often) it is rebuilt.
as_of as (
  select greatest((select max(order_date) from sales), (select max(session_date) from sessions)) as as_of_date
),
per_customer as (
  select
    customer_id,
    count(distinct order_id) as orders,
    count(*) as items,
    coalesce(sum(case when is_returned then 0 else revenue end), 0) as lifetime_value,
    count(case when revenue is null then 1 end) as items_without_rate,
    min(order_date) as first_sale_date,
    max(order_date) as last_sale_date
  from sales
  group by customer_id
),
-- Buyers ranked by LTV (ties share a rank). Shares are exact decimals, so 5 % of 60 buyers is 3, not 4.
ranked as (
  select
    p.*,
    rank() over (order by p.lifetime_value desc) as ltv_rank,
    count(*) over () as buyers
  from per_customer as p
),
segmented as (
  select
    r.*,
    r.ltv_rank <= ceil(cast(s.vip_share as decimal(18, 6)) * r.buyers) as is_vip,
    case
      when r.ltv_rank <= ceil(cast(s.vip_share as decimal(18, 6)) * r.buyers) then 'vip'
      when r.ltv_rank <= ceil(cast(0.25 as decimal(18, 6)) * r.buyers) then 'high'
      when r.ltv_rank <= ceil(cast(0.50 as decimal(18, 6)) * r.buyers) then 'medium'
      else 'low'
    end as value_segment
  from ranked as r
  cross join settings as s
),
recent_sessions as (
  select se.customer_id, count(*) as recent_sessions
  from sessions as se
  cross join settings as s
  cross join as_of as a
  where se.customer_id is not null
    and se.has_page_view
    and se.session_date <= a.as_of_date
    and date_diff('day', se.session_date, a.as_of_date) <= s.window_shopper_days
  group by se.customer_id
),
final as (
  select
    c.customer_id,
    c.first_name,
    c.last_name,
    c.email,
    c.city,
    c.country,
    c.age,
    c.created_at,
    a.as_of_date,
    coalesce(g.orders, 0) as orders,
    coalesce(g.items, 0) as items,
    cast(coalesce(g.lifetime_value, 0) as decimal(18, 2)) as lifetime_value,
    coalesce(g.items_without_rate, 0) as items_without_rate,
    g.first_sale_date,
    g.last_sale_date,
    date_diff('day', g.last_sale_date, a.as_of_date) as recency_days,
    case
      when g.customer_id is null then 'prospect'
      when date_diff('day', g.first_sale_date, a.as_of_date) <= s.new_days then 'new'
      when date_diff('day', g.last_sale_date, a.as_of_date) <= s.active_days then 'active'
      when date_diff('day', g.last_sale_date, a.as_of_date) <= s.at_risk_days then 'at_risk'
      else 'churned'
    end as lifecycle_stage,
    g.ltv_rank,
    coalesce(g.value_segment, 'none') as value_segment,
    coalesce(g.is_vip, false) as is_vip,
    coalesce(rs.recent_sessions, 0) as recent_sessions,
    g.customer_id is null and coalesce(rs.recent_sessions, 0) >= s.window_shopper_sessions as is_window_shopper
  from customers as c
  cross join settings as s
  cross join as_of as a
  left join segmented as g on g.customer_id = c.customer_id
  left join recent_sessions as rs on rs.customer_id = c.customer_id
)
select * from final
