-- The lecture's incremental filter (datestamp > max(datestamp) of this table) would drop
-- rows that land late for an old day; here each run replaces exactly its window instead.
with events as (
    select
        user_id,
        datestamp,
        item_id,
        clicked,
        purchased,
        paidamount
    from {{ ref('src_user_event') }}
    where partition_date >= :window_start
        and partition_date < :window_end
),

final as (
    select * from events
    where datestamp is not null
)

select * from final
