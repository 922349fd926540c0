"""The warehouse on Spark, through Spark Connect: the sample built by the landing-zone
sensor equals the DuckDB build table for table; re-runs change nothing; late data is picked
up; a bad file fails and keeps the day; a run stopped halfway is repaired by a re-run;
compile and summary speak Spark.

Needs a Spark Connect server whose databases raw_data, staging, core, analytics and meta may be
dropped (CI starts one: `elt-assets spark-server start DIR`):
    ELT_TEST_SPARK_URL=sc://127.0.0.1:PORT .venv/bin/python -m pytest elt_assets_tests/test_spark_engine.py
Without the URL the module skips, or fails when ELT_REQUIRE_SPARK=1 (as CI sets it).
"""

from __future__ import annotations

import datetime as dt
import os
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from elt_assets import cli
from elt_assets.engines import engine_class, engine_for_url
from elt_assets.engines.base import WarehouseError
from elt_assets.models.compile import models_in_build_order
from elt_assets.models.plan import plan_model
from elt_assets.models.registry import registry
from elt_assets.models.run import run_model
from elt_assets_tests.support import copy_sample, failure_message, run_elt
from elt_assets_tests.test_sensors import LATE_ATTRIBUTES, LocalLanding, execute, ranges, tick

SPARK_URL = os.environ.get("ELT_TEST_SPARK_URL")
if not SPARK_URL and os.environ.get("ELT_REQUIRE_SPARK") == "1":
    raise RuntimeError("ELT_REQUIRE_SPARK=1 but ELT_TEST_SPARK_URL is not set: start a server first")
pytestmark = pytest.mark.skipif(not SPARK_URL, reason="set ELT_TEST_SPARK_URL=sc://host:port to run")

FIRST, LAST = "2023-06-01", "2023-06-14"
SCHEMAS = ("raw_data", "staging", "core", "analytics", "meta")
# The readout's working table is no model of the registry, but is built on every engine.
EXTRA_TABLES = ("analytics.ab_test_user_totals",)


def compared_tables() -> list[str]:
    """Every relation the build writes: raw tables, staging views, core and analytics tables."""
    names = [
        model.qualified_name
        for model in models_in_build_order(registry())
        if model.materialization != "ephemeral"
    ]
    return names + list(EXTRA_TABLES)


def _normal(value):
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, float):
        return float(f"{value:.10g}")  # sums of doubles may differ in the last bits
    return value


def snapshot(url: str, table: str) -> list[dict]:
    """Every row as a dict (columns by name: Spark stores partition columns last), sorted."""
    engine = engine_for_url(url)
    with engine.transaction(read_only=True) as session:
        result = session.execute(f"select * from {table}")
        names = list(result.keys())
        found = [dict(zip(names, map(_normal, row))) for row in result.all()]
    engine.dispose()
    return sorted(found, key=lambda row: [(value is None, str(value)) for _, value in sorted(row.items())])


