-- The lecture's summary, unchanged in columns and grouping; users are joined as of the
-- event's day. clicked is an integer, so the click test is written `clicked <> 0`, which
-- means the same as the lecture's `case when clicked` and also runs on PostgreSQL.
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

final as (
    select
        u.variant_id,
        ue.user_id,
        ue.datestamp,
        u.age,
        u.gender,
        count(distinct ue.item_id) as num_of_items,
        count(distinct case when ue.clicked <> 0 then ue.item_id end) as num_of_clicks,
        sum(ue.purchased) as num_of_purchases,
        sum(ue.paidamount) as revenue
    from ue
    left join u
        on ue.user_id = u.user_id
        and cast(ue.datestamp as date) = u.as_of_date
    group by
        u.variant_id,
        ue.user_id,
        ue.datestamp,
        u.age,
        u.gender
)

select * from final
