-- The lecture's summary, unchanged in columns, types and grouping; users are joined as of
-- the event's day. Aggregated in two stages: distinct items per user-day first, then the
-- counts. This gives the rows of the lecture's COUNT(DISTINCT ...) query in about half the
-- time, and joins users to one row per user-day instead of to every event.
-- clicked is an integer, so the click test is written `clicked <> 0`, which means the
-- same as the lecture's `case when clicked` and also runs on PostgreSQL. A NULL user_id
-- stays a group of its own, as in the lecture: the two stages are joined on a key that is
-- never NULL (user_key, user_missing) so that both databases can hash-join them, where
-- `is not distinct from` made PostgreSQL compare every pair of rows.
with u as (
    select
        as_of_date,
        user_id,
        variant_id,
        age,
        gender
    from {{ ref('dim_user') }}
    where as_of_date >= :window_start
        and as_of_date < :window_end
),

ue as (
    select
        user_id,
        datestamp,
        item_id,
        clicked,
        purchased,
        paidamount
    from {{ ref('fact_user_event') }}
    where datestamp >= :window_start
        and datestamp < :window_end
),

items as (
    select
        user_id,
        datestamp,
        item_id,
        max(case when clicked <> 0 then 1 else 0 end) as clicked_item
    from ue
    group by
        user_id,
        datestamp,
        item_id
),

item_counts as (
    select
        user_id,
        coalesce(user_id, 0) as user_key,
        user_id is null as user_missing,
        datestamp,
        count(item_id) as num_of_items,
        count(case when clicked_item = 1 then item_id end) as num_of_clicks
    from items
    group by
        user_id,
        datestamp
),

purchase_sums as (
    select
        coalesce(user_id, 0) as user_key,
        user_id is null as user_missing,
        datestamp,
        sum(purchased) as num_of_purchases,
        sum(paidamount) as revenue
    from ue
    group by
        user_id,
        datestamp
),

final as (
    select
        u.variant_id,
        item_counts.user_id,
        item_counts.datestamp,
        u.age,
        u.gender,
        item_counts.num_of_items,
        item_counts.num_of_clicks,
        purchase_sums.num_of_purchases,
        purchase_sums.revenue
    from item_counts
    inner join purchase_sums
        on item_counts.user_key = purchase_sums.user_key
        and item_counts.user_missing = purchase_sums.user_missing
        and item_counts.datestamp = purchase_sums.datestamp
    left join u
        on item_counts.user_id = u.user_id
        and cast(item_counts.datestamp as date) = u.as_of_date
)

select * from final
