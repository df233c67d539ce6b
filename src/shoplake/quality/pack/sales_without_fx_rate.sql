-- name: sales_without_fx_rate
-- severity: warn
-- description: sales in another currency than the reporting one without an fx_rates rate for their day: counted, but adding no amount to revenue
with sales as (
  select order_item_id, order_id, order_date, currency, sale_price, has_fx_rate
  from gold.fact_sales
),
final as (
  select order_item_id, order_id, order_date, currency, sale_price
  from sales
  where not has_fx_rate
)
select * from final
