-- name: agg_sales_measures
-- kind: kpi
-- grain: one row per level and its group: a day (level day), a day and category (level category), a day and product (level product)
-- key: level, order_date, category, product_id
-- partition: order_date
-- description: The sales measures, each formula written here once (README, KPI definitions); agg_daily_sales, agg_category_daily and agg_product_performance select or add up one level. Amounts are in the reporting currency; a sale without a rate counts in items, orders and sales_without_rate but adds no amount.
with sales as (
  select order_date, category, product_id, order_id, is_returned, revenue, cost, has_fx_rate
  from gold.fact_sales
),
grouped as (
  select
    case
      when grouping(category) = 0 then 'category'
      when grouping(product_id) = 0 then 'product'
      else 'day'
    end as level,
    order_date,
    category,
    product_id,
    cast(count(distinct order_id) as bigint) as orders,
    cast(count(distinct case when is_returned then order_id end) as bigint) as returned_orders,
    cast(count(*) as bigint) as items,
    cast(count_if(not has_fx_rate) as bigint) as sales_without_rate,
    coalesce(sum(revenue), 0) as gross,
    coalesce(sum(case when is_returned then revenue end), 0) as returned,
    -- Cost of what was kept, over the sales whose revenue is summed (a sale without a rate has neither).
    coalesce(sum(case when not is_returned and has_fx_rate then coalesce(cost, 0) end), 0) as kept_cost
  from sales
  group by grouping sets ((order_date), (order_date, category), (order_date, product_id))
),
final as (
  select
    level,
    order_date,
    category,
    product_id,
    orders,
    returned_orders,
    items,
    sales_without_rate,
    cast(gross as decimal(18, 2)) as gross_revenue,
    cast(returned as decimal(18, 2)) as returned_revenue,
    cast(gross - returned as decimal(18, 2)) as net_revenue,
    cast(gross - returned - kept_cost as decimal(18, 2)) as margin,
    case when orders = 0 then 0.0 else cast(gross as double) / orders end as average_order_value,
    case when orders = 0 then 0.0 else cast(returned_orders as double) / orders end as return_rate
  from grouped
)
select * from final
