-- SCD Type 0: a user's variant is the one of the first assignment. Rows are derived from
-- the whole assignment history up to the window's end, so the result does not depend on
-- the order in which partitions are materialized.
with assignments as (
    select
        user_id,
        variant_id,
        partition_date
    from {{ ref('src_user_variant') }}
    where partition_date < :window_end
        and user_id is not null
),

ranked as (
    select
        user_id,
        variant_id,
        partition_date as assigned_on,
        row_number() over (
            partition by user_id
            order by partition_date, variant_id
        ) as assignment_rank
    from assignments
),

final as (
    select
        user_id,
        variant_id,
        assigned_on
    from ranked
    where assignment_rank = 1
        and assigned_on >= :window_start
)

select * from final
