-- The readout's working table: one row per day, variant and user, with the user's
-- impressions, clicks, purchases and revenue summed from the first day up to that day.
create table if not exists analytics.ab_test_user_totals (
    as_of_date date not null,
    variant_id varchar(32) not null,
    user_id integer,
    impressions bigint,
    clicks bigint,
    purchases bigint,
    revenue bigint
)
