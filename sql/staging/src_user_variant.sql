with source as (
    select * from {{ source('raw_data', 'user_variant') }}
),

renamed as (
    select
        user_id,
        variant_id,
        partition_date
    from source
)

select * from renamed
