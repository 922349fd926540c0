-- Per landing day of the window: assignments that contradict the user's first assignment.
-- A day without such assignments has no row here.
with assignments as (
    select
        user_id,
        variant_id,
        partition_date
    from {{ ref('src_user_variant') }}
    where partition_date < :window_end
        and user_id is not null
),

first_assignment as (
    select
        user_id,
        variant_id
    from (
        select
            user_id,
            variant_id,
            row_number() over (
                partition by user_id
                order by partition_date, variant_id
            ) as assignment_rank
        from assignments
    ) as ranked
    where assignment_rank = 1
),

final as (
    select
        assignments.partition_date as day,
        count(*) as conflicting_assignments
    from assignments
    inner join first_assignment
        on assignments.user_id = first_assignment.user_id
    where assignments.partition_date >= :window_start
        and assignments.variant_id <> first_assignment.variant_id
    group by assignments.partition_date
)

select * from final
