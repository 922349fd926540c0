"""The commands users type: `dagster asset materialize` and `elt-assets quickstart`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from elt_assets.settings import PROJECT_ROOT
from elt_assets_tests.support import rows

ALL_ASSETS = 11


def _environment(tmp_path: Path, landing: Path, url: str) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = dict(os.environ)
    environment.update(
        DAGSTER_HOME=str(home),
        DAGSTER_MODULE_NAME="elt_assets.definitions",
        ELT_LANDING_DIR=str(landing),
        ELT_WAREHOUSE_URL=url,
    )
    return environment


def test_a_range_backfill_from_the_cli_is_one_run(tmp_path, landing, duckdb_url):
    environment = _environment(tmp_path, landing, duckdb_url)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "--select", "*",
         "--partition-range", "2023-06-01...2023-06-14"],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    with dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        key = dg.AssetKey(["analytics", "analytics_variant_user_daily"])
        materialized = instance.get_materialized_partitions(key)
        assert materialized == {f"2023-06-{day:02d}" for day in range(1, 15)}
    assert len(rows(duckdb_url, "analytics.analytics_variant_user_daily")) > 5_000


def test_a_partition_outside_the_range_is_refused_by_the_cli(tmp_path, landing, duckdb_url):
    environment = _environment(tmp_path, landing, duckdb_url)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "--select", "*",
         "--partition", "2023-05-31"],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode != 0
    assert "2023-05-31" in completed.stderr


def test_quickstart_loads_the_sample_and_prints_the_summary(tmp_path, duckdb_url):
    landing = tmp_path / "quick_landing"
    environment = _environment(tmp_path, landing, duckdb_url)
    completed = subprocess.run(
        [sys.executable, "-m", "elt_assets.cli", "quickstart"],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    assert "| control |" in completed.stdout and "| test |" in completed.stdout
    assert "dagster dev" in completed.stdout
    assert (landing / "user_event" / "2023-06-14.csv").exists()
    with dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance:
        assert len(instance.get_runs()) == 1
