-- Point in time: for each day of the window, every user assigned by then, with the
-- attribute version that had landed by that day and was valid at its end.
-- A version is visible from the later of the day it landed and the day it became valid;
-- among the visible versions, the latest valid_from wins. The winner can only change on
-- a day a version becomes visible, so each user's history is cut into intervals at
-- those days first, and each user-day then looks up its one interval.
with recursive days as (
    -- The window's days, one row each: a recursive CTE reads the same on every engine.
    select cast(:window_start as date) as as_of_date
    union all
    select cast(as_of_date + interval '1 day' as date) as as_of_date
    from days
    where as_of_date + interval '1 day' < cast(:window_end as date)
),

uv as (
    select
        user_id,
        variant_id,
        assigned_on
    from {{ ref('dim_user_variant') }}
    where assigned_on < :window_end
),

versions as (
    select
        user_id,
        age,
        gender,
        valid_from,
        greatest(partition_date, cast(valid_from as date)) as visible_from
    from {{ ref('dim_user_metadata') }}
    where partition_date < :window_end
),

change_days as (
    select distinct
        user_id,
        visible_from as effective_from
    from versions
),

winners as (
    select
        change_days.user_id,
        change_days.effective_from,
        versions.age,
        versions.gender,
        row_number() over (
            partition by change_days.user_id, change_days.effective_from
            order by versions.valid_from desc
        ) as version_rank
    from change_days
    inner join versions
        on versions.user_id = change_days.user_id
        and versions.visible_from <= change_days.effective_from
),

intervals as (
    select
        user_id,
        age,
        gender,
        effective_from,
        lead(effective_from) over (partition by user_id order by effective_from) as effective_to
    from winners
    where version_rank = 1
),

final as (
    select
        days.as_of_date,
        uv.user_id,
        uv.variant_id,
        intervals.age,
        intervals.gender
    from days
    inner join uv
        on uv.assigned_on <= days.as_of_date
    left join intervals
        on intervals.user_id = uv.user_id
        and intervals.effective_from <= days.as_of_date
        and (intervals.effective_to is null or days.as_of_date < intervals.effective_to)
)

select * from final
