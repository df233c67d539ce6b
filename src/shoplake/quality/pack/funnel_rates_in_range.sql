-- name: funnel_rates_in_range
-- severity: error
-- description: agg_funnel_daily's conversion rates (view_to_cart, cart_to_purchase, view_to_purchase) lie in [0, 1] and are never NULL
with funnel as (
  select session_date, view_to_cart, cart_to_purchase, view_to_purchase
  from gold.agg_funnel_daily
),
final as (
  select *
  from funnel
  where not coalesce(view_to_cart between 0 and 1, false)
    or not coalesce(cart_to_purchase between 0 and 1, false)
    or not coalesce(view_to_purchase between 0 and 1, false)
)
select * from final
