-- name: agg_daily_sales
-- kind: kpi
-- grain: one row per order date with at least one sale
-- key: order_date
-- partition: order_date
-- description: Revenue, margin, orders, items, average order value and return rate per day, in the reporting currency (the day level of agg_sales_measures; README, KPI definitions).
with measures as (
  select * from gold.agg_sales_measures
),
final as (
  select
    order_date, orders, items, gross_revenue, returned_revenue, net_revenue, margin, average_order_value,
    return_rate, sales_without_rate
  from measures
  where level = 'day'
)
select * from final
