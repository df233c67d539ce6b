-- name: fact_shipments
-- kind: fact
-- grain: one row per tracking number (its latest status)
-- key: tracking_number
-- partition: order_date
-- description: Shipments with their order's local day, delay against the promised date and the on-time flag (delivered_at <= promised_at).
with settings as (
  select timezone from shoplake.settings
),
shipping as (
  select
    tracking_number, order_id, carrier, status, shipped_at, promised_at, delivered_at, event_at, delay_days,
    is_on_time
  from silver.shipping
),
orders as (
  select order_id, customer_id, created_at
  from silver.orders
),
final as (
  select
    sh.tracking_number,
    sh.order_id,
    o.customer_id,
    -- The order's day, as every mart counts days: created_at's local date in the shop's time zone.
    cast(o.created_at at time zone 'UTC' at time zone s.timezone as date) as order_date,
    sh.carrier,
    sh.status,
    sh.shipped_at,
    sh.promised_at,
    sh.delivered_at,
    sh.event_at as last_event_at,
    sh.delivered_at is not null as is_delivered,
    sh.delay_days,
    sh.is_on_time
  from shipping as sh
  join orders as o on o.order_id = sh.order_id
  cross join settings as s
)
select * from final
