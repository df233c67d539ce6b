-- name: sales_reconcile_with_silver
-- severity: error
-- description: fact_sales holds every sale of silver (order items joined to their orders, the order status a sale by dim_status): the same count, and in the reporting currency the same amount (sum of silver sale_price = sum of fact_sales revenue); one row with both sides when they differ
with settings as (
  select reporting_currency
  from shoplake.settings
),
items as (
  select order_id, sale_price
  from silver.order_items
),
orders as (
  select order_id, status, currency
  from silver.orders
),
statuses as (
  select status, is_sale
  from gold.dim_status
  where status_of = 'order'
),
facts as (
  select currency, revenue
  from gold.fact_sales
),
silver_sales as (
  select
    count(*) as sales,
    coalesce(sum(case when coalesce(o.currency, s.reporting_currency) = s.reporting_currency
      then i.sale_price end), 0) as amount
  from items as i
  join orders as o on o.order_id = i.order_id
  cross join settings as s
  left join statuses as st on st.status = o.status
  where coalesce(st.is_sale, true)
),
fact_totals as (
  select
    count(*) as sales,
    coalesce(sum(case when f.currency = s.reporting_currency then f.revenue end), 0) as amount
  from facts as f
  cross join settings as s
),
final as (
  select
    ss.sales as silver_sales,
    ft.sales as fact_sales,
    ss.amount as silver_amount,
    ft.amount as fact_amount
  from silver_sales as ss
  cross join fact_totals as ft
  where ss.sales <> ft.sales or ss.amount <> ft.amount
)
select * from final
