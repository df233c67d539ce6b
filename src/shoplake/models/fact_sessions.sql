-- name: fact_sessions
-- kind: fact
-- grain: one row per web session and local day (a session is cut at the shop's midnight)
-- key: session_id, session_date
-- partition: session_date
-- optional: events
-- description: Clickstream sessions: the feed's session id, or, for events without one, a customer's events split by session_gap_minutes of inactivity (an anonymous event without a session id is a session of its own); which funnel steps each reached.
with settings as (
  select timezone, session_gap_minutes from shoplake.settings
),
events as (
  select
    e.event_id,
    e.session_id,
    e.customer_id,
    e.event_type,
    e.event_at,
    e.device,
    -- Days are local dates in the shop's time zone; silver timestamps are UTC.
    cast(e.event_at at time zone 'UTC' at time zone s.timezone as date) as session_date,
    s.session_gap_minutes
  from silver.events as e
  cross join settings as s
),
-- Events without a session id but with a customer: a new session starts at the customer's first event
-- of the day and after every gap of at least session_gap_minutes.
unsessioned as (
  select
    *,
    lag(event_at) over (partition by customer_id, session_date order by event_at, event_id) as previous_at
  from events
  where session_id is null and customer_id is not null
),
starts as (
  select
    *,
    case
      when previous_at is null then 1
      when date_diff('second', previous_at, event_at) >= session_gap_minutes * 60 then 1
      else 0
    end as starts_session
  from unsessioned
),
numbered as (
  select
    *,
    sum(starts_session) over (
      partition by customer_id, session_date order by event_at, event_id rows between unbounded preceding and current row
    ) as session_number
  from starts
),
sessioned as (
  select event_id, session_id, customer_id, event_type, event_at, device, session_date, false as is_derived
  from events
  where session_id is not null
  union all
  select
    event_id,
    concat('~c', cast(customer_id as varchar), '-', strftime(session_date, '%Y%m%d'), '-',
           cast(session_number as varchar)) as session_id,
    customer_id, event_type, event_at, device, session_date, true as is_derived
  from numbered
  union all
  -- Nothing ties an anonymous event without a session id to any other event.
  select
    event_id, concat('~e', event_id) as session_id, customer_id, event_type, event_at, device, session_date,
    true as is_derived
  from events
  where session_id is null and customer_id is null
),
final as (
  select
    session_id,
    session_date,
    max(customer_id) as customer_id,
    bool_or(is_derived) as is_derived,
    min(device) as device,
    min(event_at) as started_at,
    max(event_at) as ended_at,
    count(*) as events,
    count(case when event_type = 'page_view' then 1 end) as page_views,
    bool_or(event_type = 'page_view') as has_page_view,
    bool_or(event_type = 'add_to_cart') as has_add_to_cart,
    bool_or(event_type = 'purchase') as has_purchase
  from sessioned
  group by session_id, session_date
)
select * from final
