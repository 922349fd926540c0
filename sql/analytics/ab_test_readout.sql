-- Per assigned user, everything the experiment saw of them up to the end of the day:
-- one row per variant and user, the input of the readout's statistics. Computed from the
-- previous day's totals (analytics.ab_test_user_totals) plus the day's rows, so a day
-- costs the same however long the experiment has run. Without the previous day's totals
-- (the first day, or a gap), the history start is the beginning of time and `carried` is
-- empty: the totals are summed from the whole history instead.
with carried as (
    select
        variant_id,
        user_id,
        impressions,
        clicks,
        purchases,
        revenue
    from analytics.ab_test_user_totals
    where as_of_date = :previous_day
),

daily as (
    select
        variant_id,
        user_id,
        num_of_items as impressions,
        num_of_clicks as clicks,
        num_of_purchases as purchases,
        revenue
    from {{ ref('analytics_variant_user_daily') }}
    where datestamp >= :history_start
        and datestamp < :window_end
        and variant_id is not null
),

final as (
    select
        variant_id,
        user_id,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(purchases) as purchases,
        sum(revenue) as revenue
    from (
        select * from carried
        union all
        select * from daily
    ) as both_parts
    group by
        variant_id,
        user_id
)

select * from final
