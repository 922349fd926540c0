"""Health checks against a real dagster-daemon, a DuckDB warehouse, stale or missing data,
and runs whose process died (which Dagster's own run monitoring ends only at their maximum
runtime)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
# Private: the event data Dagster's run worker reports its pid with (see the test below).
from dagster._core.events import EngineEventData

from elt_assets import cli
from elt_assets.ops.dead_runs import ALIVE, GONE, find_unfinished_runs, process_started_at
from elt_assets.ops.health import check_code_location, check_unfinished_runs, health_check_job
from elt_assets.ops.instance_storage import local_compute_log_root
from elt_assets.resources import WarehouseResource
from elt_assets.settings import PROJECT_ROOT
from elt_assets_tests.ops_fixtures import (
    backdate_run,
    duckdb_lock_held,
    materialize_in_background,
    runs_in_their_step,
    sqlite_home,
)
from elt_assets_tests.support import copy_sample, run_elt

DAEMONS = {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING"}
# The newest sample day is 2023-06-14, complete at 2023-06-15T00:00Z.
FRESH = "2023-06-15T12:00:00Z"
STALE = "2023-06-20T00:00:00Z"


@pytest.fixture(scope="module")
def analytics_url(tmp_path_factory):
    """A DuckDB warehouse with every model built for the sample's last day."""
    folder = tmp_path_factory.mktemp("health_warehouse")
    url = f"duckdb:///{folder / 'warehouse.duckdb'}"
    # The last day alone: partitions start on it for this build, so it has no earlier days.
    with dg.DagsterInstance.ephemeral() as instance, pytest.MonkeyPatch.context() as patch:
        patch.setenv("ELT_START_DATE", "2023-06-14")
        assert run_elt(copy_sample(folder / "landing"), url, "2023-06-14", instance=instance).success
    return url


@contextlib.contextmanager
def running_daemon(home: Path, log_path: Path, **environment: str):
    """`dagster-daemon run` serving the instance in home; stopped whatever happens."""
    environment = dict(os.environ, DAGSTER_HOME=str(home), PYTHONPATH=str(PROJECT_ROOT), **environment)
    with open(log_path, "w") as log:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run",
             "-m", "elt_assets.definitions", "-d", str(PROJECT_ROOT)],
            cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield daemon
        finally:
            stop_daemon(daemon)


@pytest.fixture
def daemon_home(tmp_path):
    """A SQLite instance with run monitoring, `dagster-daemon run` serving it."""
    home = sqlite_home(tmp_path / "home")
    with open(home / "dagster.yaml", "a", encoding="utf-8") as config:
        config.write("run_monitoring:\n  enabled: true\n")
    with running_daemon(home, tmp_path / "daemon.log") as daemon:
        yield home, daemon


def stop_daemon(daemon: subprocess.Popen) -> None:
    if daemon.poll() is not None:
        return
    # The daemon's code server is its child: signal the whole group it leads.
    os.killpg(daemon.pid, signal.SIGTERM)
    try:
        daemon.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(timeout=10)


