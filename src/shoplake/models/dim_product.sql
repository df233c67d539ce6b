-- name: dim_product
-- kind: full
-- grain: one row per product version (SCD2 history of silver.products)
-- key: product_key
-- description: Every version of every product with its validity [valid_from, valid_to); product_key is the md5 of the product id and the version's valid_from (the same on every engine and every run), unit_margin = retail_price - cost, category_path 'department > category > subcategory'.
with versions as (
  select product_id, sku, name, brand, department, category, subcategory, cost, retail_price,
    _valid_from, _valid_to, _is_current
  from silver.products_history
),
final as (
  select
    md5(cast(product_id as varchar) || '|' || strftime(_valid_from, '%Y-%m-%d %H:%M:%S.%f')) as product_key,
    product_id,
    sku,
    name,
    brand,
    department,
    category,
    subcategory,
    concat_ws(' > ', department, category, subcategory) as category_path,
    cost,
    retail_price,
    cast(retail_price - cost as decimal(18, 2)) as unit_margin,
    _valid_from as valid_from,
    _valid_to as valid_to,
    _is_current as is_current
  from versions
)
select * from final
