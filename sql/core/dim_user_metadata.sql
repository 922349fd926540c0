-- SCD Type 2 versions, one per user and updated_at, in the partition of the day the
-- version first landed. valid_to and is_current are set after the write, over each
-- affected user's whole history (see the snapshot materialization).
-- Versions of one (user_id, updated_at) that disagree: the first landed wins. On one
-- landing day the lowest age, then gender, wins, NULL last: staging carries no file or
-- line order, and a fixed order keeps reruns and engines agreeing. The test
-- no_conflicting_versions (warn) counts such keys.
with changes as (
    select
        user_id,
        age,
        gender,
        updated_at,
        partition_date
    from {{ ref('src_user_metadata') }}
    where partition_date < :window_end
        and user_id is not null
        and updated_at is not null
),

first_landing as (
    select
        user_id,
        age,
        gender,
        updated_at,
        partition_date,
        row_number() over (
            partition by user_id, updated_at
            order by
                partition_date,
                age nulls last,
                gender nulls last
        ) as landing_rank
    from changes
),

final as (
    select
        user_id,
        age,
        gender,
        updated_at,
        updated_at as valid_from,
        cast(null as timestamp) as valid_to,
        true as is_current,
        partition_date
    from first_landing
    where landing_rank = 1
        and partition_date >= :window_start
)

select * from final
