-- name: return_rate_in_range
-- severity: error
-- description: agg_sales_measures (every level: day, category, product) has return_rate in [0, 1], never NULL, and no more returned orders than orders
with measures as (
  select level, order_date, category, product_id, orders, returned_orders, return_rate
  from gold.agg_sales_measures
),
final as (
  select *
  from measures
  where not coalesce(return_rate between 0 and 1, false)
    or returned_orders > orders
)
select * from final
