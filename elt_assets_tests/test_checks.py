"""Data tests as asset checks: bad data fails the right check with the right count, error
checks stop the day's downstream assets, warn checks do not, and clean data passes."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from elt_assets.checks.kinds import Target, evaluate_rows
from elt_assets.engines.duckdb import DuckDBEngine
from elt_assets.checks.data_tests import all_tests, model_tests
from elt_assets.definitions import defs
from elt_assets.landing.generator import generate_landing
from elt_assets.models.registry import registry
from elt_assets_tests.support import copy_sample, duckdb_path, failure_message, query, rows, run_elt

FACT = "core/fact_user_event"
ANALYTICS = "analytics/analytics_variant_user_daily"
RELATIONSHIP = (FACT, "relationships_user_id_dim_user")
DAY = "2023-06-05"
EVENT_HEADER = "user_id,datestamp,item_id,clicked,purchased,paidamount"


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def failing_rows(evaluation: dg.AssetCheckEvaluation) -> int:
    return evaluation.metadata["failing_rows"].value


def failed(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], int]:
    """The data tests that did not pass, with their failing row counts.

    Freshness is left out: the sample is from 2023, so with the default lag it warns in
    every run of these tests (that it does is tested on its own below). So is the
    relationship of events to users: the sample's unassigned users fail it as a warning
    every day (tested on its own below).
    """
    return {
        key: failing_rows(evaluation)
        for key, evaluation in evaluations(result).items()
        if not evaluation.passed and key[1] not in ("newest_partition_fresh", RELATIONSHIP[1])
    }


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


def append_lines(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


@pytest.fixture(scope="module")
def first_four_days(tmp_path_factory):
    """The sample built for 2023-06-01..04: each test adds a (bad) 2023-06-05 to a copy."""
    root = tmp_path_factory.mktemp("first_four_days")
    landing = copy_sample(root / "landing")
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    run_elt(landing, url, "2023-06-01", "2023-06-04")
    return landing, Path(duckdb_path(url))


@pytest.fixture
def built_until_day(first_four_days, tmp_path):
    """A private copy of the four built days, with the sample's landing files: (landing, url)."""
    landing, warehouse = first_four_days
    shutil.copytree(landing, tmp_path / "landing")
    shutil.copyfile(warehouse, tmp_path / "warehouse.duckdb")
    return tmp_path / "landing", f"duckdb:///{tmp_path / 'warehouse.duckdb'}"


def test_every_check_passes_on_the_clean_sample(clean_sample_build):
    _landing, _url, result = clean_sample_build
    assert result.success, failure_message(result)
    ran = evaluations(result)
    assert set(ran) == {
        (key.asset_key.to_user_string(), key.name) for key in defs.resolve_asset_graph().asset_check_keys
    }
    # No blocking check fails on production-shaped data; the one warning is the events of
    # users never assigned a variant, which the sample holds on purpose.
    assert [key for key, evaluation in ran.items() if not evaluation.passed and evaluation.blocking] == []
    not_passed = [key for key, evaluation in ran.items() if not evaluation.passed]
    assert not_passed == [(FACT, "relationships_user_id_dim_user")]
    # A failing row is a user-day without a dim_user row.
    unassigned = query(
        _url,
        "select count(*) from (select distinct user_id, cast(datestamp as date) from core.fact_user_event "
        "where user_id not in (select user_id from core.dim_user_variant))",
    )[0][0]
    assert unassigned > 0 and failing_rows(ran[(FACT, "relationships_user_id_dim_user")]) == unassigned
    # The distributional tests did look at the data, not at an empty window.
    assert ran[("core/dim_user", "sample_ratio_variant_id")].metadata["days_tested"].value == 14
    assert ran[(FACT, "row_count_band")].metadata["days_compared"].value == 13


