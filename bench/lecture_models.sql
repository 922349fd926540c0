-- The lecture's models, run by hand: the floor the benchmark compares against (floor.py
-- on DuckDB; floor_postgres.py on PostgreSQL, which rewrites the one click test). Staging models are views (the lecture's default), the rest tables
-- built with CREATE TABLE AS, in dependency order.
create schema if not exists staging;
create schema if not exists core;
create schema if not exists analytics;

create view staging.src_user_event as
WITH src_user_event AS (
  SELECT * FROM raw_data.user_event
)
SELECT
  user_id,
  datestamp,
  item_id,
  clicked,
  purchased,
  paidamount
FROM
  src_user_event;

create view staging.src_user_variant as
WITH src_user_variant AS (
  SELECT * FROM raw_data.user_variant
)
SELECT
  user_id,
  variant_id
FROM
  src_user_variant;

create view staging.src_user_metadata as
WITH src_user_metadata AS (
  SELECT * FROM raw_data.user_metadata
)
SELECT
  user_id,
  age,
  gender,
  updated_at
FROM
  src_user_metadata;

create table core.dim_user_variant as
WITH src_user_variant AS (
  SELECT * FROM staging.src_user_variant
)
SELECT
  user_id,
  variant_id
FROM
  src_user_variant;

create table core.dim_user_metadata as
WITH src_user_metadata AS (
    SELECT * FROM staging.src_user_metadata
)
SELECT
    user_id,
    age,
    gender,
    updated_at
FROM
    src_user_metadata;

create table core.fact_user_event as
WITH src_user_event AS (
    SELECT * FROM staging.src_user_event
)
SELECT
    user_id,
    datestamp,
    item_id,
    clicked,
    purchased,
    paidamount
FROM
  src_user_event
WHERE datestamp is not NULL;

create table core.dim_user as
WITH um AS (
    SELECT * FROM core.dim_user_metadata
), uv AS (
    SELECT * FROM core.dim_user_variant
)
SELECT
    uv.user_id,
    uv.variant_id,
    um.age,
    um.gender
FROM uv
LEFT JOIN um ON uv.user_id = um.user_id;

create table analytics.analytics_variant_user_daily as
WITH u AS (
    SELECT * FROM core.dim_user
), ue AS (
    SELECT * FROM core.fact_user_event
)
SELECT
    variant_id,
    ue.user_id,
    datestamp,
    age,
    gender,
    COUNT(DISTINCT item_id) num_of_items,
    COUNT(DISTINCT CASE WHEN clicked THEN item_id END) num_of_clicks,
    SUM(purchased) num_of_purchases,
    SUM(paidamount) revenue
FROM ue LEFT JOIN u ON ue.user_id = u.user_id
GROUP by 1, 2, 3, 4, 5;
