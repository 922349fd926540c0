"""A warehouse password appears nowhere: not in what the commands print, not in anything a
run leaves in the Dagster home (run, event and index databases, compute logs, storage),
whether the password sits in the URL's userinfo or in a `?password=` query parameter.

The commands run as users run them, in subprocesses, in tmp_path (not the project root,
whose .env would override the environment): `elt-assets compile`, `elt-assets health`,
a `dagster asset materialize` that succeeds and two that fail (a bad landing file, and a
database that does not exist, which fails while connecting).

The test server trusts local connections, so a wrong password would not fail a run; the
role's password is real all the same, and what matters here is where the URL travels.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from elt_assets.settings import PROJECT_ROOT
from elt_assets_tests.ops_fixtures import sqlite_home
from elt_assets_tests.support import copy_sample, login_role, rows

SECRET = "S3cr3t-Value-123"
ELT_COMMAND = Path(sys.executable).parent / "elt-assets"
TIMEOUT = 300


@pytest.fixture
def secret_role(postgres_admin_url, postgres_url):
    """A login role whose password is SECRET, allowed to build in the test database."""
    with login_role(postgres_admin_url, postgres_url, f"elt_masked_{uuid.uuid4().hex[:8]}", SECRET) as role:
        yield role


def _secret_url(postgres_url: str, role: str, shape: str, database: str | None = None) -> str:
    """The URL with SECRET where the shape puts it: `?password=` or `role:password@`."""
    url = sa.make_url(postgres_url).set(username=role, password=None)
    if database:
        url = url.set(database=database)
    if shape == "query":
        url = url.update_query_dict({"password": SECRET})
    else:
        url = url.set(password=SECRET)
    return url.render_as_string(hide_password=False)


def _environment(home: Path, landing: Path, url: str) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ELT_", "DAGSTER_")) or name == "ELT_REQUIRE_POSTGRES"
    }
    environment.update(
        DAGSTER_HOME=str(home),
        ELT_LANDING_DIR=str(landing),
        ELT_WAREHOUSE_URL=url,
        PYTHONPATH=str(PROJECT_ROOT),
    )
    return environment


def _run(command: list[str], cwd: Path, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=TIMEOUT)


def _materialize(day: str) -> list[str]:
    return [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "elt_assets.definitions",
            "--select", "key:raw_data/user_event", "--partition", day]


def _files_holding(root: Path, secret: bytes) -> list[str]:
    """Every file under root whose bytes contain the secret (SQLite databases and their
    journals included, read as they are on disk)."""
    return [str(path.relative_to(root)) for path in sorted(root.rglob("*")) if path.is_file() and secret in path.read_bytes()]


@pytest.mark.parametrize("shape", ["query", "userinfo"])
def test_the_password_is_in_no_output_and_no_file_of_the_dagster_home(
    tmp_path, postgres_url, secret_role, shape
):
    url = _secret_url(postgres_url, secret_role, shape)
    assert SECRET in url
    home = sqlite_home(tmp_path / "dagster_home")
    landing = copy_sample(tmp_path / "landing")
    environment = _environment(home, landing, url)
    outputs: dict[str, subprocess.CompletedProcess] = {}

    outputs["compile"] = _run([str(ELT_COMMAND), "compile", "--partition", "2023-06-01"], tmp_path, environment)
    assert outputs["compile"].returncode == 0, outputs["compile"].stderr[-3000:]
    masked = f"{secret_role}@" if shape == "query" else f"{secret_role}:***@"
    assert f"-- compiled against postgresql+psycopg2://{masked}" in outputs["compile"].stdout

    outputs["materialize"] = _run(_materialize("2023-06-01"), tmp_path, environment)
    assert outputs["materialize"].returncode == 0, outputs["materialize"].stderr[-3000:]
    # The run connected as the role: it owns the raw table.
    owners = rows(postgres_url, "(select tableowner from pg_tables where schemaname = 'raw_data') as t")
    assert owners == [(secret_role,)]

    outputs["health"] = _run([str(ELT_COMMAND), "health"], tmp_path, environment)
    # No daemon runs here, so health fails as a whole; the warehouse check itself passes.
    assert "ok   warehouse: postgresql+psycopg2://" in outputs["health"].stdout, outputs["health"].stdout

    # A bad value in a landing file fails the load of its day.
    bad_day = landing / "user_event" / "2023-06-02.csv"
    with bad_day.open("a", encoding="utf-8") as handle:
        handle.write("not-a-user,2023-06-02,1,0,0,0\n")
    outputs["bad file"] = _run(_materialize("2023-06-02"), tmp_path, environment)
    assert outputs["bad file"].returncode != 0
    assert "2023-06-02.csv" in outputs["bad file"].stdout + outputs["bad file"].stderr

    # A database that does not exist fails while connecting, where the URL goes into the error.
    missing = _environment(home, landing, _secret_url(postgres_url, secret_role, shape, database="no_such_db"))
    outputs["no database"] = _run(_materialize("2023-06-01"), tmp_path, missing)
    assert outputs["no database"].returncode != 0
    failure = outputs["no database"].stdout + outputs["no database"].stderr
    assert "cannot connect to the warehouse postgresql+psycopg2://" in failure

    leaked = {name: stream for name, completed in outputs.items()
              for stream in ("stdout", "stderr") if SECRET in getattr(completed, stream)}
    assert leaked == {}
    # The scan reads where the URL goes: the failed runs' errors hold it, masked.
    masked_in_errors = b"?password=***" if shape == "query" else f"{secret_role}:***@".encode()
    assert _files_holding(home, masked_in_errors)
    assert _files_holding(tmp_path, SECRET.encode()) == []