def test_odd_events_warn_on_the_fact_and_are_counted_as_the_lecture_counts_them(built_until_day):
    landing, url = built_until_day
    append_lines(
        landing / "user_event" / f"{DAY}.csv",
        "1,2023-06-05,14,0,0,0",  # the file's first row again: the item shown twice
        ",2023-06-05,77,0,0,0",  # no user
        "1,2023-06-05,999,1,1,-5",  # a negative amount paid (a refund)
        "1,2023-06-05,998,2,0,0",  # clicked is neither 0 nor 1
    )
    instance = dg.DagsterInstance.ephemeral()

    result = run_elt(landing, url, DAY, instance=instance, raise_on_error=False)

    # None of this is wrong in the lecture's model: it warns, and the day is built.
    assert result.success, failure_message(result)
    assert failed(result) == {
        (FACT, "not_null_user_id"): 1,
        (FACT, "accepted_range_paidamount"): 1,
        (FACT, "accepted_values_clicked"): 1,
    }
    for key in failed(result):
        assert evaluations(result)[key].severity == dg.AssetCheckSeverity.WARN
    assert "paidamount >= 0" in evaluations(result)[(FACT, "accepted_range_paidamount")].description
    assert "Warns:" in evaluations(result)[(FACT, "accepted_range_paidamount")].description
    [fact] = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.to_user_string() == FACT
    ]
    repeats = query(
        url,
        "select coalesce(sum(times - 1), 0) from (select count(*) as times from core.fact_user_event "
        f"where datestamp = '{DAY}' group by user_id, datestamp, item_id)",
    )[0][0]
    assert fact.metadata["repeated_impressions"].value == repeats >= 1
    # The repeat is two rows of the fact and one distinct item of the analytics.
    assert len(rows(url, "core.fact_user_event", f"where user_id = 1 and item_id = 14 and datestamp = '{DAY}'")) == 2
    assert ANALYTICS in materialized(result)
    assert rows(url, "analytics.analytics_variant_user_daily", f"where user_id is null and datestamp = '{DAY}'") != []


def test_an_event_of_an_unassigned_user_fails_the_relationship_as_a_warning(built_until_day):
    landing, url = built_until_day
    append_lines(landing / "user_event" / f"{DAY}.csv", "999999,2023-06-05,5,1,0,0")

    result = run_elt(landing, url, DAY, raise_on_error=False)

    assert result.success and failed(result) == {}
    relationship = evaluations(result)[RELATIONSHIP]
    assert relationship.severity == dg.AssetCheckSeverity.WARN
    missing = query(
        url,
        f"select user_id, count(*) from core.fact_user_event where datestamp = '{DAY}' "
        f"and user_id not in (select user_id from core.dim_user where as_of_date = '{DAY}') group by user_id",
    )
    # One failing row per user of the day without a dim_user row, with its events.
    assert failing_rows(relationship) == len(missing) >= 1
    assert "| 999999 | 2023-06-05 | 1 |" in query_sample(relationship) or len(missing) > 5
    assert {FACT, "core/dim_user", ANALYTICS} <= materialized(result)


def query_sample(evaluation: dg.AssetCheckEvaluation) -> str:
    return evaluation.metadata["sample"].value


def test_an_unknown_variant_warns_and_is_grouped_on_its_own_as_in_the_lecture(built_until_day):
    landing, url = built_until_day
    append_lines(landing / "user_variant" / f"{DAY}.csv", "900001,treatment")
    append_lines(landing / "user_event" / f"{DAY}.csv", "900001,2023-06-05,3,1,0,0")

    result = run_elt(landing, url, DAY, raise_on_error=False)

    assert result.success, failure_message(result)
    assert failed(result) == {("core/dim_user_variant", "accepted_values_variant_id"): 1}
    evaluation = evaluations(result)[("core/dim_user_variant", "accepted_values_variant_id")]
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "treatment" in evaluation.metadata["sample"].value
    assert rows(url, "analytics.analytics_variant_user_daily", "where variant_id = 'treatment'")[0][1] == 900001