def assert_same_tables(expected_url: str, url: str) -> dict[str, list[dict]]:
    tables = {}
    for table in compared_tables():
        expected, got = snapshot(expected_url, table), snapshot(url, table)
        assert got, f"{table} is empty"
        assert len(got) == len(expected), f"{table}: {len(got)} rows, expected {len(expected)}"
        assert got == expected, f"{table} differs"
        tables[table] = got
    return tables


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sample, built on Spark by the landing-zone sensor's runs and on DuckDB by one
    range run; the instance keeps the sensor's cursor for later ticks."""
    engine = engine_for_url(SPARK_URL)
    for schema in SCHEMAS:
        engine.spark.sql(f"drop database if exists {schema} cascade")
    root = tmp_path_factory.mktemp("spark")
    landing = copy_sample(root / "landing")
    duckdb_url = f"duckdb:///{root / 'warehouse.duckdb'}"
    on_duckdb = run_elt(landing, duckdb_url, FIRST, LAST)
    duckdb_checks = {
        (evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation.passed
        for evaluation in on_duckdb.get_asset_check_evaluations()
    }
    with dg.instance_for_test() as instance:
        zone = LocalLanding(landing)
        first = tick(instance, zone)
        assert ranges(first) == [(FIRST, LAST)]
        for request in first.run_requests:
            execute(request, landing, SPARK_URL, instance)
        yield {"landing": landing, "zone": zone, "instance": instance, "cursor": first.cursor,
               "duckdb_url": duckdb_url, "root": root, "duckdb_checks": duckdb_checks}


def test_the_sensor_builds_on_spark_what_duckdb_builds(built):
    tables = assert_same_tables(built["duckdb_url"], SPARK_URL)
    assert len(tables["analytics.ab_test_readout"]) >= 8  # the readout ran, with its statistics
    # Every check ran on Spark, with the outcome it has on DuckDB (the sample's 2023 days
    # are not fresh, and its unassigned users' events fail the warn-level relationship).
    instance = built["instance"]
    on_spark = {
        (evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation.passed
        for run in instance.get_runs()
        for record in instance.get_records_for_run(
            run_id=run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        for evaluation in [record.event_log_entry.dagster_event.event_specific_data]
    }
    assert len(on_spark) >= 15 and on_spark == built["duckdb_checks"]
    # The catalog reports the model's column order (Spark keeps the partition column last).
    engine = engine_for_url(SPARK_URL)
    with engine.transaction() as session:
        columns = [column.name for column in engine.table_columns(session, "core", "fact_user_event")]
        assert columns == ["user_id", "datestamp", "item_id", "clicked", "purchased", "paidamount"]
        assert engine.table_columns(session, "core", "no_such_table") == []
    assert engine_class(SPARK_URL).kind == "spark"


def test_a_rerun_of_a_window_changes_nothing(built):
    before = {table: snapshot(SPARK_URL, table) for table in compared_tables()}
    run_elt(built["landing"], SPARK_URL, "2023-06-06")
    for table, rows in before.items():
        assert snapshot(SPARK_URL, table) == rows, f"{table} changed on a re-run"


def test_late_data_for_a_loaded_day_is_picked_up(built):
    zone, landing = built["zone"], built["landing"]
    # User 1 moves to another age bucket on 2023-06-12, and the change lands late.
    zone.put("user_metadata/2023-06-12/part-late.csv", LATE_ATTRIBUTES.format(user=1, day="2023-06-12"))
    late = tick(built["instance"], zone, built["cursor"])
    assert ranges(late) == [("2023-06-12", "2023-06-12"), ("2023-06-13", LAST)]
    for request in late.run_requests:
        execute(request, landing, SPARK_URL, built["instance"])
    rebuilt = f"duckdb:///{built['root'] / 'rebuilt.duckdb'}"
    run_elt(landing, rebuilt, FIRST, LAST)
    tables = assert_same_tables(rebuilt, SPARK_URL)
    built["duckdb_url"] = rebuilt  # the reference from now on
    assert any(
        row["user_id"] == 1 and row["age"] == "55+" and str(row["as_of_date"]) == "2023-06-12"
        for row in tables["core.dim_user"]
    )


def test_a_bad_landing_file_fails_naming_it_and_keeps_the_day(built):
    landing = built["landing"]
    before = snapshot(SPARK_URL, "raw_data.user_event")
    bad = Path(landing) / "user_event" / "2023-06-04" / "part-bad.csv"
    bad.parent.mkdir()
    bad.write_text("user_id,datestamp,item_id,clicked,purchased,paidamount\n7,2023-06-04 10:00:00,twelve,0,0,0\n")
    try:
        result = run_elt(landing, SPARK_URL, "2023-06-04", selection="raw_data/user_event", raise_on_error=False)
        assert not result.success
        message = failure_message(result)
        assert "part-bad.csv" in message and "twelve" in message, message
        assert snapshot(SPARK_URL, "raw_data.user_event") == before
    finally:
        bad.unlink()
        bad.parent.rmdir()


def test_a_run_stopped_halfway_is_repaired_by_a_rerun(built):
    """Spark has no transactions: a run that dies between statements leaves what it wrote.
    Stop the snapshot's plan after its window is overwritten (before validity is
    recomputed), and the analytics' plan after its overwrite (its staged view left
    behind); a re-run of each gives back the same table."""
    models = registry()
    engine = engine_for_url(SPARK_URL)
    # 2023-06-01 holds versions that later days superseded.
    for name, first, end in (
        ("dim_user_metadata", date(2023, 6, 1), date(2023, 6, 3)),
        ("analytics_variant_user_daily", date(2023, 6, 8), date(2023, 6, 10)),
    ):
        model = models[name]
        before = snapshot(SPARK_URL, model.qualified_name)
        with engine.transaction() as session:
            plan = plan_model(engine, session, models, model, first, end)
            overwrite = next(index for index, step in enumerate(plan.steps) if type(step).__name__ == "OverwriteWindow")
            for step in plan.steps[: overwrite + 1]:
                step.run(engine, session)
        if name == "dim_user_metadata":
            # Validity was not recomputed: the window's versions are all "current".
            halfway = snapshot(SPARK_URL, model.qualified_name)
            assert halfway != before
        run_model(engine, models, model, first, end)
        assert snapshot(SPARK_URL, model.qualified_name) == before, f"{name} was not repaired by the re-run"


def test_a_failed_run_says_what_it_leaves_and_keeps_the_table(built):
    engine = engine_for_url(SPARK_URL)
    models = registry()
    before = snapshot(SPARK_URL, "analytics.analytics_variant_user_daily")
    with engine.transaction() as session:
        session.execute("alter table core.dim_user rename to core.dim_user_away", native=True)
    try:
        with pytest.raises(WarehouseError) as raised:
            run_model(engine, models, models["analytics_variant_user_daily"], date(2023, 6, 4), date(2023, 6, 5))
    finally:
        with engine.transaction() as session:
            session.execute("alter table core.dim_user_away rename to core.dim_user", native=True)
    message = str(raised.value)
    assert "analytics.analytics_variant_user_daily for [2023-06-04, 2023-06-05) failed" in message
    assert "dim_user" in message and "re-run the same partitions" in message
    assert "JVM" not in message and "\n" not in message
    assert snapshot(SPARK_URL, "analytics.analytics_variant_user_daily") == before


def test_compile_and_summary_on_spark(built, monkeypatch, capsys):
    monkeypatch.setenv("ELT_WAREHOUSE_URL", SPARK_URL)
    assert cli.main(["compile", "--partition", "2023-06-05", "core.dim_user"]) == 0
    script = capsys.readouterr().out
    assert "insert overwrite table core.dim_user partition (as_of_date)" in script
    assert "with recursive days as" in script.lower()
    assert "begin;" not in script  # no transaction on Spark

    assert cli.main(["summary", "--first-day", FIRST, "--last-day", LAST]) == 0
    on_spark = capsys.readouterr().out
    monkeypatch.setenv("ELT_WAREHOUSE_URL", built["duckdb_url"])
    assert cli.main(["summary", "--first-day", FIRST, "--last-day", LAST]) == 0
    on_duckdb = capsys.readouterr().out
    assert "control" in on_spark and on_spark.replace(SPARK_URL, "") == on_duckdb.replace(built["duckdb_url"], "")


def test_delta_tables_compile_to_delete_insert_and_merge(built, monkeypatch, capsys):
    """Delta's and Iceberg's jars cannot be had here: only the statements are checked."""
    monkeypatch.setenv("ELT_WAREHOUSE_URL", SPARK_URL)
    monkeypatch.setenv("ELT_SPARK_TABLE_FORMAT", "delta")
    assert cli.main(["compile", "--partition", "2023-06-05", "core.dim_user_metadata"]) == 0
    script = capsys.readouterr().out
    assert "delete from core.dim_user_metadata where partition_date >= date '2023-06-05'" in script
    assert "insert into core.dim_user_metadata by name select * from" in script
    assert "merge into core.dim_user_metadata as versions" in script
    assert "insert overwrite" not in script and "drop if exists partition" not in script
