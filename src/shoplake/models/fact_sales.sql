-- name: fact_sales
-- kind: fact
-- grain: one row per sale: a valid order item whose order is not cancelled
-- key: order_item_id
-- description: The sales every revenue KPI is computed from; days are the order's created_at date.
with items as (
  select order_item_id, order_id, product_id, status as item_status, sale_price
  from silver.order_items
),
orders as (
  select order_id, customer_id, status as order_status, created_at
  from silver.orders
),
products as (
  select product_id, department, category, subcategory, brand, cost
  from silver.products
),
final as (
  select
    i.order_item_id,
    i.order_id,
    o.customer_id,
    i.product_id,
    cast(o.created_at as date) as order_date,
    o.created_at as ordered_at,
    o.order_status,
    i.item_status,
    coalesce(p.department, 'unknown') as department,
    coalesce(p.category, 'unknown') as category,
    p.subcategory,
    p.brand,
    i.sale_price,
    p.cost,
    i.item_status = 'returned' as is_returned
  from items as i
  join orders as o on o.order_id = i.order_id
  left join products as p on p.product_id = i.product_id
  where o.order_status <> 'cancelled'
)
select * from final
