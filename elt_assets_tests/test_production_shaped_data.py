"""Landing files written here, by hand, in the shape of real logs (not by the project's
generator): random users shown random items, so that an item is now and then shown twice
to a user on a day; events from users who were never assigned a variant; assigned users
without any attributes; part files; a row without a datestamp. Every asset is built
through the CLI's range backfill and through the landing-zone sensor, on DuckDB and on
PostgreSQL, and the analytics table must equal the lecture's own SQL run directly on the
same rows, row for row and column type for column type."""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from elt_assets_tests.lecture import (
    LECTURE_RAW_SELECT,
    RAW_COLUMNS,
    column_types,
    lecture_analytics_duckdb,
    lecture_analytics_postgres,
)
from elt_assets_tests.support import elt_definitions, failure_message, rows
from elt_assets_tests.test_sensors import LocalLanding, execute, tick

FIRST_DAY = date(2023, 6, 1)
DAYS = 4
LAST_DAY = FIRST_DAY + timedelta(days=DAYS - 1)
ITEMS = 12  # few items, many impressions: repeats happen as they do in real logs
EARLY_USERS = range(1, 71)  # assigned on the first day (a full extract)
LATE_USERS = range(71, 81)  # assigned on the third day; active from then on
WITHOUT_METADATA = {*range(1, 9), 79, 80}  # assigned, but the user database has no row
UNASSIGNED_USERS = range(501, 511)  # in the event log, never in an experiment
FIELDS = ("user_id", "datestamp", "item_id", "clicked", "purchased", "paidamount")


def _day(offset: int) -> date:
    return FIRST_DAY + timedelta(days=offset)


def write_impression_log(root: Path, seed: int = 20230601) -> dict[str, list[tuple]]:
    """Write the landing files and return the rows they hold, typed, per raw table."""
    rng = random.Random(seed)
    raw: dict[str, list[tuple]] = {"user_event": [], "user_variant": [], "user_metadata": []}

    def write(relative: str, header: tuple[str, ...], lines: list[tuple]) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(["" if value is None else value for value in line] for line in lines)

    variants = {user: rng.choice(("control", "test")) for user in [*EARLY_USERS, *LATE_USERS]}
    for offset, users in ((0, EARLY_USERS), (2, LATE_USERS)):
        assignments = [(user, variants[user]) for user in users]
        write(f"user_variant/{_day(offset)}.csv", ("user_id", "variant_id"), assignments)
        raw["user_variant"] += assignments
        attributes = []
        for user in users:
            if user in WITHOUT_METADATA:
                continue
            updated = datetime(2023, 5, rng.randint(1, 31), rng.randint(0, 23)) if offset == 0 else datetime.combine(
                _day(offset), datetime.min.time()
            ) + timedelta(minutes=rng.randint(0, 1439))
            attributes.append((user, rng.choice(("18-24", "25-34", "35-44", "45+")), rng.choice(("F", "M")), updated))
        # The user database exports its columns in its own order; the loader reads by name.
        write(
            f"user_metadata/{_day(offset)}.csv",
            ("updated_at", "user_id", "gender", "age"),
            [(updated.isoformat(sep=" "), user, gender, age) for user, age, gender, updated in attributes],
        )
        raw["user_metadata"] += attributes

    for offset in range(DAYS):
        active = [*EARLY_USERS, *(LATE_USERS if offset >= 2 else ()), *UNASSIGNED_USERS]
        impressions = []
        for user in active:
            for _ in range(rng.randint(3, 15)):
                clicked = int(rng.random() < 0.3)
                purchased = int(clicked and rng.random() < 0.25)
                paid = rng.randint(5, 120) if purchased else 0
                impressions.append((user, _day(offset), rng.randint(1, ITEMS), clicked, purchased, paid))
        if offset == 1:
            impressions.append((7, None, 3, 1, 0, 0))  # a row the pipeline lost the day of
        rng.shuffle(impressions)
        lines = [(u, "" if d is None else d.isoformat(), i, c, p, a) for u, d, i, c, p, a in impressions]
        if offset == 3:
            # The last day arrives in two part files, as from two exporters.
            half = len(lines) // 2
            write(f"user_event/{_day(offset)}/part-0.csv", FIELDS, lines[:half])
            write(f"user_event/{_day(offset)}/part-1.csv", FIELDS, lines[half:])
        else:
            write(f"user_event/{_day(offset)}.csv", FIELDS, lines)
        raw["user_event"] += [
            (u, None if d is None else datetime.combine(d, datetime.min.time()), i, c, p, a)
            for u, d, i, c, p, a in impressions
        ]
    return raw


def repeated_impressions(raw: dict[str, list[tuple]], day: date) -> int:
    shown = Counter((u, d, i) for u, d, i, *_ in raw["user_event"] if d is not None and d.date() == day)
    return sum(times - 1 for times in shown.values())


