-- name: agg_category_daily
-- kind: kpi
-- grain: one row per order date and product category
-- key: order_date, category
-- partition: order_date
-- description: The measures of agg_daily_sales per category (the category level of agg_sales_measures); an order counts once in each category it bought from.
with measures as (
  select * from gold.agg_sales_measures
),
final as (
  select
    order_date, category, orders, items, gross_revenue, returned_revenue, net_revenue, margin,
    average_order_value, return_rate, sales_without_rate
  from measures
  where level = 'category'
)
select * from final
