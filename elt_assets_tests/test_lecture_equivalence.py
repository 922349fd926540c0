"""On production-shaped data where nobody is re-assigned or changes attributes, the analytics
table is the lecture's, row for row and column type for column type: the lecture's models
(`bench/lecture_models.sql`) run directly on the same landing rows, on DuckDB and PostgreSQL.

The data holds repeated impressions, events of users never assigned a variant, assigned
users without attributes and rows without a datestamp. Late assignments and attribute
changes are left out here: the lecture joins one unversioned row per user, where these
models join each event to its user as of the event's day (see the point-in-time tests)."""

from __future__ import annotations

import re

import duckdb
import pytest

from elt_assets.landing.generator import generate_landing
from elt_assets.models.registry import registry
from elt_assets_tests.lecture import (
    LECTURE_RAW_SELECT,
    RAW_COLUMNS,
    column_types,
    lecture_analytics_duckdb,
    lecture_analytics_postgres,
)
from elt_assets_tests.support import _normalized, _sort_key, rows, run_elt


def landed_rows(landing) -> dict[str, list[tuple]]:
    """Every landing CSV row, typed as the lecture's raw tables, read by DuckDB directly."""
    connection = duckdb.connect()
    found = {}
    for table, columns in RAW_COLUMNS.items():
        pattern = str(landing / table / "**" / "*.csv")
        types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns)
        names = ", ".join(name for name, _ in columns)
        found[table] = connection.execute(
            f"select {names} from read_csv('{pattern}', header = true, columns = {{{types}}})"
        ).fetchall()
    connection.close()
    return found


@pytest.fixture(scope="module")
def unchanging_landing(tmp_path_factory):
    """Generated data with the production defaults, less re-assignments and attribute changes."""
    landing = tmp_path_factory.mktemp("unchanging") / "landing"
    summary = generate_landing(
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
    assert summary.repeated_impressions > 0 and summary.unassigned_users > 0
    assert summary.users_without_metadata > 0
    return landing


def _sorted(found):
    return sorted((tuple(_normalized(value) for value in row) for row in found), key=_sort_key)


def test_analytics_equals_the_lecture_models(unchanging_landing, warehouse_url, request):
    run_elt(unchanging_landing, warehouse_url, "2023-06-01", "2023-06-07")
    raw = landed_rows(unchanging_landing)
    if warehouse_url.startswith("duckdb"):
        lecture, lecture_types = lecture_analytics_duckdb(raw)
    else:
        from elt_assets_tests.support import fresh_database

        with fresh_database(request.getfixturevalue("postgres_admin_url")) as scratch:
            lecture, lecture_types = lecture_analytics_postgres(raw, scratch)
    ours = rows(warehouse_url, "analytics.analytics_variant_user_daily")
    assert len(ours) > 1000
    assert ours == _sorted(lecture)
    assert column_types(warehouse_url, "analytics", "analytics_variant_user_daily") == lecture_types
    assert any(row[0] is None for row in ours), "unassigned users' events have a NULL variant"


def test_analytics_equals_the_lecture_select_over_raw_tables(unchanging_landing, duckdb_url):
    """The raw SELECT's inner joins leave out unassigned users and users without attributes,
    and it also groups the rows the fact drops for lack of a datestamp."""
    run_elt(unchanging_landing, duckdb_url, "2023-06-01", "2023-06-07")
    ours = [row for row in rows(duckdb_url, "analytics.analytics_variant_user_daily") if row[0] is not None and row[3] is not None]
    with duckdb.connect(duckdb_url.removeprefix("duckdb:///"), read_only=True) as connection:
        lecture = connection.execute(f"select * from ({LECTURE_RAW_SELECT}) where datestamp is not null").fetchall()
    assert ours == _sorted(lecture)


def test_events_without_a_user_stay_a_group_of_their_own_as_in_the_lecture():
    """The model's SQL on hand-made core tables: NULL user_id and NULL item_id rows too."""
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
        "(1, '2023-06-01', 10, 0, 0, 0), "  # item 10 shown to user 1 again: one distinct item, still clicked
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
