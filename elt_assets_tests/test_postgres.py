"""PostgreSQL in both roles: a warehouse that fails mid-load, and the Dagster instance."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from elt_assets.models.registry import registry
from elt_assets.settings import PROJECT_ROOT
from elt_assets.engines import WarehouseError, engine_for_url
from elt_assets_tests.pg_cluster import free_port
from elt_assets_tests.support import failure_message, fresh_database, rows, run_elt, warehouse_digest

ASSET_KEYS = [dg.AssetKey([model.schema, model.name]) for model in registry().models.values()]


def test_a_killed_connection_mid_load_keeps_the_old_rows(landing, postgres_url):
    run_elt(landing, postgres_url, "2023-06-01", "2023-06-03")
    before = warehouse_digest(postgres_url)
    database = postgres_url.rsplit("/", 1)[1]
    blocker = sa.create_engine(postgres_url).connect()
    # A separate autocommit session watches: pg_stat_activity is a per-transaction snapshot.
    watcher = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect()
    outcome: dict = {}
    try:
        # Hold the raw table so that the load stops at its DELETE, then kill the loader.
        blocker.execute(sa.text("lock table raw_data.user_event in access exclusive mode"))
        def load_day() -> None:
            # The instance lives and dies in this thread (its SQLite is thread-bound).
            with dg.DagsterInstance.ephemeral() as instance:
                outcome["result"] = run_elt(
                    landing, postgres_url, "2023-06-02", selection="key:raw_data/user_event",
                    instance=instance, raise_on_error=False,
                )

        worker = threading.Thread(target=load_day)
        worker.start()
        deadline = time.monotonic() + 60
        loader = None
        while loader is None and time.monotonic() < deadline:
            loader = watcher.execute(
                sa.text(
                    "select pid from pg_stat_activity where datname = :name "
                    "and wait_event_type = 'Lock'"
                ),
                {"name": database},
            ).scalar()
            if loader is None:
                time.sleep(0.05)
        assert loader is not None, "the load never reached the locked table"
        watcher.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": loader})
    finally:
        blocker.rollback()
        blocker.close()
        watcher.close()
    worker.join(timeout=120)
    result = outcome["result"]
    assert not result.success
    message = failure_message(result)
    assert "raw_data.user_event for [2023-06-02, 2023-06-03) failed in the warehouse" in message
    assert "previous rows are unchanged" in message
    assert warehouse_digest(postgres_url) == before

    again = run_elt(landing, postgres_url, "2023-06-02", selection="key:raw_data/user_event")
    assert again.success
    assert warehouse_digest(postgres_url) == before


def test_an_unreachable_warehouse_is_a_clear_error(landing):
    url = f"postgresql+psycopg2://elt:s3cret-pw@127.0.0.1:{free_port()}/warehouse"
    result = run_elt(landing, url, "2023-06-01", selection="key:raw_data/user_event", raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "cannot connect to the warehouse postgresql+psycopg2://elt:***@127.0.0.1" in message
    assert "s3cret-pw" not in message
    with pytest.raises(WarehouseError, match="cannot connect"):
        with engine_for_url(url, lock_timeout_seconds=1).transaction():
            pass


def test_the_production_instance_config_stores_runs_in_postgres(
    tmp_path, landing, postgres_admin_url, postgres_url
):
    storage_url = sa.make_url(postgres_admin_url)
    with fresh_database(postgres_admin_url) as instance_url:
        _materialize_with_postgres_storage(tmp_path, landing, storage_url, sa.make_url(instance_url).database, postgres_url)


def _materialize_with_postgres_storage(tmp_path, landing, storage_url, instance_db: str, postgres_url: str) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    environment = dict(os.environ)
    environment.update(
        DAGSTER_HOME=str(home),
        DAGSTER_MODULE_NAME="elt_assets.definitions",
        DAGSTER_PG_HOST=storage_url.host,
        DAGSTER_PG_PORT=str(storage_url.port),
        DAGSTER_PG_USER=storage_url.username,
        DAGSTER_PG_PASSWORD="",
        DAGSTER_PG_DB=instance_db,
        ELT_LANDING_DIR=str(landing),
        ELT_WAREHOUSE_URL=postgres_url,
    )
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "elt_assets.definitions",
         "--select", "*", "--partition-range", "2023-06-01...2023-06-05"],
        # Not the project root: a quick start's .env there would override this environment.
        cwd=landing.parent, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    saved = dict(os.environ)
    os.environ.update(environment)
    try:
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            runs = instance.get_runs()
            assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
            days = {f"2023-06-0{day}" for day in range(1, 6)}
            for key in ASSET_KEYS:
                assert instance.get_materialized_partitions(key) == days, key
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert len(rows(postgres_url, "analytics.analytics_variant_user_daily")) > 1000
