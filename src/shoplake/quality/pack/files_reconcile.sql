-- name: files_reconcile
-- severity: error
-- description: every file's rows read = rows loaded + quarantined + exact duplicates dropped (nothing lost)
with files as (
  select file, feed, rows_read, rows_loaded, rows_quarantined, rows_duplicate
  from shoplake.files
),
final as (
  select *
  from files
  where rows_read <> rows_loaded + rows_quarantined + rows_duplicate
)
select * from final
