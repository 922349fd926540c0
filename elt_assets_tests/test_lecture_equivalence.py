"""Where no attribute changes, the analytics table is the lecture's query, row for row."""

from __future__ import annotations

import duckdb
import pytest

from elt_assets.generator import generate_landing
from elt_assets_tests.support import duckdb_path, run_elt

# The lecture's summary over the raw tables, verbatim.
LECTURE_RAW_SELECT = """
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
FROM raw_data.user_event ue
JOIN raw_data.user_variant uv ON ue.user_id = uv.user_id
JOIN raw_data.user_metadata um ON uv.user_id = um.user_id
GROUP by 1, 2, 3, 4, 5
"""

# The lecture's dbt models chained as CTEs: src (ephemeral), dims, fact, dim_user, analytics.
LECTURE_DBT_CHAIN = """
WITH src_user_event AS (
  SELECT user_id, datestamp, item_id, clicked, purchased, paidamount FROM raw_data.user_event
), src_user_variant AS (
  SELECT user_id, variant_id FROM raw_data.user_variant
), src_user_metadata AS (
  SELECT user_id, age, gender, updated_at FROM raw_data.user_metadata
), dim_user_variant AS (
  SELECT user_id, variant_id FROM src_user_variant
), dim_user_metadata AS (
  SELECT user_id, age, gender, updated_at FROM src_user_metadata
), fact_user_event AS (
  SELECT user_id, datestamp, item_id, clicked, purchased, paidamount
  FROM src_user_event WHERE datestamp is not NULL
), dim_user AS (
  SELECT uv.user_id, uv.variant_id, um.age, um.gender
  FROM dim_user_variant uv LEFT JOIN dim_user_metadata um ON uv.user_id = um.user_id
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
FROM fact_user_event ue LEFT JOIN dim_user u ON ue.user_id = u.user_id
GROUP by 1, 2, 3, 4, 5
"""


@pytest.fixture(scope="module")
def unchanging(tmp_path_factory):
    """A warehouse built from data where nobody is re-assigned or changes attributes."""
    root = tmp_path_factory.mktemp("unchanging")
    landing = root / "landing"
    generate_landing(
        landing,
        users=300,
        days=7,
        events_per_day=2000,
        seed=11,
        late_user_share=0.0,
        reassignments=0,
        metadata_changes=0,
        null_datestamp_rows=4,
    )
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    run_elt(landing, url, "2023-06-01", "2023-06-07")
    return url


def _query(url: str, sql: str) -> tuple[list[tuple], list[tuple]]:
    with duckdb.connect(duckdb_path(url), read_only=True) as connection:
        result = connection.execute(f"select * from ({sql}) order by all").fetchall()
        types = connection.execute(f"select column_name, column_type from (describe ({sql}))").fetchall()
    return result, types


def test_analytics_equals_the_lecture_dbt_models(unchanging):
    ours, our_types = _query(unchanging, "select * from analytics.analytics_variant_user_daily")
    lecture, lecture_types = _query(unchanging, LECTURE_DBT_CHAIN)
    assert len(ours) > 1000
    assert ours == lecture
    assert our_types == lecture_types


def test_analytics_equals_the_lecture_select_over_raw_tables(unchanging):
    # The raw SELECT also groups the NULL-datestamp rows the fact drops; leave those out.
    ours, _ = _query(unchanging, "select * from analytics.analytics_variant_user_daily")
    lecture, _ = _query(unchanging, f"select * from ({LECTURE_RAW_SELECT}) where datestamp is not null")
    assert ours == lecture


def test_events_without_a_user_stay_a_group_of_their_own_as_in_the_lecture():
    """The model's SQL on hand-made core tables: NULL user_id and NULL item_id rows too."""
    import re

    from elt_assets.models import registry

    models = registry()
    sql = models.render(models["analytics_variant_user_daily"]).text
    native = re.sub(r"(?<![:\w]):([a-z_]+)\b", r"$\1", sql)
    connection = duckdb.connect()
    connection.execute("create schema core")
    connection.execute(
        "create table core.fact_user_event (user_id integer, datestamp timestamp, item_id integer, "
        "clicked integer, purchased integer, paidamount integer)"
    )
    connection.execute(
        "insert into core.fact_user_event values "
        "(1, '2023-06-01', 10, 1, 0, 0), (1, '2023-06-01', 11, 0, 1, 30), (1, '2023-06-01', null, 1, 1, 5), "
        "(null, '2023-06-01', 10, 1, 1, 7), (null, '2023-06-01', 12, 0, 0, 0), (0, '2023-06-01', 10, 0, 1, 9), "
        "(2, '2023-06-02', 10, 1, 1, 4)"
    )
    connection.execute(
        "create table core.dim_user (as_of_date date, user_id integer, variant_id varchar, age varchar, gender varchar)"
    )
    connection.execute(
        "insert into core.dim_user values ('2023-06-01', 1, 'test', '25-34', 'F'), "
        "('2023-06-01', 0, 'control', null, null), ('2023-06-02', 2, 'control', '35-44', 'M')"
    )
    ours = connection.execute(native, {"window_start": "2023-06-01", "window_end": "2023-06-03"}).fetchall()
    lecture = connection.execute(
        """
        SELECT variant_id, ue.user_id, datestamp, age, gender,
          COUNT(DISTINCT item_id) num_of_items,
          COUNT(DISTINCT CASE WHEN clicked THEN item_id END) num_of_clicks,
          SUM(purchased) num_of_purchases, SUM(paidamount) revenue
        FROM core.fact_user_event ue
        LEFT JOIN core.dim_user u ON ue.user_id = u.user_id AND cast(ue.datestamp as date) = u.as_of_date
        GROUP by 1, 2, 3, 4, 5
        """
    ).fetchall()
    assert sorted(ours, key=repr) == sorted(lecture, key=repr)
    assert len(ours) == 4  # users 1, 0, 2 and the NULL user