def test_two_current_versions_of_a_user_fail_the_snapshot_integrity_checks(built_until_day):
    """The snapshot cannot write this itself: versions are deduplicated per updated_at, and
    each write recomputes valid_to/is_current over the whole history of every user it
    touches. Two writers of different days on PostgreSQL, each recomputing a user's history
    without seeing the other's new version, would leave both versions current; the test
    writes that outcome into the table directly, for a user the re-run day does not touch."""
    landing, url = built_until_day
    touched = {line.split(",")[0] for line in (landing / "user_metadata" / f"{DAY}.csv").read_text().splitlines()[1:]}
    with duckdb.connect(duckdb_path(url)) as connection:
        user = connection.execute(
            "select min(user_id) from core.dim_user_metadata where user_id not in "
            f"({', '.join(touched)})"
        ).fetchone()[0]
        connection.execute(
            "insert into core.dim_user_metadata "
            "select user_id, age, gender, updated_at - interval 1 day, valid_from - interval 1 day, "
            "null, true, partition_date from core.dim_user_metadata where user_id = ?",
            [user],
        )

    result = run_elt(landing, url, DAY, raise_on_error=False)

    metadata = "core/dim_user_metadata"
    assert failed(result) == {
        (metadata, "one_current_version_user_id"): 1,
        (metadata, "no_overlapping_versions_user_id"): 1,
    }
    assert f"| {user} | 2 | 2 |" in evaluations(result)[(metadata, "one_current_version_user_id")].metadata["sample"].value
    assert {"core/dim_user", ANALYTICS}.isdisjoint(materialized(result))


def test_a_blocked_day_shows_as_failed_downstream_and_the_sensor_says_so(built_until_day):
    """What the UI's partition view shows, and what the landing sensor's ticks say."""
    from elt_assets.partitions import daily_partitions
    from elt_assets_tests.test_sensors import LocalLanding, tick

    landing, url = built_until_day
    with duckdb.connect(duckdb_path(url)) as connection:
        connection.execute(
            "insert into core.dim_user_metadata select user_id, age, gender, updated_at - interval 1 day, "
            "valid_from - interval 1 day, null, true, partition_date from core.dim_user_metadata "
            "where user_id = (select min(user_id) from core.dim_user_metadata)"
        )
    with dg.instance_for_test() as instance:
        zone = LocalLanding(landing)
        first = tick(instance, zone)
        result = run_elt(landing, url, DAY, instance=instance, raise_on_error=False)
        assert not result.success
        status = instance.get_status_by_partition(dg.AssetKey(["analytics", "analytics_variant_user_daily"]), [DAY], daily_partitions)
        assert status == {DAY: dg.AssetPartitionStatus.FAILED}
        # The same files are not loaded again, and the tick says which day waits and how to redo it.
        later = tick(instance, zone, first.cursor)
        assert later.run_requests == []
        message = later.skip_reason.skip_message
        assert f"waiting on a failed run: {DAY}" in message
        assert f"--partition {DAY}" in message


def test_a_ninety_ten_split_warns_of_sample_ratio_mismatch_without_blocking(tmp_path):
    landing = tmp_path / "landing"
    generate_landing(landing, users=400, days=3, events_per_day=300, test_share=0.1)
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"

    result = run_elt(landing, url, "2023-06-01", "2023-06-03", raise_on_error=False)

    assert result.success, failure_message(result)
    mismatch = evaluations(result)[("core/dim_user", "sample_ratio_variant_id")]
    assert not mismatch.passed and mismatch.severity == dg.AssetCheckSeverity.WARN
    assert failing_rows(mismatch) == 3  # every day of the window
    assert mismatch.metadata["min_p_value"].value < 1e-20
    assert ANALYTICS in materialized(result)


