create table if not exists raw_data.user_metadata (
    user_id integer,
    age varchar(16),
    gender varchar(16),
    updated_at timestamp,
    partition_date date not null,
    source_file varchar(1024) not null
)
