-- One row per variant: the sums the readout's statistics need, over the users' totals
-- as of the day (the square sum gives the variance of revenue per user).
select
    variant_id,
    count(*) as users,
    sum(impressions) as impressions,
    sum(clicks) as clicks,
    sum(case when purchases > 0 then 1 else 0 end) as purchasers,
    sum(revenue) as revenue,
    sum(cast(revenue as double precision) * cast(revenue as double precision)) as revenue_squares
from analytics.ab_test_user_totals
where as_of_date = :as_of_date
group by variant_id
order by variant_id
