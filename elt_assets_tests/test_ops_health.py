"""Health checks against a real dagster-daemon, a DuckDB warehouse and stale or missing data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from elt_assets import cli
from elt_assets.ops.health import check_code_location, health_check_job
from elt_assets.resources import WarehouseResource
from elt_assets.settings import PROJECT_ROOT
from elt_assets_tests.ops_fixtures import sqlite_home
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


@pytest.fixture
def daemon_home(tmp_path):
    """A SQLite instance with run monitoring, `dagster-daemon run` serving it; stopped whatever happens."""
    home = sqlite_home(tmp_path / "home")
    with open(home / "dagster.yaml", "a", encoding="utf-8") as config:
        config.write("run_monitoring:\n  enabled: true\n")
    environment = dict(os.environ, DAGSTER_HOME=str(home), PYTHONPATH=str(PROJECT_ROOT))
    log = open(tmp_path / "daemon.log", "w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run",
         "-m", "elt_assets.definitions", "-d", str(PROJECT_ROOT)],
        cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield home, daemon
    finally:
        stop_daemon(daemon)
        log.close()


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
                          "code location", "warehouse", "freshness"}

    assert cli.main(["health", "--json", "--now", FRESH]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True and len(document["checks"]) == 8

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
