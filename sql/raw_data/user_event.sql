create table if not exists raw_data.user_event (
    user_id integer,
    datestamp timestamp,
    item_id integer,
    clicked integer,
    purchased integer,
    paidamount integer,
    partition_date date not null,
    source_file varchar(1024) not null
)
