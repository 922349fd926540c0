"""What production meets and a clean sample does not: concurrent PostgreSQL loads of
different days (no DDL lock on the table they share), a run waiting for DuckDB's file lock
(it says so at once), and a source that sends two versions of one moment (a fixed rule
keeps one, and a warning says so)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from elt_assets.checks.kinds import Target, evaluate_rows
from elt_assets.engines import engine_for_url
from elt_assets.models.registry import registry
from elt_assets.models.run import run_model
from elt_assets_tests.support import failure_message, query, rows, run_elt


def _load_days_at_once(url: str, landing, days: list[date]) -> dict[date, BaseException | None]:
    """Load raw_data.user_event for each day in its own thread, all started together."""
    models = registry()
    start = threading.Barrier(len(days))
    outcome: dict[date, BaseException | None] = {}

    def load(day: date) -> None:
        engine = engine_for_url(url, lock_timeout_seconds=30)
        try:
            start.wait(timeout=60)
            run_model(engine, models, models["user_event"], day, day + timedelta(days=1), str(landing))
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


# Holds a write lock on the file until its stdin closes.
HOLD_LOCK = (
    "import duckdb, sys; connection = duckdb.connect(sys.argv[1]); connection.execute('create table held (x int)'); "
    "print('locked', flush=True); sys.stdin.read()"
)


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
