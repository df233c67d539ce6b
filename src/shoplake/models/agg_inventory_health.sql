-- name: agg_inventory_health
-- kind: full
-- grain: one row per snapshot date, warehouse and product
-- key: snapshot_date, warehouse_id, product_id
-- partition: snapshot_date
-- description: Stock health: negative stock, drops and spikes against the median of the product's stock in that warehouse over the stock_baseline_days days before, and days of cover at the product's average daily units sold over the stock_baseline_days days up to the snapshot.
-- Rebuilt whole every batch (kind: full): a snapshot's baseline and its days of cover read the stock and the sales of the days before it, so a late or changed day changes the rows of later days too.
with settings as (
  select stock_baseline_days, stock_drop_share, stock_spike_factor from shoplake.settings
),
stock as (
  select snapshot_date, warehouse_id, product_id, quantity_on_hand, quantity_reserved
  from silver.inventory
),
sales as (
  select product_id, order_date from gold.fact_sales
),
-- The baseline: snapshots of the same product and warehouse dated within the window before this one
-- (calendar days, so a missing snapshot shortens the baseline instead of reaching further back).
baseline as (
  select
    cur.snapshot_date,
    cur.warehouse_id,
    cur.product_id,
    count(prev.quantity_on_hand) as baseline_snapshots,
    median(cast(prev.quantity_on_hand as double)) as baseline_median
  from stock as cur
  cross join settings as s
  join stock as prev
    on prev.warehouse_id = cur.warehouse_id
    and prev.product_id = cur.product_id
    and prev.snapshot_date < cur.snapshot_date
    and date_diff('day', prev.snapshot_date, cur.snapshot_date) <= s.stock_baseline_days
  group by cur.snapshot_date, cur.warehouse_id, cur.product_id
),
daily_units as (
  select product_id, order_date, count(*) as units
  from sales
  group by product_id, order_date
),
first_sale as (
  select min(order_date) as first_sale_date from sales
),
-- Demand per product and snapshot day: units sold in the window ending on the snapshot's day, over the
-- days of that window the lake holds sales for (the first days of a lake have a shorter history).
snapshot_products as (
  select distinct snapshot_date, product_id from stock
),
demand as (
  select
    sp.snapshot_date,
    sp.product_id,
    cast(coalesce(sum(d.units), 0) as bigint) as units_sold,
    least(s.stock_baseline_days, date_diff('day', f.first_sale_date, sp.snapshot_date) + 1) as demand_days
  from snapshot_products as sp
  cross join settings as s
  cross join first_sale as f
  left join daily_units as d
    on d.product_id = sp.product_id
    and d.order_date <= sp.snapshot_date
    and date_diff('day', d.order_date, sp.snapshot_date) < s.stock_baseline_days
  group by sp.snapshot_date, sp.product_id, s.stock_baseline_days, f.first_sale_date
),
final as (
  select
    st.snapshot_date,
    st.warehouse_id,
    st.product_id,
    st.quantity_on_hand,
    st.quantity_reserved,
    st.quantity_on_hand < 0 as is_negative,
    coalesce(b.baseline_snapshots, 0) as baseline_snapshots,
    b.baseline_median,
    coalesce(st.quantity_on_hand < (1 - s.stock_drop_share) * b.baseline_median, false) as is_drop,
    coalesce(st.quantity_on_hand > s.stock_spike_factor * b.baseline_median, false) as is_spike,
    d.units_sold,
    case when d.demand_days > 0 then cast(d.units_sold as double) / d.demand_days end as average_daily_units,
    -- No sale in the window (or no sales history yet): cover cannot be measured, NULL rather than infinite.
    -- Negative stock covers no day.
    case
      when d.demand_days > 0 and d.units_sold > 0
        then greatest(st.quantity_on_hand, 0) / (cast(d.units_sold as double) / d.demand_days)
    end as days_of_cover
  from stock as st
  cross join settings as s
  left join baseline as b
    on b.snapshot_date = st.snapshot_date and b.warehouse_id = st.warehouse_id and b.product_id = st.product_id
  left join demand as d
    on d.snapshot_date = st.snapshot_date and d.product_id = st.product_id
)
select * from final
