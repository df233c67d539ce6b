-- name: dim_status
-- kind: full
-- grain: one row per status of an order or of an order item
-- key: status_of, status
-- description: What each status means for the KPIs, written once: an order item is a sale unless its order is cancelled (a status not listed here counts as a sale); an item is returned when its status is returned.
with statuses as (
  select status_of, status, is_sale, is_returned
  from (values
    ('order', 'created', true, false),
    ('order', 'processing', true, false),
    ('order', 'shipped', true, false),
    ('order', 'delivered', true, false),
    ('order', 'complete', true, false),
    ('order', 'returned', true, true),
    ('order', 'cancelled', false, false),
    ('item', 'placed', true, false),
    ('item', 'shipped', true, false),
    ('item', 'delivered', true, false),
    ('item', 'complete', true, false),
    ('item', 'cancelled', true, false),
    ('item', 'returned', true, true)
  ) as s (status_of, status, is_sale, is_returned)
),
final as (
  select status_of, status, is_sale, is_returned
  from statuses
)
select * from final
