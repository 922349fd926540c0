"""End to end: the real `dagster-daemon run`, a SQLite instance and a DuckDB warehouse in a
temporary folder, landing files dropped as a landing process would drop them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
import duckdb
import pytest
import yaml

from elt_assets.cli import local_instance_yaml
from elt_assets.definitions import defs
from elt_assets.settings import PROJECT_ROOT, SEEDS_LANDING_DIR

DAYS = ("2023-06-01", "2023-06-02")
DEADLINE_SECONDS = 180
LATE_USER = 90001
T = TypeVar("T")



def instance_yaml() -> str:
    """The project's embedded instance, with a short dequeue interval to keep the test quick."""
    config = yaml.safe_load(local_instance_yaml())
    config["run_queue"]["dequeue_interval_seconds"] = 1
    return yaml.safe_dump(config)


def poll(what: str, check: Callable[[], T | None], daemon: subprocess.Popen, log: Path) -> T:
    """check() until it returns something, or fail after the deadline with the daemon's log."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            pytest.fail(f"the daemon exited with {daemon.returncode} while waiting for {what}:\n{_tail(log)}")
        found = check()
        if found is not None:
            return found
        time.sleep(0.25)
    pytest.fail(f"no {what} within {DEADLINE_SECONDS}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def drop(landing: Path, name: str, text: str) -> None:
    """Land a file the way the contract asks: write under a temporary name, then rename."""
    target = landing / name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.tmp")
    partial.write_text(text)
    partial.rename(target)


@pytest.fixture
def daemon(tmp_path) -> Iterator[tuple[subprocess.Popen, Path, dict[str, Path], dg.DagsterInstance]]:
    """`dagster-daemon run` on the code location, with the landing sensor turned on, and the
    test's handle on the same instance."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml())
    # Created first: two processes creating the SQLite storage at once race on its migrations.
    instance = dg.DagsterInstance.from_config(str(home))
    paths = {"home": home, "landing": tmp_path / "landing", "warehouse": tmp_path / "warehouse.duckdb"}
    paths["landing"].mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ELT_LANDING_DIR": str(paths["landing"]),
        "ELT_WAREHOUSE_URL": f"duckdb:///{paths['warehouse']}",
        "ELT_LANDING_SENSOR_DEFAULT_STATUS": "running",
        "ELT_LANDING_SENSOR_INTERVAL_SECONDS": "1",
        # The code server and the run workers import this checkout's package.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    log = tmp_path / "daemon.log"
    command = [
        str(Path(sys.executable).with_name("dagster-daemon")),
        "run",
        "-m",
        "elt_assets.definitions",
        "-d",
        str(PROJECT_ROOT),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process, log, paths, instance
    finally:
        _stop(process)
        instance.dispose()


def _stop(process: subprocess.Popen) -> None:
    # The daemon shuts its code server down on SIGINT; its own process group goes if not.
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def _partitions_materialized(
    instance: dg.DagsterInstance, keys: list[dg.AssetKey], days: tuple[str, ...], since: float
) -> bool:
    for key in keys:
        for day in days:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day], after_timestamp=since), limit=1
            ).records
            if not records:
                return False
    return True


def _runs_settled(instance: dg.DagsterInstance, log: Path) -> bool:
    """Whether every run has finished; a failed run fails the test with the daemon's log."""
    if instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
        pytest.fail(f"a run failed:\n{_tail(log)}")
    unfinished = [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
    ]
    return not instance.get_runs(filters=dg.RunsFilter(statuses=unfinished))


def _query(warehouse: Path, sql: str) -> list[tuple] | None:
    """Rows from the warehouse, or None while a run holds its write lock."""
    try:
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            return connection.execute(sql).fetchall()
    except (duckdb.IOException, duckdb.CatalogException):
        return None


def test_the_daemon_loads_landed_days_and_late_files(daemon):
    process, log, paths, instance = daemon
    landing, warehouse = paths["landing"], paths["warehouse"]
    poll(
        "first sensor tick",
        lambda: next(
            (
                True
                for state in instance.all_instigator_state()
                if state.instigator_name == "landing_zone_sensor"
                and instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
            ),
            None,
        ),
        process,
        log,
    )
    keys = sorted(defs.resolve_asset_graph().materializable_asset_keys, key=str)
    dropped = time.time()
    for table in ("user_variant", "user_metadata", "user_event"):
        for day in DAYS:
            drop(landing, f"{table}/{day}.csv", (SEEDS_LANDING_DIR / table / f"{day}.csv").read_text())

    def days_loaded() -> list[tuple] | None:
        if not _runs_settled(instance, log) or not _partitions_materialized(instance, keys, DAYS, dropped):
            return None
        return _query(
            warehouse,
            "select cast(datestamp as date), count(*) from analytics.analytics_variant_user_daily "
            "group by 1 order by 1",
        )

    counts = poll("materializations of both days", days_loaded, process, log)
    first_lag = time.time() - dropped
    assert [(day.isoformat(), rows > 0) for day, rows in counts] == [(day, True) for day in DAYS]
    for table in ("raw_data.user_event", "raw_data.user_variant", "raw_data.user_metadata", "core.dim_user"):
        assert _query(warehouse, f"select count(*) from {table}")[0][0] > 0, table

    # A late change set and late events for the first day: a user assigned on day 1
    # who clicked that day. Day 1 is reloaded; day 2's dimensions are rebuilt.
    late = time.time()
    drop(landing, f"user_variant/{DAYS[0]}/part-late.csv", f"user_id,variant_id\n{LATE_USER},test\n")
    drop(
        landing,
        f"user_event/{DAYS[0]}/part-late.csv",
        f"user_id,datestamp,item_id,clicked,purchased,paidamount\n{LATE_USER},{DAYS[0]},7,1,0,0\n",
    )
    late_keys = [
        dg.AssetKey(["analytics", "analytics_variant_user_daily"]),
        dg.AssetKey(["core", "dim_user"]),
    ]

    def late_rows_loaded() -> list[tuple] | None:
        if not _runs_settled(instance, log) or not _partitions_materialized(instance, late_keys, DAYS, late):
            return None
        found = _query(
            warehouse,
            "select cast(datestamp as date), count(*), "
            f"count(*) filter (where user_id = {LATE_USER} and variant_id = 'test') "
            "from analytics.analytics_variant_user_daily group by 1 order by 1",
        )
        # The two late files may reach the sensor in two ticks: wait for both.
        return found if found and found[0][2] == 1 else None

    updated = poll("the late files in the analytics", late_rows_loaded, process, log)
    late_lag = time.time() - late
    assert updated[0][1] == counts[0][1] + 1 and updated[0][2] == 1
    assert updated[1][1] == counts[1][1]
    day_two_user = (
        f"select count(*) from core.dim_user where as_of_date = '{DAYS[1]}' and user_id = {LATE_USER}"
    )
    assert _query(warehouse, day_two_user) == [(1,)], "day 2 was rebuilt after the late change set"
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "landing_zone_sensor"}))
    # One run for the two new days, then day 1 reloaded and day 2 rebuilt (more if the
    # sensor saw the two late files in different ticks).
    assert len(runs) >= 3, [run.tags.get("elt/landing") for run in runs]
    assert all(run.tags["elt/warehouse"] == "default" for run in runs)
    print(
        f"\nlanding file to analytics rows, through the daemon: {first_lag:.1f}s for two new days, "
        f"{late_lag:.1f}s for late files (two runs)"
    )

