"""Helpers for tests: run the real assets against a landing folder and a warehouse file."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import itertools
import os
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from elt_assets.definitions import defs
from elt_assets.resources import LandingZoneResource, WarehouseResource
from elt_assets.settings import SEEDS_LANDING_DIR

TABLES = (
    "raw_data.user_event",
    "raw_data.user_variant",
    "raw_data.user_metadata",
    "core.dim_user_variant",
    "core.dim_user_metadata",
    "core.fact_user_event",
    "core.dim_user",
    "analytics.analytics_variant_user_daily",
)


def copy_sample(target: Path) -> Path:
    shutil.copytree(SEEDS_LANDING_DIR, target)
    return target


def elt_definitions(landing: Path, warehouse_url: str) -> dg.Definitions:
    """The project's assets and checks with resources pointing at the test's folder and warehouse."""
    return dg.Definitions(
        assets=list(defs.assets),
        asset_checks=list(defs.asset_checks),
        resources={
            "warehouse": WarehouseResource(url=warehouse_url, lock_timeout_seconds=30),
            "landing_zone": LandingZoneResource(root=str(landing)),
        },
        executor=dg.in_process_executor,
    )


def run_elt(
    landing: Path,
    warehouse_url: str,
    first: str,
    last: str | None = None,
    selection: str = "*",
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize the selected assets for first..last as one single-run backfill."""
    if instance is None:
        # Entered, so that Dagster's context points at a live instance while definitions
        # load (a finished instance of an earlier test may still be its current one).
        with dg.DagsterInstance.ephemeral() as ephemeral:
            return run_elt(landing, warehouse_url, first, last, selection, ephemeral, raise_on_error)
    definitions = elt_definitions(landing, warehouse_url)
    job = dg.define_asset_job("test_elt", selection=dg.AssetSelection.from_string(selection))
    resolved = dg.Definitions.merge(definitions, dg.Definitions(jobs=[job])).resolve_job_def("test_elt")
    return resolved.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last or first,
        },
        raise_on_error=raise_on_error,
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = [
        event.event_specific_data.error.to_string()
        for event in result.all_events
        if event.is_step_failure and event.event_specific_data.error is not None
    ]
    return "\n".join(messages)


def duckdb_path(url: str) -> str:
    return url.removeprefix("duckdb:///")


def _normalized(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _sort_key(row: tuple) -> tuple:
    return tuple((value is None, 0 if value is None else value) for value in row)


def query(url: str, sql: str) -> list[tuple]:
    """Run a query on the warehouse (DuckDB file read-only, or PostgreSQL); rows as tuples."""
    if url.startswith("duckdb"):
        with duckdb.connect(duckdb_path(url), read_only=True) as connection:
            return connection.execute(sql).fetchall()
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(sql))]
    finally:
        engine.dispose()


def rows(url: str, table: str, where: str = "") -> list[tuple]:
    """Every row of a table, values normalized across engines, sorted."""
    found = query(url, f"select * from {table} {where}")
    return sorted((tuple(_normalized(value) for value in row) for row in found), key=_sort_key)


def table_digest(url: str, table: str) -> str:
    return hashlib.sha256(repr(rows(url, table)).encode()).hexdigest()


def warehouse_digest(url: str) -> dict[str, str]:
    return {table: table_digest(url, table) for table in TABLES}


def day(value: str) -> date:
    return date.fromisoformat(value)


_database_numbers = itertools.count()


@contextlib.contextmanager
def fresh_database(admin_url: str):
    """A new, empty database on the server (its URL), dropped when the block ends."""
    name = f"elt_test_{os.getpid()}_{next(_database_numbers)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"create database {name}"))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(
                sa.text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :name"),
                {"name": name},
            )
            connection.execute(sa.text(f"drop database if exists {name}"))
        admin.dispose()


@contextlib.contextmanager
def login_role(admin_url: str, database_url: str, role: str, password: str):
    """A PostgreSQL login role with `password` that may build in the database of
    `database_url`; what it owns and the role are dropped when the block ends."""
    database = sa.make_url(database_url).database
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"create role {role} login password '{password}'"))
        connection.execute(sa.text(f"grant all on database {database} to {role}"))
    try:
        yield role
    finally:
        owner = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
        with owner.connect() as connection:
            connection.execute(sa.text(f"drop owned by {role}"))
        owner.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f"drop role if exists {role}"))
        admin.dispose()


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """Terminate a server the test started; kill it if it does not stop in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def dbt_missing() -> str | None:
    """Why the benchmark's dbt peer cannot run here (dbt-core or dbt-duckdb, the bench
    extra, not installed), or None. Checked by distribution, without importing dbt; under
    ELT_REQUIRE_DBT=1 (CI) a missing dbt fails the calling test."""
    for distribution in ("dbt-core", "dbt-duckdb"):
        try:
            importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            message = f"{distribution} is not installed (pip install -e '.[bench]')"
            if os.environ.get("ELT_REQUIRE_DBT") == "1":
                pytest.fail(message)
            return message
    return None