@pytest.fixture
def impression_log(tmp_path):
    landing = tmp_path / "landing"
    raw = write_impression_log(landing)
    # The data is what it claims to be: repeats, unassigned users, users without attributes.
    assert all(repeated_impressions(raw, _day(offset)) > 10 for offset in range(DAYS))
    assert {u for u, *_ in raw["user_event"]} - {u for u, _ in raw["user_variant"]} >= set(UNASSIGNED_USERS)
    assert {u for u, _ in raw["user_variant"]} - {u for u, *_ in raw["user_metadata"]} == WITHOUT_METADATA
    return landing, raw


@pytest.fixture
def scratch_postgres_url(postgres_admin_url):
    """A second empty database on the server, for the lecture's own models."""
    from elt_assets_tests.support import fresh_database

    with fresh_database(postgres_admin_url) as url:
        yield url


def lecture(raw, warehouse_url: str, request) -> tuple[list[tuple], list[tuple[str, str]]]:
    if warehouse_url.startswith("duckdb"):
        return lecture_analytics_duckdb(raw)
    return lecture_analytics_postgres(raw, request.getfixturevalue("scratch_postgres_url"))


def assert_equals_the_lecture(raw, url: str, request) -> None:
    expected_rows, expected_types = lecture(raw, url, request)
    ours = rows(url, "analytics.analytics_variant_user_daily")
    assert len(ours) > 300
    assert ours == sorted_rows(expected_rows)
    assert column_types(url, "analytics", "analytics_variant_user_daily") == expected_types
    # The fact keeps the lecture's grain: one row per landed impression, repeats included.
    landed = sum(1 for _u, d, *_ in raw["user_event"] if d is not None)
    assert rows(url, "core.fact_user_event") and len(rows(url, "core.fact_user_event")) == landed
    # Unassigned users are there with a NULL variant, as the lecture's LEFT JOIN gives them.
    assert any(row[0] is None and row[1] in UNASSIGNED_USERS for row in ours)


def sorted_rows(found: list[tuple]) -> list[tuple]:
    from elt_assets_tests.support import _normalized, _sort_key

    return sorted((tuple(_normalized(value) for value in row) for row in found), key=_sort_key)


def fact_metadata(instance: dg.DagsterInstance, name: str) -> dict[str, int]:
    """The given metadata value of every materialized day of the fact, by day."""
    key = dg.AssetKey(["core", "fact_user_event"])
    records = instance.fetch_materializations(key, limit=100).records
    values: dict[str, int] = {}
    for record in records:
        materialization = record.asset_materialization
        values.setdefault(materialization.partition, materialization.metadata[name].value)
    return values


def test_a_range_backfill_from_the_cli_equals_the_lecture(impression_log, warehouse_url, tmp_path, request):
    landing, raw = impression_log
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ELT_LANDING_DIR": str(landing),
        "ELT_WAREHOUSE_URL": warehouse_url,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "elt_assets.definitions",
         "--select", "*", "--partition-range", f"{FIRST_DAY}...{LAST_DAY}"],
        # Not the project root: a quick start's .env there would override this environment.
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600,
    )
    # No blocking check stops production-shaped data.
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert_equals_the_lecture(raw, warehouse_url, request)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        # Each day's materialization reports that day's repeats.
        repeats = fact_metadata(instance, "repeated_impressions")
    assert repeats == {str(_day(offset)): repeated_impressions(raw, _day(offset)) for offset in range(DAYS)}


def test_the_landing_zone_sensor_builds_what_equals_the_lecture(impression_log, warehouse_url, request):
    landing, raw = impression_log
    with dg.instance_for_test() as instance:
        zone = LocalLanding(landing)
        first = tick(instance, zone)
        assert first.run_requests, first.skip_reason
        for run_request in first.run_requests:
            execute(run_request, landing, warehouse_url, instance)
        assert tick(instance, zone, first.cursor).run_requests == []
    assert_equals_the_lecture(raw, warehouse_url, request)


def test_the_lecture_raw_select_agrees_on_assigned_users_with_attributes(impression_log, duckdb_url):
    """The lecture's first query joins the raw tables with inner joins: it leaves out
    unassigned users and users without attributes, and agrees with the rest."""
    landing, raw = impression_log
    result = dg.Definitions.merge(
        elt_definitions(landing, duckdb_url),
        dg.Definitions(jobs=[dg.define_asset_job("everything", selection="*")]),
    ).resolve_job_def("everything").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": str(FIRST_DAY), "dagster/asset_partition_range_end": str(LAST_DAY)},
        raise_on_error=False,
    )
    assert result.success, failure_message(result)
    ours = [
        row
        for row in rows(duckdb_url, "analytics.analytics_variant_user_daily")
        if row[0] is not None and row[1] not in WITHOUT_METADATA
    ]
    connection = duckdb.connect()
    connection.execute("create schema raw_data")
    for table, columns in RAW_COLUMNS.items():
        connection.execute(f"create table raw_data.{table} ({', '.join(f'{n} {t}' for n, t in columns)})")
        connection.executemany(f"insert into raw_data.{table} values ({', '.join('?' for _ in columns)})", raw[table])
    lecture_rows = connection.execute(f"select * from ({LECTURE_RAW_SELECT}) where datestamp is not null").fetchall()
    assert ours == sorted_rows(lecture_rows)
