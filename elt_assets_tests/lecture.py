"""The lecture's own models, run directly on a scratch database: the reference the project's
analytics table is compared with, row for row and column type for column type.

The SQL is `bench/lecture_models.sql` (the benchmark's floor runs the same file). On
PostgreSQL its one click test is rewritten by the floor's own rewrite, because PostgreSQL
has no implicit integer-to-boolean cast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence

import duckdb
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from elt_assets.settings import PROJECT_ROOT
from elt_assets_tests.support import query

# The benchmark's floor defines the raw tables (the lecture's column types, in the landing
# files' column order) and the one rewrite PostgreSQL needs; the tests use the same.
sys.path.insert(0, str(PROJECT_ROOT / "bench"))
from floor import LECTURE_MODELS, RAW_TABLES as RAW_COLUMNS  # noqa: E402
from floor_postgres import models_script  # noqa: E402

ANALYTICS = "analytics.analytics_variant_user_daily"

RawRows = Mapping[str, Iterable[Sequence]]

# The lecture's first query: the summary straight over the raw tables, with inner joins.
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



def lecture_script(dialect: str) -> str:
    return models_script() if dialect == "postgresql" else LECTURE_MODELS.read_text(encoding="utf-8")


def _create_raw(execute) -> None:
    execute("create schema raw_data")
    for table, columns in RAW_COLUMNS.items():
        execute(f"create table raw_data.{table} ({', '.join(f'{name} {kind}' for name, kind in columns)})")


def lecture_analytics_duckdb(raw: RawRows) -> tuple[list[tuple], list[tuple[str, str]]]:
    """The lecture's models over the given raw rows in an in-memory DuckDB: (rows, column types)."""
    connection = duckdb.connect()
    try:
        _create_raw(connection.execute)
        for table, columns in RAW_COLUMNS.items():
            rows = [tuple(row) for row in raw[table]]
            if rows:
                marks = ", ".join("?" for _ in columns)
                connection.executemany(f"insert into raw_data.{table} values ({marks})", rows)
        connection.execute(lecture_script("duckdb"))
        rows = connection.execute(f"select * from {ANALYTICS}").fetchall()
        types = connection.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'analytics' and table_name = 'analytics_variant_user_daily' "
            "order by ordinal_position"
        ).fetchall()
        return rows, types
    finally:
        connection.close()


def lecture_analytics_postgres(raw: RawRows, scratch_url: str) -> tuple[list[tuple], list[tuple[str, str]]]:
    """The same on an empty PostgreSQL database: (rows, column types)."""
    engine = sa.create_engine(scratch_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            _create_raw(lambda sql: connection.execute(sa.text(sql)))
            for table, columns in RAW_COLUMNS.items():
                rows = [dict(zip([name for name, _ in columns], row)) for row in raw[table]]
                if rows:
                    names = ", ".join(name for name, _ in columns)
                    marks = ", ".join(f":{name}" for name, _ in columns)
                    connection.execute(sa.text(f"insert into raw_data.{table} ({names}) values ({marks})"), rows)
            connection.exec_driver_sql(lecture_script("postgresql"))
        with engine.connect() as connection:
            rows = [tuple(row) for row in connection.execute(sa.text(f"select * from {ANALYTICS}"))]
            types = [
                tuple(row)
                for row in connection.execute(
                    sa.text(
                        "select column_name, data_type from information_schema.columns "
                        "where table_schema = 'analytics' and table_name = 'analytics_variant_user_daily' "
                        "order by ordinal_position"
                    )
                )
            ]
        return rows, types
    finally:
        engine.dispose()


def column_types(url: str, schema: str, table: str) -> list[tuple[str, str]]:
    """(column, data type) of a table of the project's warehouse, in table order."""
    return query(
        url,
        "select column_name, data_type from information_schema.columns "
        f"where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position",
    )