def _wait_for_heartbeats(home: Path, daemon: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while time.monotonic() < deadline:
            assert daemon.poll() is None, (home.parent / "daemon.log").read_text()[-3000:]
            if DAEMONS <= set(instance.get_daemon_heartbeats()):
                return
            time.sleep(0.5)
    raise AssertionError("the daemon sent no heartbeats within 120 s")


def _health(capsys, *args: str) -> tuple[int, dict[str, str]]:
    """Run `elt-assets health`; returns the exit code and each check's line by name."""
    code = cli.main(["health", *args])
    lines = capsys.readouterr().out.strip().splitlines()
    by_name = {line[5:].split(":", 1)[0]: line for line in lines}
    return code, by_name


def test_health_with_a_running_then_stopped_daemon(daemon_home, analytics_url, capsys, monkeypatch, tmp_path):
    home, daemon = daemon_home
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("ELT_WAREHOUSE_URL", analytics_url)
    _wait_for_heartbeats(home, daemon)

    code, lines = _health(capsys, "--now", FRESH)
    assert code == 0, lines
    assert all(line.startswith("ok ") for line in lines.values()), lines
    assert set(lines) == {"instance storage", *(f"daemon {name}" for name in DAEMONS),
                          "unfinished runs", "code location", "warehouse", "freshness"}
    assert lines["unfinished runs"] == "ok   unfinished runs: none"

    assert cli.main(["health", "--json", "--now", FRESH]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and len(document["checks"]) == 9

    # The op job runs the same checks inside the instance.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = health_check_job.execute_in_process(
            instance=instance,
            resources={"warehouse": WarehouseResource(url=analytics_url)},
            run_config={"ops": {"check_health": {"config": {"freshness_lag_hours": 24 * 365 * 10}}}},
        )
        assert result.success

    # A stale partition: only the freshness line fails.
    code, lines = _health(capsys, "--now", STALE)
    assert code == 1
    assert [name for name, line in lines.items() if line.startswith("FAIL")] == ["freshness"]
    assert "newest analytics.analytics_variant_user_daily day 2023-06-14, 120.0 h behind (limit 36 h)" in lines["freshness"]
    assert cli.main(["health", "--now", STALE, "--freshness-lag-hours", "200"]) == 0
    capsys.readouterr()

    # A missing warehouse: the warehouse and freshness lines fail, and no file appears.
    missing = tmp_path / "gone" / "warehouse.duckdb"
    monkeypatch.setenv("ELT_WAREHOUSE_URL", f"duckdb:///{missing}")
    code, lines = _health(capsys, "--now", FRESH)
    assert code == 1
    assert [name for name, line in lines.items() if line.startswith("FAIL")] == ["warehouse", "freshness"]
    assert f"warehouse duckdb:///{missing} does not exist" in lines["warehouse"]
    assert not missing.exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        failed = health_check_job.execute_in_process(
            instance=instance, resources={"warehouse": WarehouseResource(url=f"duckdb:///{missing}")},
            raise_on_error=False,
        )
        assert not failed.success

    # The daemon stops: its heartbeats age past the limit and every daemon line fails.
    monkeypatch.setenv("ELT_WAREHOUSE_URL", analytics_url)
    stop_daemon(daemon)
    deadline = time.monotonic() + 30
    while True:
        code, lines = _health(capsys, "--now", FRESH, "--heartbeat-max-age", "1")
        failing = sorted(name for name, line in lines.items() if line.startswith("FAIL"))
        if failing == sorted(f"daemon {name}" for name in DAEMONS) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert code == 1
    assert failing == sorted(f"daemon {name}" for name in DAEMONS), lines
    assert "last heartbeat" in lines["daemon SENSOR"] or "no heartbeat" in lines["daemon SENSOR"]


def test_health_without_an_instance_fails_cleanly(capsys, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert cli.main(["health", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert document["checks"][0]["detail"] == "DAGSTER_HOME is not set: point it at the instance's folder"


def test_a_module_dagster_would_refuse_fails_the_code_location_check(tmp_path, monkeypatch):
    (tmp_path / "two_locations.py").write_text("import dagster as dg\na = dg.Definitions()\nb = dg.Definitions()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(dg.DagsterInvariantViolationError, match="more than one Definitions"):
        check_code_location("two_locations")
    assert check_code_location("elt_assets.definitions").ok


# Monitoring as in the project's dagster.yaml, with a maximum runtime short enough to wait for.
QUICK_MONITORING = (
    "run_monitoring:\n  enabled: true\n  start_timeout_seconds: 180\n  max_runtime_seconds: {max_runtime}\n"
    "  max_resume_run_attempts: 0\n  poll_interval_seconds: 1\n"
)


def test_dagsters_run_monitoring_ends_a_killed_run_only_at_its_maximum_runtime(tmp_path, landing, monkeypatch, capsys):
    """The default run launcher cannot tell the monitoring daemon that a run's process is
    gone: the daemon checks the killed run every second and leaves it STARTED, until its
    maximum runtime, when it cancels it and marks it failed. `elt-assets health` names
    the run as soon as its process is gone."""
    max_runtime = 30
    home = sqlite_home(tmp_path / "home")
    with open(home / "dagster.yaml", "a", encoding="utf-8") as config:
        config.write(QUICK_MONITORING.format(max_runtime=max_runtime))
    daemon_log = tmp_path / "daemon.log"
    warehouse = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with running_daemon(home, daemon_log) as daemon, duckdb_lock_held(warehouse):
        _wait_for_heartbeats(home, daemon)
        run = materialize_in_background(home, warehouse, landing, "2023-06-01", tmp_path / "run.log")
        try:
            (run_id,) = runs_in_their_step(home, [run]).values()
        finally:
            run.kill()
            run.wait(timeout=60)
        checks_at_kill = daemon_log.read_text().count(f"Checking run {run_id}")

        with dg.DagsterInstance.from_config(str(home)) as instance:
            result = check_unfinished_runs(instance, silent_after=3600)
            assert not result.ok and f"its process {run.pid} on this machine is gone" in result.detail
            deadline = time.monotonic() + 60
            while daemon_log.read_text().count(f"Checking run {run_id}") < checks_at_kill + 3:
                assert time.monotonic() < deadline, daemon_log.read_text()[-3000:]
                time.sleep(0.2)
            record = instance.get_run_record_by_id(run_id)
            assert time.time() - record.start_time < max_runtime, "too slow to see the run before its maximum runtime"
            assert record.dagster_run.status == dg.DagsterRunStatus.STARTED

            deadline = time.monotonic() + max_runtime + 60
            while not instance.get_run_by_id(run_id).is_finished:
                assert time.monotonic() < deadline, daemon_log.read_text()[-3000:]
                time.sleep(0.5)
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
            messages = [event.message for event in instance.all_logs(run_id)]
            assert f"Canceling due to exceeding maximum runtime of {max_runtime} seconds." in messages
            assert any("forcibly marked as failed" in message for message in messages), messages[-5:]
            assert time.time() - record.start_time >= max_runtime


def test_a_run_silent_past_the_limit_fails_the_check_when_its_process_cannot_be_checked(tmp_path):
    """A started run that recorded no process (its process could not be placed on this
    machine) fails the check only once it has been silent longer than the limit."""
    with dg.DagsterInstance.from_config(str(sqlite_home(tmp_path / "home"))) as instance:
        run = instance.create_run_for_job(dg.GraphDefinition("silent").to_job(), status=dg.DagsterRunStatus.STARTED)
        backdate_run(instance, run.run_id, days=0.5)
        result = check_unfinished_runs(instance, silent_after=6 * 3600)
        assert not result.ok
        assert result.detail == (
            f"1 run(s) can never finish: run {run.run_id} (silent, STARTED): no process recorded yet; "
            "last event 12.0 h ago (limit 6.0 h); `elt-assets cleanup` marks them failed"
        )
        result = check_unfinished_runs(instance, silent_after=24 * 3600)
        assert result.ok and result.detail == "1 unfinished: 0 with a live process here, 1 not checkable here and active"


def test_a_launched_runs_process_is_the_one_its_worker_reported(tmp_path):
    """A run started by the run launcher reports "Started process for run (pid: N)." before
    anything else; that pid is the one judged. A pid with no process is gone, the
    pid of a live process that started before the report is alive."""
    with dg.DagsterInstance.from_config(str(sqlite_home(tmp_path / "home"))) as instance:
        finished = subprocess.Popen([sys.executable, "-c", "pass"])
        finished.wait(timeout=60)
        runs = {}
        for name, pid in (("dead", finished.pid), ("alive", os.getpid())):
            run = instance.create_run_for_job(dg.GraphDefinition(name).to_job(), status=dg.DagsterRunStatus.STARTING)
            # As dagster/_grpc/impl.py reports it, from the run's own process.
            instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
            # The run's compute logs, written on this machine.
            (local_compute_log_root(instance) / run.run_id / "compute_logs").mkdir(parents=True)
            runs[run.run_id] = (name, pid)
        judged = {run.run.run_id: (run.verdict, run.pid) for run in find_unfinished_runs(instance)}
    assert judged == {
        run_id: (GONE if name == "dead" else ALIVE, pid) for run_id, (name, pid) in runs.items()
    }


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc (Linux)")
def test_a_process_start_time_comes_from_proc_and_a_zombie_is_no_process():
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    after = time.time()
    try:
        started = process_started_at(child.pid)
        # /proc's boot time has one-second resolution.
        assert before - 2 <= started <= after + 1
        assert process_started_at(os.getpid()) < started
    finally:
        child.kill()
    deadline = time.monotonic() + 30
    while process_started_at(child.pid) is not None:  # a zombie until it is reaped
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert Path(f"/proc/{child.pid}").exists()
    child.wait(timeout=60)
    assert process_started_at(child.pid) is None
