"""`dg`, Dagster's project command, run from the project root as the README shows it:
`dg list defs`, `dg check defs` and `dg launch` find the code location through
`[tool.dg]` in pyproject.toml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dotenv import dotenv_values

from elt_assets import cli
from elt_assets.definitions import defs
from elt_assets.settings import PROJECT_ROOT, SAMPLE_FIRST_DAY
from elt_assets_tests.support import query

DG = Path(sys.executable).parent / "dg"


@pytest.fixture
def project(tmp_path):
    """An instance, a landing zone holding the sample and a warehouse, all in tmp_path, and
    the first two days of the project's partitions.

    `dg` reads the .env of the project root and lets it beat the environment; after
    `elt-assets quickstart` it holds ELT_START_DATE, so the sample is placed on those days.
    """
    dotenv = dotenv_values(PROJECT_ROOT / ".env") if (PROJECT_ROOT / ".env").exists() else {}
    redirected = sorted(name for name in dotenv if name.startswith(("ELT_", "DAGSTER_")) and name != "ELT_START_DATE")
    if redirected:
        pytest.skip(f"the project's .env sets {', '.join(redirected)}: dg would use it instead of tmp_path")
    first_day = date.fromisoformat(dotenv.get("ELT_START_DATE") or SAMPLE_FIRST_DAY.isoformat())
    cli.seed_landing(tmp_path / "landing", first_day=first_day)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    environment = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        ELT_WAREHOUSE_URL=url,
        ELT_LANDING_DIR=str(tmp_path / "landing"),
        ELT_START_DATE=first_day.isoformat(),
        PYTHONPATH=str(PROJECT_ROOT),  # as the code location is found in a checkout not installed
        COLUMNS="250",  # the tables `dg list defs` draws are as wide as the terminal
    )
    return {"environment": environment, "home": home, "url": url, "days": (first_day, first_day + timedelta(days=1))}


def run_dg(project, *arguments: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [str(DG), *arguments], cwd=PROJECT_ROOT, env=project["environment"],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


def test_dg_list_defs_lists_every_asset_and_check_of_the_code_location(project):
    document = json.loads(run_dg(project, "list", "defs", "--json").stdout)
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {asset["asset_key"] for asset in document["assets"]} == assets
    assert "core/dim_user" in assets and "landing/user_event" in assets
    assert {check["key"] for check in document["asset_checks"]} == {
        f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys
    }
    assert {job["name"] for job in document["jobs"]} >= {"elt_daily", "health_check_job"}

    table = run_dg(project, "list", "defs").stdout
    assert all(asset in table for asset in assets), table


def test_dg_check_defs_loads_the_code_location(project):
    checked = run_dg(project, "check", "defs")
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr


def test_dg_launch_builds_a_range_of_days_in_one_run(project):
    first, second = project["days"]
    run_dg(project, "launch", "--assets", "*", "--partition-range", f"{first}...{second}")

    with dg.DagsterInstance.from_config(str(project["home"])) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_materialized_partitions(dg.AssetKey(["core", "dim_user"])) == {
            first.isoformat(), second.isoformat()
        }
    users_per_day = query(project["url"], "select as_of_date, count(*) from core.dim_user group by 1 order by 1")
    assert [day for day, _users in users_per_day] == [first, second]
    assert all(users > 300 for _day, users in users_per_day), users_per_day
