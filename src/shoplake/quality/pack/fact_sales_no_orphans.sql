-- name: fact_sales_no_orphans
-- severity: error
-- description: every sale's customer_key is in dim_customer and its product_key in dim_product (a NULL key is an orphan too)
with sales as (
  select order_item_id, order_id, customer_id, customer_key, product_id, product_key
  from gold.fact_sales
),
customers as (
  select customer_key
  from gold.dim_customer
),
products as (
  select product_key
  from gold.dim_product
),
final as (
  select s.*
  from sales as s
  left join customers as c on c.customer_key = s.customer_key
  left join products as p on p.product_key = s.product_key
  where c.customer_key is null or p.product_key is null
)
select * from final
