-- name: agg_daily_sales
-- kind: kpi
-- grain: one row per order date with at least one sale
-- key: order_date
-- description: Revenue, orders, items, average order value and return rate per day (see README, KPI definitions).
with sales as (
  select * from gold.fact_sales
),
per_order as (
  select order_date, order_id, bool_or(is_returned) as has_return
  from sales
  group by order_date, order_id
),
order_counts as (
  select order_date, count(*) as orders, count_if(has_return) as returned_orders
  from per_order
  group by order_date
),
revenue as (
  select
    order_date,
    count(*) as items,
    sum(sale_price) as gross_revenue,
    sum(case when is_returned then sale_price else 0 end) as returned_revenue,
    sum(case when is_returned then 0 else coalesce(cost, 0) end) as kept_cost
  from sales
  group by order_date
),
final as (
  select
    r.order_date,
    o.orders,
    r.items,
    cast(r.gross_revenue as decimal(18, 2)) as gross_revenue,
    cast(r.returned_revenue as decimal(18, 2)) as returned_revenue,
    cast(r.gross_revenue - r.returned_revenue as decimal(18, 2)) as net_revenue,
    cast(r.gross_revenue - r.returned_revenue - r.kept_cost as decimal(18, 2)) as margin,
    -- A day's row comes from its sales, so orders >= 1 on every row (a day whose orders were all
    -- cancelled has no row, as in agg_category_daily): the ratios never divide by zero.
    cast(r.gross_revenue as double) / o.orders as average_order_value,
    cast(o.returned_orders as double) / o.orders as return_rate
  from revenue as r
  join order_counts as o on o.order_date = r.order_date
)
select * from final
