with source as (
    select * from {{ source('raw_data', 'user_event') }}
),

renamed as (
    select
        user_id,
        datestamp,
        item_id,
        clicked,
        purchased,
        paidamount,
        partition_date
    from source
)

select * from renamed
