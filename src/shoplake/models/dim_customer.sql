-- name: dim_customer
-- kind: full
-- grain: one row per customer version (SCD2 history of silver.customers)
-- key: customer_key
-- description: Every version of every customer with its validity [valid_from, valid_to); customer_key is the md5 of the customer id and the version's valid_from (the same on every engine and every run); age in whole years today.
with versions as (
  select customer_id, first_name, last_name, email, age, city, country, created_at,
    _valid_from, _valid_to, _is_current
  from silver.customers_history
),
final as (
  select
    md5(cast(customer_id as varchar) || '|' || strftime(_valid_from, '%Y-%m-%d %H:%M:%S.%f')) as customer_key,
    customer_id,
    first_name,
    last_name,
    email,
    age,
    city,
    country,
    created_at,
    _valid_from as valid_from,
    _valid_to as valid_to,
    _is_current as is_current
  from versions
)
select * from final
