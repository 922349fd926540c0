-- Per day of the window: rows that repeat an impression already in it, the same user
-- shown the same item again on the same day. They are kept (the lecture's fact keeps
-- every landed impression); this only counts them. A day without rows has no row here.
with impressions as (
    select
        user_id,
        datestamp,
        item_id,
        count(*) as times_shown
    from {{ this }}
    where datestamp >= :window_start
        and datestamp < :window_end
    group by
        user_id,
        datestamp,
        item_id
),

final as (
    select
        cast(datestamp as date) as day,
        sum(times_shown - 1) as repeated_impressions
    from impressions
    group by cast(datestamp as date)
)

select * from final
