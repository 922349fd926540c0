-- Click-through rate per variant and day, for the readout's chart.
select
    cast(datestamp as date) as day,
    variant_id,
    sum(num_of_clicks) as clicks,
    sum(num_of_items) as impressions
from {{ ref('analytics_variant_user_daily') }}
where datestamp < :window_end
    and variant_id is not null
group by
    cast(datestamp as date),
    variant_id
order by
    day,
    variant_id
