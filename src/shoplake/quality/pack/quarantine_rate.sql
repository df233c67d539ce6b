-- name: quarantine_rate
-- severity: warn
-- description: no file sends more of its rows to quarantine than its feed's contract allows (max_quarantine_rate); the run exits 1 for such a file, the batch still commits
with files as (
  select file, feed, rows_read, rows_quarantined, max_quarantine_rate
  from shoplake.files
),
final as (
  select
    file,
    feed,
    rows_read,
    rows_quarantined,
    cast(rows_quarantined as double) / rows_read as quarantine_rate,
    max_quarantine_rate
  from files
  where rows_read > 0 and cast(rows_quarantined as double) / rows_read > max_quarantine_rate
)
select * from final
