with source as (
    select * from {{ source('raw_data', 'user_metadata') }}
),

renamed as (
    select
        user_id,
        age,
        gender,
        updated_at,
        partition_date
    from source
)

select * from renamed
