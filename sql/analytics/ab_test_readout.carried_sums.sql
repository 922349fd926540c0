-- The previous day's per-user totals added up, to compare with the history they stand for.
select
    count(*) as users,
    coalesce(sum(impressions), 0) as impressions,
    coalesce(sum(clicks), 0) as clicks,
    coalesce(sum(purchases), 0) as purchases,
    coalesce(sum(revenue), 0) as revenue
from analytics.ab_test_user_totals
where as_of_date = :previous_day
