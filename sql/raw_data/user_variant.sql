create table if not exists raw_data.user_variant (
    user_id integer,
    variant_id varchar(32),
    partition_date date not null,
    source_file varchar(1024) not null
)
