-- name: agg_product_performance
-- kind: full
-- grain: one row per product with at least one sale
-- key: product_id
-- description: A product's revenue, margin, items and orders over all days (the product level of agg_sales_measures added up: an order has one day, so its counts add up too), ranked by net revenue, with its current (or last) name, SKU and category.
with measures as (
  select product_id, orders, items, gross_revenue, net_revenue, margin
  from gold.agg_sales_measures
  where level = 'product'
),
products as (
  select product_id, sku, name, brand, department, category, subcategory, category_path,
    row_number() over (partition by product_id order by valid_from desc) as newest
  from gold.dim_product
),
totals as (
  select
    product_id,
    cast(sum(gross_revenue) as decimal(18, 2)) as gross_revenue,
    cast(sum(net_revenue) as decimal(18, 2)) as net_revenue,
    cast(sum(margin) as decimal(18, 2)) as margin,
    cast(sum(items) as bigint) as items,
    cast(sum(orders) as bigint) as orders
  from measures
  group by product_id
),
final as (
  select
    t.product_id,
    p.sku,
    p.name,
    p.brand,
    coalesce(p.department, 'unknown') as department,
    coalesce(p.category, 'unknown') as category,
    p.subcategory,
    p.category_path,
    t.gross_revenue,
    t.net_revenue,
    t.margin,
    t.items,
    t.orders,
    rank() over (order by t.net_revenue desc) as revenue_rank
  from totals as t
  left join products as p on p.product_id = t.product_id and p.newest = 1
)
select * from final
