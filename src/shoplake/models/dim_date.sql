-- name: dim_date
-- kind: full
-- grain: one row per calendar day from the first to the last order date of fact_sales
-- key: date_day
-- description: The calendar of the sales days (local dates in the shop's time zone): ISO week, weekday 1 (Monday) to 7 (Sunday), weekend flag.
with sales as (
  select order_date from gold.fact_sales
),
span as (
  select min(order_date) as first_day, max(order_date) as last_day
  from sales
  having count(*) > 0
),
days as (
  select unnest(generate_series(first_day, last_day, interval 1 day)) as day_start
  from span
),
dated as (
  select cast(day_start as date) as date_day
  from days
),
final as (
  select
    date_day,
    year(date_day) as year,
    quarter(date_day) as quarter,
    month(date_day) as month,
    weekofyear(date_day) as week,
    -- 1970-01-05 was a Monday; counting from it gives ISO weekdays the same way on every engine.
    cast((date_diff('day', date '1970-01-05', date_day) % 7) + 1 as integer) as weekday,
    (date_diff('day', date '1970-01-05', date_day) % 7) >= 5 as is_weekend
  from dated
)
select * from final
