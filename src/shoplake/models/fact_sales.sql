-- name: fact_sales
-- kind: fact
-- grain: one row per sale: a valid order item whose order status is not cancelled (see dim_status)
-- key: order_item_id
-- partition: order_date
-- optional: fx_rates
-- description: The sales every revenue KPI is computed from, joined to the product and customer versions valid when the order was placed; order_date is the local date of created_at in the shop's time zone; revenue is sale_price in the reporting currency at the rate of the order's currency and day (NULL without a rate).
with settings as (
  select reporting_currency, timezone
  from shoplake.settings
),
items as (
  select order_item_id, order_id, product_id, status as item_status, sale_price
  from silver.order_items
),
orders as (
  select order_id, customer_id, status as order_status, currency, created_at
  from silver.orders
),
statuses as (
  select status_of, status, is_sale, is_returned
  from gold.dim_status
),
rates as (
  select rate_date, currency, rate
  from silver.fx_rates
),
-- A sale placed before a key's first version takes the first version: its period opens at NULL.
product_versions as (
  select
    product_key, product_id, department, category, subcategory, brand, cost, valid_to,
    case when row_number() over (partition by product_id order by valid_from) = 1 then null else valid_from end
      as joined_from
  from gold.dim_product
),
customer_versions as (
  select
    customer_key, customer_id, valid_to,
    case when row_number() over (partition by customer_id order by valid_from) = 1 then null else valid_from end
      as joined_from
  from gold.dim_customer
),
sales as (
  select
    i.order_item_id,
    i.order_id,
    o.customer_id,
    i.product_id,
    -- created_at is stored naive in UTC: read it as UTC, then as the wall clock of the shop's zone.
    cast((o.created_at at time zone 'UTC') at time zone s.timezone as date) as order_date,
    o.created_at as ordered_at,
    o.order_status,
    i.item_status,
    coalesce(item_status.is_returned, false) as is_returned,
    -- An order without a currency is in the reporting currency.
    coalesce(o.currency, s.reporting_currency) as currency,
    s.reporting_currency,
    i.sale_price
  from items as i
  join orders as o on o.order_id = i.order_id
  cross join settings as s
  left join statuses as order_status on order_status.status_of = 'order' and order_status.status = o.order_status
  left join statuses as item_status on item_status.status_of = 'item' and item_status.status = i.item_status
  where coalesce(order_status.is_sale, true)
),
converted as (
  select
    sales.*,
    case
      when sales.currency = sales.reporting_currency then cast(1 as decimal(18, 6))
      else cast(r.rate as decimal(18, 6))
    end as fx_rate
  from sales
  left join rates as r on r.currency = sales.currency and r.rate_date = sales.order_date
),
final as (
  select
    c.order_item_id,
    c.order_id,
    c.customer_id,
    cv.customer_key,
    c.product_id,
    pv.product_key,
    c.order_date,
    c.ordered_at,
    c.order_status,
    c.item_status,
    c.is_returned,
    coalesce(pv.department, 'unknown') as department,
    coalesce(pv.category, 'unknown') as category,
    pv.subcategory,
    pv.brand,
    c.currency,
    c.sale_price,
    c.fx_rate,
    cast(round(c.sale_price * c.fx_rate, 2) as decimal(18, 2)) as revenue,
    pv.cost,
    c.fx_rate is not null as has_fx_rate
  from converted as c
  left join product_versions as pv
    on pv.product_id = c.product_id
    and (pv.joined_from is null or pv.joined_from <= c.ordered_at)
    and (pv.valid_to is null or c.ordered_at < pv.valid_to)
  left join customer_versions as cv
    on cv.customer_id = c.customer_id
    and (cv.joined_from is null or cv.joined_from <= c.ordered_at)
    and (cv.valid_to is null or c.ordered_at < cv.valid_to)
)
select * from final
