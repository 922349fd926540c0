-- Point in time: for each day of the window, every user assigned by then, with the
-- attribute version that had landed by that day and was valid at its end.
with days as (
    select cast(day as date) as as_of_date
    from generate_series(
        cast(:window_start as timestamp),
        cast(:window_end as timestamp) - interval '1 day',
        interval '1 day'
    ) as days (day)
),

uv as (
    select
        user_id,
        variant_id,
        assigned_on
    from {{ ref('dim_user_variant') }}
    where assigned_on < :window_end
),

um as (
    select
        user_id,
        age,
        gender,
        valid_from,
        partition_date
    from {{ ref('dim_user_metadata') }}
    where partition_date < :window_end
),

variant_by_day as (
    select
        days.as_of_date,
        uv.user_id,
        uv.variant_id
    from days
    inner join uv
        on uv.assigned_on <= days.as_of_date
),

metadata_by_day as (
    select
        days.as_of_date,
        um.user_id,
        um.age,
        um.gender,
        row_number() over (
            partition by days.as_of_date, um.user_id
            order by um.valid_from desc
        ) as version_rank
    from days
    inner join um
        on um.partition_date <= days.as_of_date
        and um.valid_from < days.as_of_date + interval '1 day'
),

final as (
    select
        variant_by_day.as_of_date,
        variant_by_day.user_id,
        variant_by_day.variant_id,
        metadata_by_day.age,
        metadata_by_day.gender
    from variant_by_day
    left join metadata_by_day
        on variant_by_day.user_id = metadata_by_day.user_id
        and variant_by_day.as_of_date = metadata_by_day.as_of_date
        and metadata_by_day.version_rank = 1
)

select * from final
