"""The Spark engine prototype builds the sample like DuckDB does (needs a Spark Connect server).

Run against a throwaway server (its databases raw_data, staging, core and analytics are
dropped first):
    .venv/bin/python -m elt_assets.engines.spark_server start /tmp/spark-proto
    ELT_TEST_SPARK_URL=sc://127.0.0.1:PORT .venv/bin/python -m pytest -q elt_assets_tests/test_spark_engine.py
"""

from __future__ import annotations

import datetime as dt
import os
import time
from datetime import date

import pytest

from elt_assets.engines import engine_for_url
from elt_assets.models.compile import models_in_build_order
from elt_assets.models.registry import Registry, RenderedSql, registry
from elt_assets.models.run import run_model
from elt_assets.settings import SEEDS_LANDING_DIR

SPARK_URL = os.environ.get("ELT_TEST_SPARK_URL")
# Not yet required in CI: the engine is not registered, and CI starts no shared server yet.
pytestmark = pytest.mark.skipif(
    not SPARK_URL, reason="set ELT_TEST_SPARK_URL=sc://host:port to run"
)

FIRST, END = date(2023, 6, 1), date(2023, 6, 4)
SCHEMAS = ("raw_data", "staging", "core", "analytics")
COMPARED = ("raw_data", "core", "analytics")

# The days CTE of core/dim_user.sql, and the portable one proposed for it
# (/work/notes/spark-engine.md): generate_series has no Spark translation.
ORIGINAL_DAYS = """with days as (
    select cast(day as date) as as_of_date
    from generate_series(
        cast(:window_start as timestamp),
        cast(:window_end as timestamp) - interval '1 day',
        interval '1 day'
    ) as days (day)
),"""
PORTABLE_DAYS = """with recursive days as (
    select cast(:window_start as date) as as_of_date
    union all
    select cast(as_of_date + interval '1 day' as date) as as_of_date
    from days
    where as_of_date + interval '1 day' < cast(:window_end as date)
),"""


@pytest.fixture
def portable_dim_user(monkeypatch):
    original = Registry.render

    def render(self, model, inline_ephemeral=True):
        rendered = original(self, model, inline_ephemeral=inline_ephemeral)
        if model.name == "dim_user" and ORIGINAL_DAYS in rendered.text:
            kwargs = {
                field: getattr(rendered, field)
                for field in RenderedSql.__dataclass_fields__
            }
            kwargs["text"] = rendered.text.replace(ORIGINAL_DAYS, PORTABLE_DAYS)
            return RenderedSql(**kwargs)
        return rendered

    monkeypatch.setattr(Registry, "render", render)


@pytest.fixture(scope="module")
def spark_engine():
    from elt_assets.engines.spark import SparkEngine

    engine = SparkEngine(SPARK_URL)
    for schema in SCHEMAS:
        engine.spark.sql(f"drop database if exists {schema} cascade")
    yield engine
    engine.dispose()


def build(engine, first=FIRST, end=END) -> dict[str, float]:
    models = registry()
    seconds = {}
    for model in models_in_build_order(models):
        if (
            model.materialization == "python"
        ):  # the readout writes itself, not through a plan
            continue
        started = time.monotonic()
        run_model(
            engine, models, model, first, end, landing_root=str(SEEDS_LANDING_DIR)
        )
        seconds[model.qualified_name] = round(time.monotonic() - started, 1)
    return seconds


def built_tables() -> list[str]:
    return [
        model.qualified_name
        for model in models_in_build_order(registry())
        if model.schema in COMPARED
        and model.materialization not in ("python", "view", "ephemeral")
    ]


def _normal(value):
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def snapshot(engine, table: str) -> list[dict]:
    """Every row as a dict (columns by name: Spark moves partition columns last), sorted."""
    with engine.transaction(read_only=True) as session:
        result = session.execute(f"select * from {table}")
        names = list(result.keys())
        rows = [dict(zip(names, map(_normal, row))) for row in result.all()]
    return sorted(
        rows,
        key=lambda row: [
            (value is None, str(value)) for _, value in sorted(row.items())
        ],
    )


def test_spark_builds_what_duckdb_builds_and_a_rerun_changes_nothing(
    spark_engine, portable_dim_user, tmp_path
):
    duck = engine_for_url(f"duckdb:///{tmp_path}/w.duckdb")
    duck_seconds = build(duck)
    spark_seconds = build(spark_engine)
    print("\nseconds per model, duckdb:", duck_seconds, "\nspark:", spark_seconds)

    tables = built_tables()
    assert (
        "core.dim_user" in tables and "analytics.analytics_variant_user_daily" in tables
    )
    first = {}
    for table in tables:
        expected, got = snapshot(duck, table), snapshot(spark_engine, table)
        assert got, f"{table} is empty on Spark"
        assert got == expected, f"{table} differs"
        first[table] = got

    # Re-running a window (the middle day alone, then all three) leaves every table as it was.
    rerun_seconds = build(spark_engine, date(2023, 6, 2), date(2023, 6, 3))
    print("re-run of 2023-06-02:", rerun_seconds)
    build(spark_engine)
    for table in tables:
        assert snapshot(spark_engine, table) == first[table], (
            f"{table} changed on a re-run"
        )

    # The fact's table reports the query's column order (Spark keeps datestamp last).
    with spark_engine.transaction() as session:
        columns = [
            column.name
            for column in spark_engine.table_columns(session, "core", "fact_user_event")
        ]
        assert columns == [
            "user_id",
            "datestamp",
            "item_id",
            "clicked",
            "purchased",
            "paidamount",
        ]
        assert spark_engine.table_columns(session, "core", "no_such_table") == []


def test_the_portable_days_cte_gives_the_original_rows_on_duckdb(tmp_path):
    import duckdb

    original = (
        f"select * from ({ORIGINAL_DAYS[:-1]} select as_of_date from days) order by 1"
    )
    portable = (
        f"select * from ({PORTABLE_DAYS[:-1]} select as_of_date from days) order by 1"
    )
    with duckdb.connect() as connection:
        for start, end in [
            ("2023-06-01", "2023-06-04"),
            ("2023-06-05", "2023-06-06"),
            ("2023-12-30", "2024-01-02"),
        ]:
            args = {
                "window_start": date.fromisoformat(start),
                "window_end": date.fromisoformat(end),
            }
            rows = [
                connection.execute(
                    query.replace(":window_start", "$window_start").replace(
                        ":window_end", "$window_end"
                    ),
                    args,
                ).fetchall()
                for query in (original, portable)
            ]
            assert rows[0] == rows[1] and rows[0]
