create table if not exists analytics.ab_test_readout (
    as_of_date date not null,
    metric varchar(32) not null,
    control_value double precision,
    test_value double precision,
    lift double precision,
    lift_ci_low double precision,
    lift_ci_high double precision,
    p_value double precision,
    flagged boolean
)
