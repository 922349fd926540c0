-- Per assigned user, everything the experiment saw of them up to the end of the day:
-- the input of the A/B-test readout (statistics are computed in Python).
with daily as (
    select
        variant_id,
        user_id,
        num_of_items,
        num_of_clicks,
        num_of_purchases,
        revenue
    from {{ ref('analytics_variant_user_daily') }}
    where datestamp < :window_end
        and variant_id is not null
),

final as (
    select
        variant_id,
        user_id,
        sum(num_of_items) as impressions,
        sum(num_of_clicks) as clicks,
        sum(num_of_purchases) as purchases,
        sum(revenue) as revenue
    from daily
    group by
        variant_id,
        user_id
)

select * from final
