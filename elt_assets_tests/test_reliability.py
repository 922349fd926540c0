"""What production meets and a clean sample does not: concurrent PostgreSQL loads of
different days (no DDL lock on the table they share), concurrent first runs on an empty
PostgreSQL warehouse (they take turns at creating schemas, tables and views), a run waiting
for DuckDB's file lock (it says so at once), and a source that sends two versions of one
moment (a fixed rule keeps one, and a warning says so)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import psycopg2.errors
import pytest
import sqlalchemy as sa

from elt_assets import cli
from elt_assets.checks.kinds import Target, evaluate_rows
from elt_assets.engines import engine_for_url
from elt_assets.engines.base import Statement
from elt_assets.models.registry import registry
from elt_assets.models.run import run_model
from elt_assets.ops.dead_runs import ALIVE, GONE, SILENT, UNCHECKED, find_unfinished_runs
from elt_assets.ops.instance_storage import local_compute_log_root
from elt_assets_tests.ops_fixtures import (  # noqa: F401 (fixture)
    HOLD_LOCK,
    duckdb_lock_held,
    instance_home,
    materialize_in_background,
    runs_in_their_step,
    wait_until_zombie,
)
from elt_assets_tests.support import failure_message, fresh_database, query, rows, run_elt


def _load_days_at_once(
    url: str, landing, days: list[date], names: tuple[str, ...] = ("user_event",)
) -> dict[date, BaseException | None]:
    """Build the named models, in order, for each day in its own thread, all started together."""
    models = registry()
    start = threading.Barrier(len(days))
    outcome: dict[date, BaseException | None] = {}

    def load(day: date) -> None:
        engine = engine_for_url(url, lock_timeout_seconds=30)
        try:
            start.wait(timeout=60)
            for name in names:
                run_model(engine, models, models[name], day, day + timedelta(days=1), str(landing))
            outcome[day] = None
        except BaseException as error:  # reported by the test, with the day
            outcome[day] = error
        finally:
            engine.dispose()

    threads = [threading.Thread(target=load, args=(day,)) for day in days]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a load never finished"
    return outcome


def test_concurrent_postgres_loads_of_different_days_never_deadlock(landing, postgres_url):
    models = registry()
    first = date(2023, 6, 1)
    # The first load creates the table and its index; the later ones only write rows.
    engine = engine_for_url(postgres_url)
    run_model(engine, models, models["user_event"], first, first + timedelta(days=1), str(landing))
    engine.dispose()
    for round_ in range(5):
        days = [first + timedelta(days=1 + 2 * round_), first + timedelta(days=2 + 2 * round_)]
        outcome = _load_days_at_once(postgres_url, landing, days)
        assert {day: repr(error) for day, error in outcome.items() if error} == {}, f"round {round_}"
    loaded = query(postgres_url, "select distinct partition_date from raw_data.user_event order by 1")
    assert [row[0] for row in loaded] == [first + timedelta(days=offset) for offset in range(11)]
    indexes = query(
        postgres_url,
        "select indexname from pg_indexes where schemaname = 'raw_data' and tablename = 'user_event' "
        "and indexdef like '%(partition_date)%'",
    )
    assert indexes == [("user_event_partition_date_idx",)]


# A landing table, a view over it and a table built from the view: every kind of DDL a run
# issues (schemas, a declared table and its index, a view, create table as, the build log).
FIRST_RUN_CHAIN = ("user_event", "src_user_event", "fact_user_event")


def test_first_runs_of_different_days_on_an_empty_postgres_warehouse_both_succeed(landing, postgres_admin_url):
    """Without the DDL lock every round failed: the second run's `create schema if not
    exists` hit a unique violation on pg_namespace. Five rounds, each on a new database."""
    days = [date(2023, 6, 1), date(2023, 6, 2)]
    for round_ in range(5):
        with fresh_database(postgres_admin_url) as url:
            outcome = _load_days_at_once(url, landing, days, FIRST_RUN_CHAIN)
            assert {day: repr(error) for day, error in outcome.items() if error} == {}, f"round {round_}"
            built = query(url, "select distinct datestamp::date from core.fact_user_event order by 1")
            assert [row[0] for row in built] == days, f"round {round_}"
            # Views are not logged: a table's window is.
            logged = query(url, "select model, window_start from meta.build_log order by 1, 2")
            assert logged == [(model, day) for model in ("core.fact_user_event", "raw_data.user_event") for day in days]


@pytest.mark.parametrize("guarded", [False, True], ids=["plain_if_not_exists", "ddl_lock"])
def test_a_second_creator_of_a_schema_fails_unless_it_waits_for_the_ddl_lock(postgres_url, guarded):
    """One transaction creates a schema and has not committed; a second creates it too.
    PostgreSQL's own `if not exists` lets the second fail once the first commits; the
    engine's statements make it wait for the lock, then find the schema."""
    engine = engine_for_url(postgres_url)
    statements = engine.create_schema("raced") if guarded else [Statement("create schema if not exists raced")]
    outcome: dict[str, object] = {}
    first = engine.connect()
    second = engine.connect()
    try:
        first_transaction = first.begin()
        for statement in statements:
            first.execute(sa.text(statement.text))
        second_pid = second.execute(sa.text("select pg_backend_pid()")).scalar_one()
        second.commit()

        def create_again() -> None:
            try:
                with second.begin():
                    for statement in statements:
                        second.execute(sa.text(statement.text))
                outcome["second"] = "created or found"
            except sa.exc.DBAPIError as error:
                outcome["second"] = error.orig

        worker = threading.Thread(target=create_again)
        worker.start()
        waited_for = _lock_wait(postgres_url, second_pid)
        first_transaction.commit()
        worker.join(timeout=60)
        assert not worker.is_alive()
        # Once the schema exists, the same statements take no lock at all.
        with first.begin():
            for statement in statements:
                first.execute(sa.text(statement.text))
            held = first.execute(
                sa.text("select count(*) from pg_locks where pid = pg_backend_pid() and locktype = 'advisory'")
            ).scalar_one()
        assert held == 0
    finally:
        first.close()
        second.close()
        engine.dispose()
    if guarded:
        assert waited_for == "advisory" and outcome["second"] == "created or found"
    else:
        assert waited_for == "transactionid"
        assert isinstance(outcome["second"], psycopg2.errors.UniqueViolation), outcome["second"]
        assert "pg_namespace" in str(outcome["second"])


def _lock_wait(url: str, pid: int) -> str:
    """The kind of lock the backend `pid` waits for, once it waits (bounded)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        waiting = query(url, f"select locktype from pg_locks where pid = {int(pid)} and not granted")
        if waiting:
            return waiting[0][0]
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited for a lock")


def test_a_run_waiting_for_the_duckdb_lock_says_so_when_the_wait_starts_and_ends(landing, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="elt_assets")
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(warehouse)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    outcome: dict = {}
    try:
        assert holder.stdout.readline().strip() == "locked"
        engine = engine_for_url(f"duckdb:///{warehouse}", lock_timeout_seconds=120)
        models = registry()

        def load() -> None:
            try:
                outcome["run"] = run_model(
                    engine, models, models["user_event"], date(2023, 6, 1), date(2023, 6, 2), str(landing)
                )
            except BaseException as error:  # reported by the test
                outcome["error"] = error

        worker = threading.Thread(target=load)
        worker.start()
        deadline = time.monotonic() + 60
        while not _lock_messages(caplog) and time.monotonic() < deadline:
            time.sleep(0.05)
        started = _lock_messages(caplog)
        assert worker.is_alive() and len(started) == 1, started
        assert started[0].startswith(f"waiting up to 120 s for the lock on the DuckDB file {warehouse}: ")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    worker.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["run"].row_count > 0
    messages = _lock_messages(caplog)
    assert len(messages) == 2 and messages[1].startswith(f"got the lock on the DuckDB file {warehouse} after ")


def _lock_messages(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "elt_assets.engines.duckdb" and record.levelno == logging.WARNING
    ]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_a_killed_cli_run_is_reported_by_health_and_failed_by_cleanup_while_a_live_one_is_left(
    instance_home, landing, tmp_path, monkeypatch, capsys
):
    """Two real `dagster asset materialize` runs wait in their step for the DuckDB lock;
    one is killed with SIGKILL. Health names only the killed run, cleanup marks only it
    failed, and the other run, once the lock is free, finishes successfully."""
    warehouse = tmp_path / "warehouse.duckdb"
    runs: list[subprocess.Popen] = []
    try:
        with duckdb_lock_held(warehouse):
            runs = [
                materialize_in_background(instance_home, warehouse, landing, day, tmp_path / f"{day}.log")
                for day in ("2023-06-01", "2023-06-02")
            ]
            run_ids = runs_in_their_step(instance_home, runs)
            victim, survivor = runs
            victim.send_signal(signal.SIGKILL)
            wait_until_zombie(victim.pid)
            killed, alive = run_ids[victim.pid], run_ids[survivor.pid]
            _health_and_cleanup_find_only_the_killed_run(instance_home, killed, alive, victim.pid, monkeypatch, capsys)
    except BaseException:
        for process in runs:
            process.kill()
        raise
    finally:
        for process in runs[:1]:
            process.wait(timeout=60)  # reaps the killed run's process
    # The run left alone was alive: with the lock free, it finishes.
    assert survivor.wait(timeout=300) == 0, (tmp_path / "2023-06-02.log").read_text()[-3000:]
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.SUCCESS


def _health_and_cleanup_find_only_the_killed_run(home: Path, killed: str, alive: str, pid: int, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        verdicts = {run.run.run_id: run.verdict for run in find_unfinished_runs(instance)}
        assert verdicts == {killed: GONE, alive: ALIVE}
        # Without its compute logs here, the killed run is not known to have run on this
        # machine: it is not judged by its pid, only by how long it has been silent.
        folder = local_compute_log_root(instance) / killed
        folder.rename(folder.with_name(killed + ".away"))
        try:
            verdicts = {run.run.run_id: run.verdict for run in find_unfinished_runs(instance)}
            assert verdicts == {killed: UNCHECKED, alive: ALIVE}
            verdicts = {run.run.run_id: run.verdict for run in find_unfinished_runs(instance, silent_after=0)}
            assert verdicts == {killed: SILENT, alive: ALIVE}
        finally:
            folder.with_name(killed + ".away").rename(folder)

    assert cli.main(["health", "--json"]) == 1
    checks = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    unfinished = checks["unfinished runs"]
    assert not unfinished["ok"]
    assert f"run {killed} (__ASSET_JOB, STARTED): its process {pid} on this machine is gone" in unfinished["detail"]
    assert alive not in unfinished["detail"]

    assert cli.main(["cleanup", "--dry-run"]) == 0
    assert f"would mark failed: run {killed}" in capsys.readouterr().out
    assert cli.main(["cleanup"]) == 0
    assert f"marked failed: run {killed}" in capsys.readouterr().out
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED
        (failure,) = instance.all_logs(killed, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"its process {pid} on this machine is gone" in failure.message
    assert cli.main(["health", "--json"]) == 1  # the daemons are not running here
    checks = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["unfinished runs"]["ok"], checks["unfinished runs"]
    assert checks["unfinished runs"]["detail"] == "1 unfinished: 1 with a live process here, 0 not checkable here and active"


METADATA_HEADER = "user_id,age,gender,updated_at"
DIM_METADATA = "core/dim_user_metadata"


def _write_metadata(landing: Path, day: str, *lines: str) -> None:
    folder = landing / "user_metadata"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{day}.csv").write_text("\n".join([METADATA_HEADER, *lines]) + "\n", encoding="utf-8")


def _conflicts(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key.to_user_string() == DIM_METADATA and evaluation.check_name == "no_conflicting_versions"
    ]
    return evaluation


def test_disagreeing_versions_of_one_moment_keep_the_first_landed_and_warn(tmp_path, warehouse_url):
    """User 1 sends two versions of 08:00 on one day: the lower age bucket is kept. User 2's
    second version of 09:00 lands a day later with a lower age bucket: the first landed is
    kept all the same. Each day's check counts the one user it saw disagree; nothing blocks."""
    landing = tmp_path / "landing"
    _write_metadata(
        landing, "2023-06-01",
        "1,35-44,male,2023-06-01 08:00:00",
        "1,25-34,female,2023-06-01 08:00:00",
        "2,45-54,male,2023-06-01 09:00:00",
        "3,18-24,female,2023-06-01 10:00:00",
        "3,18-24,female,2023-06-01 10:00:00",  # the same version twice is no conflict
    )
    _write_metadata(
        landing, "2023-06-02",
        "2,18-24,female,2023-06-01 09:00:00",
        "3,25-34,female,2023-06-02 10:00:00",  # a new version, not a conflict
    )
    selection = "+key:core/dim_user_metadata"
    for day in ("2023-06-01", "2023-06-02"):
        result = run_elt(landing, warehouse_url, day, selection=selection, raise_on_error=False)
        assert result.success, failure_message(result)
        conflicts = _conflicts(result)
        assert not conflicts.passed and conflicts.severity == dg.AssetCheckSeverity.WARN, day
        assert conflicts.metadata["failing_rows"].value == 1, day

    kept = rows(warehouse_url, "core.dim_user_metadata")
    assert [(user, age, gender, str(updated_at)) for user, age, gender, updated_at, *_ in kept] == [
        (1, "25-34", "female", "2023-06-01 08:00:00"),
        (2, "45-54", "male", "2023-06-01 09:00:00"),
        (3, "18-24", "female", "2023-06-01 10:00:00"),
        (3, "25-34", "female", "2023-06-02 10:00:00"),
    ]


def test_versions_conflict_when_a_compared_value_differs_null_included():
    versions = (
        "select * from (values (1, 'a', 'x', 1), (1, 'a', 'x', 2), (2, 'a', null, 1), (2, 'a', 'y', 1), "
        "(3, 'a', 'x', 1), (3, 'b', 'x', 3), (4, null, null, 1), (4, null, null, 1)) as v (user_id, age, gender, day)"
    )
    args = {"of_relation": "versions", "key": ["user_id"], "columns": ["age", "gender"]}
    engine = engine_for_url("duckdb:///:memory:")
    with engine.transaction() as session:
        session.execute(f"create table versions as {versions}")

        def conflicting_users(predicate: str) -> list[int]:
            outcome = evaluate_rows(session, "no_conflicting_versions", args, Target("unused", predicate, {}))
            return [row[0] for row in outcome.sample]

        # 1 sent one version twice, 4 one of NULLs twice: no conflict. 2 and 3 disagree.
        assert conflicting_users("1 = 1") == [2, 3]
        # A window counts the keys with a version landed in it, against every other day.
        assert conflicting_users("day = 1") == [2, 3]
        assert conflicting_users("day = 2") == []
        assert conflicting_users("day = 3") == [3]