def test_a_day_with_a_tenth_of_the_events_warns_on_row_count_without_blocking(built_until_day):
    landing, url = built_until_day
    events = landing / "user_event" / f"{DAY}.csv"
    lines = events.read_text().splitlines()
    events.write_text("\n".join(lines[: len(lines) // 10]) + "\n")

    result = run_elt(landing, url, DAY, raise_on_error=False)

    assert result.success, failure_message(result)
    band = evaluations(result)[(FACT, "row_count_band")]
    assert not band.passed and band.severity == dg.AssetCheckSeverity.WARN
    assert failing_rows(band) == 1
    assert f"| {DAY} |" in band.metadata["sample"].value
    assert ANALYTICS in materialized(result)


def test_raw_freshness_warns_when_the_newest_day_is_older_than_the_lag(built_until_day, monkeypatch):
    landing, url = built_until_day
    monkeypatch.delenv("ELT_FRESHNESS_LAG_HOURS", raising=False)

    result = run_elt(landing, url, DAY, selection="key:raw_data/user_event")

    freshness = evaluations(result)[("raw_data/user_event", "newest_partition_fresh")]
    assert not freshness.passed and freshness.severity == dg.AssetCheckSeverity.WARN
    assert freshness.metadata["newest_partition"].value == DAY
    assert freshness.metadata["lag_hours"].value == 36.0
    assert result.success  # a warning does not fail the run


# ------------------------------------------------------------------ the queries, on tiny tables


def _failures(kind: str, args: dict, table_sql: str) -> int:
    with DuckDBEngine("duckdb:///:memory:").transaction() as session:
        session.execute(f"create table t as {table_sql}")
        target = Target("t", "1 = 1", {})
        return evaluate_rows(session, kind, args, target).failing_rows


def test_versions_starting_at_the_same_moment_overlap():
    versions = (
        "select * from (values (1, timestamp '2023-06-01', timestamp '2023-06-03'), "
        "(1, timestamp '2023-06-03', null), (2, timestamp '2023-06-01', timestamp '2023-06-01'), "
        "(2, timestamp '2023-06-01', null)) as v (user_id, valid_from, valid_to)"
    )
    args = {"key": "user_id", "valid_from": "valid_from", "valid_to": "valid_to"}
    assert _failures("no_overlapping_versions", args, versions) == 1  # user 2 only


def test_unique_counts_duplicated_keys_and_ranges_respect_inclusiveness():
    keys = "select * from (values (1, 1), (1, 1), (1, 1), (2, null), (2, null), (3, 1)) as v (a, b)"
    assert _failures("unique", {"columns": ["a", "b"]}, keys) == 2
    amounts = "select * from (values (0), (5), (-1)) as v (x)"
    assert _failures("accepted_range", {"column": "x", "min_value": 0}, amounts) == 1
    assert _failures("accepted_range", {"column": "x", "min_value": 0, "inclusive": False}, amounts) == 2
    assert _failures("accepted_values", {"column": "x", "values": [0, 5]}, amounts) == 1


def test_a_test_on_an_undocumented_column_or_of_an_unknown_kind_is_refused():
    fact = registry()["fact_user_event"]
    with pytest.raises(ValueError, match="has no column 'user'"):
        model_tests(replace(fact, tests=({"kind": "not_null", "column": "user"},)), registry())
    with pytest.raises(ValueError, match="unknown kind 'not_empty'"):
        model_tests(replace(fact, tests=({"kind": "not_empty"},)), registry())
    with pytest.raises(ValueError, match="not a valid identifier"):
        model_tests(replace(fact, tests=({"kind": "unique", "columns": ["user_id; drop"]},)), registry())


def test_every_test_says_why_it_blocks_or_warns():
    for test in all_tests():
        assert test.why.startswith("Blocks:" if test.blocking else "Warns:"), test.check_key
    fact = dg.AssetKey(["core", "fact_user_event"])
    # An item shown twice to a user on a day is an event, not an error.
    assert not any(test.asset_key == fact and test.kind == "unique" for test in all_tests())


def test_error_tests_block_and_warn_tests_do_not():
    specs = {test.check_key: test.spec() for test in all_tests()}
    assert specs[dg.AssetCheckKey(dg.AssetKey(["core", "dim_user"]), "unique_as_of_date_user_id")].blocking
    assert not specs[dg.AssetCheckKey(dg.AssetKey(["core", "fact_user_event"]), "not_null_user_id")].blocking
    assert not specs[dg.AssetCheckKey(dg.AssetKey(["core", "fact_user_event"]), "row_count_band")].blocking
    assert not specs[dg.AssetCheckKey(dg.AssetKey(["core", "dim_user"]), "sample_ratio_variant_id")].blocking
