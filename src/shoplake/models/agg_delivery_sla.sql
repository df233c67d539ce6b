-- name: agg_delivery_sla
-- kind: kpi
-- grain: one row per carrier and order day with at least one shipment
-- key: order_date, carrier
-- partition: order_date
-- description: Delivery SLA per carrier and day: shipments, deliveries, on time and late, on-time rate (on time / deliveries with a promised date) and average delay in days.
with shipments as (
  select * from gold.fact_shipments
),
counts as (
  select
    order_date,
    carrier,
    count(*) as shipments,
    -- count(case ...), not count_if: DuckDB's count_if is NULL when every flag is NULL, Spark's is 0.
    count(case when is_delivered then 1 end) as delivered,
    count(case when is_on_time then 1 end) as on_time,
    count(case when not is_on_time then 1 end) as late,
    -- delay_days is NULL until delivered or without a promise: the average is over measured deliveries.
    count(delay_days) as measured,
    sum(delay_days) as total_delay_days
  from shipments
  group by order_date, carrier
),
final as (
  select
    order_date,
    carrier,
    shipments,
    delivered,
    on_time,
    late,
    case when on_time + late = 0 then 0.0 else cast(on_time as double) / (on_time + late) end as on_time_rate,
    case when measured = 0 then 0.0 else cast(total_delay_days as double) / measured end as average_delay_days
  from counts
)
select * from final
