-- Impressions, clicks, purchases and revenue of every assigned user's days before the
-- given day: what the previous day's per-user totals must add up to if they are current.
select
    coalesce(sum(num_of_items), 0) as impressions,
    coalesce(sum(num_of_clicks), 0) as clicks,
    coalesce(sum(num_of_purchases), 0) as purchases,
    coalesce(sum(revenue), 0) as revenue
from {{ ref('analytics_variant_user_daily') }}
where datestamp < :history_end
    and variant_id is not null
