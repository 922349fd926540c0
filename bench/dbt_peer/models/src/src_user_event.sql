-- Staging view over the raw events (the lecture's model, reading the declared source).
WITH src_user_event AS (
  SELECT * FROM {{ source('raw_data', 'user_event') }}
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
