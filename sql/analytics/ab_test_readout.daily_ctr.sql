-- Click-through rate per variant and day, for the readout's chart (the last 60
-- days up to the window's end, so the chart costs the same however long the experiment ran).
select
    cast(datestamp as date) as day,
    variant_id,
    sum(num_of_clicks) as clicks,
    sum(num_of_items) as impressions
from {{ ref('analytics_variant_user_daily') }}
where datestamp >= :chart_start
    and datestamp < :window_end
    and variant_id is not null
group by
    cast(datestamp as date),
    variant_id
order by
    day,
    variant_id
