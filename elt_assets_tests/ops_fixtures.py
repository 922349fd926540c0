"""Fixtures for the operations tests: Dagster instances on SQLite and on PostgreSQL, a
moto server on 127.0.0.1 for S3 and Secrets Manager, and real runs started from the
command line that wait, in their step, for a DuckDB lock held by the test.

Import the fixtures a test module needs from here (pytest finds them by name).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
# Private: no public API stores a run with an old timestamp (see backdate_run).
from dagster._core.storage.runs.schema import RunsTable

from elt_assets.cli import local_instance_yaml
from elt_assets.settings import PROJECT_ROOT
from elt_assets_tests.s3_server import running_s3_server

# Trust authentication ignores it, so it may be set; it must never show up anywhere.
FAKE_PG_PASSWORD = "pg-pw-" + uuid.uuid4().hex[:12]


def sqlite_home(path: Path) -> Path:
    """A Dagster home configured as the embedded default (SQLite storage), as
    `elt-assets quickstart` makes it."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(local_instance_yaml(), encoding="utf-8")
    return path


def create_database(admin_url: str, name: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"drop database if exists {name}"))
        connection.execute(sa.text(f"create database {name}"))
    admin.dispose()


def drop_database(admin_url: str, name: str) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(
            sa.text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :name"),
            {"name": name},
        )
        connection.execute(sa.text(f"drop database if exists {name}"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def instance_home(request, tmp_path, monkeypatch):
    """A Dagster home: the embedded SQLite default, or the project's dagster.yaml on PostgreSQL.

    For PostgreSQL the DAGSTER_PG_* variables point at a fresh database on the test server.
    """
    home = tmp_path / "dagster_home"
    if request.param == "sqlite":
        yield sqlite_home(home)
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    server = sa.make_url(admin_url)
    name = f"dagster_ops_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    create_database(admin_url, name)
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_HOST", server.host)
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.port))
    monkeypatch.setenv("DAGSTER_PG_USER", server.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", FAKE_PG_PASSWORD)
    monkeypatch.setenv("DAGSTER_PG_DB", name)
    try:
        yield home
    finally:
        drop_database(admin_url, name)


def wipe_instance_storage(home: Path, admin_url: str | None) -> None:
    """Lose the instance's storage: SQLite files and compute logs, or the whole database."""
    if (home / "history").exists() or (home / "schedules").exists():
        for name in ("history", "schedules", "storage"):
            shutil.rmtree(home / name, ignore_errors=True)
        return
    name = os.environ["DAGSTER_PG_DB"]
    drop_database(admin_url, name)
    create_database(admin_url, name)


def backdate_run(instance: dg.DagsterInstance, run_id: str, days: float) -> None:
    """Make a run look `days` old.

    Dagster stamps a run's creation time itself and offers no way to store an old run,
    so the test rewrites the timestamps of the run's row, as if it had run back then.
    """
    when = datetime.now(timezone.utc) - timedelta(days=days)
    with instance.run_storage.connect() as connection:
        connection.execute(
            RunsTable.update()
            .where(RunsTable.c.run_id == run_id)
            .values(
                create_timestamp=when.replace(tzinfo=None),
                update_timestamp=when.replace(tzinfo=None),
                start_time=when.timestamp(),
                end_time=when.timestamp() + 5,
            )
        )


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto server (S3, Secrets Manager, ...) on 127.0.0.1, stopped after the session."""
    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    """Dummy AWS credentials and every endpoint variable pointing at the moto server."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ELT_S3_ENDPOINT_URL": moto_endpoint,
        "ELT_SECRETS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


# Holds a write lock on the DuckDB file argv[1] until its stdin closes.
HOLD_LOCK = (
    "import duckdb, sys; connection = duckdb.connect(sys.argv[1]); connection.execute('create table held (x int)'); "
    "print('locked', flush=True); sys.stdin.read()"
)


@contextlib.contextmanager
def duckdb_lock_held(warehouse: Path) -> Iterator[subprocess.Popen]:
    """Another process holds the DuckDB file's write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(warehouse)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def materialize_in_background(home: Path, warehouse: Path, landing: Path, day: str, log: Path) -> subprocess.Popen:
    """`dagster asset materialize` of one day's raw events, started as an operator would."""
    environment = dict(
        os.environ, DAGSTER_HOME=str(home), ELT_WAREHOUSE_URL=f"duckdb:///{warehouse}", ELT_LANDING_DIR=str(landing)
    )
    with open(log, "w") as output:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "elt_assets.definitions",
             "--select", "key:raw_data/user_event", "--partition", day],
            cwd=PROJECT_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
        )


def runs_in_their_step(home: Path, processes: list[subprocess.Popen]) -> dict[int, str]:
    """Wait (bounded) until each process's run has started its step; the run ids by the
    pid of the process that runs them."""
    deadline = time.monotonic() + 180
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while time.monotonic() < deadline:
            assert all(process.poll() is None for process in processes), "a run's process ended early"
            by_pid = {}
            for run in instance.get_runs():
                events = instance.all_logs(run.run_id, of_type={dg.DagsterEventType.STEP_START})
                if events:
                    by_pid[events[0].dagster_event.pid] = run.run_id
            if set(by_pid) == {process.pid for process in processes}:
                return by_pid
            time.sleep(0.5)
    raise AssertionError(f"{len(processes)} run(s) did not reach their step within 180 s")


def wait_until_zombie(pid: int) -> None:
    """Wait until the killed process `pid`, not yet reaped by its parent (the test), is a
    zombie: the state a dead run's process is often found in, and one that `kill -0`
    would call alive."""
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, f"process {pid} never became a zombie"
        time.sleep(0.05)
