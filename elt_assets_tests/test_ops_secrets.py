"""Warehouse credentials from Secrets Manager (moto on 127.0.0.1), never shown anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pytest
import sqlalchemy as sa
from dagster_aws.secretsmanager import SecretsManagerResource

from elt_assets import cli
from elt_assets.definitions import defs
from elt_assets.resources import LandingZoneResource, WarehouseResource, warehouse_from_env
from elt_assets.secrets import SecretError, apply_instance_secret, url_from_secret
from elt_assets.settings import PROJECT_ROOT
from elt_assets_tests.ops_fixtures import aws_env, moto_endpoint, sqlite_home  # noqa: F401 (fixtures)
from elt_assets_tests.pg_cluster import free_port
from elt_assets_tests.support import login_role, rows


def test_secret_values_combine_with_the_base_url():
    base = "postgresql+psycopg2://elt@db.internal:5432/analytics"
    assert url_from_secret("pw1", base, "s") == "postgresql+psycopg2://elt:pw1@db.internal:5432/analytics"
    rds = json.dumps({"username": "app", "password": "pw2", "host": "h", "port": 6543, "dbname": "d"})
    assert url_from_secret(rds, base, "s") == "postgresql+psycopg2://app:pw2@h:6543/d"
    assert url_from_secret(json.dumps({"url": "duckdb:///x.duckdb"}), None, "s") == "duckdb:///x.duckdb"
    assert url_from_secret(" duckdb:///y.duckdb\n", None, "s") == "duckdb:///y.duckdb"
    with pytest.raises(SecretError, match="'s' holds a password only"):
        url_from_secret("pw3", None, "s")
    with pytest.raises(SecretError) as raised:
        url_from_secret("{not json pw4", base, "s")
    assert "pw4" not in str(raised.value)


def _create_secret(endpoint: str, value: str) -> str:
    name = f"elt/warehouse/{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1").create_secret(
        Name=name, SecretString=value
    )
    return name


@pytest.fixture
def warehouse_role(postgres_admin_url, postgres_url):
    """A login role with a password that may build every model in the test database."""
    password = f"pw-{uuid.uuid4().hex}"
    with login_role(postgres_admin_url, postgres_url, f"elt_secret_{uuid.uuid4().hex[:8]}", password) as role:
        yield role, password


def _materialize(instance, landing, warehouse: WarehouseResource, selection: str = "*"):
    definitions = dg.Definitions(
        assets=list(defs.assets),
        resources={"warehouse": warehouse, "landing_zone": LandingZoneResource(root=str(landing))},
        executor=dg.in_process_executor,
        jobs=[dg.define_asset_job("secret_elt", selection=dg.AssetSelection.from_string(selection))],
    )
    return definitions.resolve_job_def("secret_elt").execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": "2023-06-01", "dagster/asset_partition_range_end": "2023-06-01"},
        raise_on_error=False,
    )


def _everything_the_run_left(instance, run_id, home: Path) -> str:
    """Every event of the run (messages, metadata, SQL) and its captured stdout/stderr."""
    records = instance.get_records_for_run(run_id, limit=100_000).records
    text = "\n".join(dg.serialize_value(record.event_log_entry) for record in records)
    for path in (home / "storage" / run_id).rglob("*"):
        if path.is_file():
            text += path.read_text(errors="replace")
    return text


def test_the_warehouse_url_comes_from_secrets_manager_and_is_never_shown(
    tmp_path, landing, postgres_url, warehouse_role, aws_env
):
    role, password = warehouse_role
    # The secret is the whole URL: a role and a database that appear nowhere else.
    secret_url = sa.make_url(postgres_url).set(username=role, password=password).render_as_string(hide_password=False)
    secret_id = _create_secret(aws_env, secret_url)
    warehouse = WarehouseResource(
        secret_id=secret_id,
        secrets_manager=SecretsManagerResource(endpoint_url=aws_env, region_name="us-east-1"),
    )
    home = sqlite_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = _materialize(instance, landing, warehouse)
        assert result.success
        left = _everything_the_run_left(instance, result.run_id, home)
    assert len(rows(postgres_url, "analytics.analytics_variant_user_daily")) > 100
    # The tables belong to the secret's role: the run connected as it.
    owners = rows(postgres_url, "(select distinct tableowner from pg_tables where schemaname = 'raw_data') as t")
    assert owners == [(role,)]
    assert "select" in left and "row_count" in left  # the scan did read SQL and metadata
    assert password not in left and secret_url not in left


def test_an_unreachable_warehouse_from_a_secret_masks_the_password(tmp_path, landing, aws_env):
    password = f"pw-{uuid.uuid4().hex}"
    secret_id = _create_secret(aws_env, f"postgresql+psycopg2://elt:{password}@127.0.0.1:{free_port()}/nowhere")
    warehouse = WarehouseResource(
        secret_id=secret_id,
        lock_timeout_seconds=1,
        secrets_manager=SecretsManagerResource(endpoint_url=aws_env, region_name="us-east-1"),
    )
    home = sqlite_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = _materialize(instance, landing, warehouse, selection="key:raw_data/user_event")
        assert not result.success
        left = _everything_the_run_left(instance, result.run_id, home)
    assert "cannot connect to the warehouse postgresql+psycopg2://elt:***@127.0.0.1" in left
    assert password not in left


def test_commands_and_resources_read_the_secret_named_in_the_environment(
    tmp_path, aws_env, monkeypatch, capsys
):
    warehouse_file = tmp_path / "secret-warehouse.duckdb"
    duckdb_url = f"duckdb:///{warehouse_file}"
    duckdb.connect(str(warehouse_file)).close()
    monkeypatch.setenv("ELT_WAREHOUSE_SECRET_ID", _create_secret(aws_env, json.dumps({"url": duckdb_url})))
    monkeypatch.delenv("ELT_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(sqlite_home(tmp_path / "home")))
    assert cli.main(["health", "--json"]) == 1  # no daemon, no data: only the warehouse matters here
    checks = {check["name"]: check for check in json.loads(capsys.readouterr().out)["checks"]}
    assert checks["warehouse"] == {"name": "warehouse", "ok": True, "detail": f"{duckdb_url} answered select 1"}
    # The resource carries the secret's id, resolved when a step connects.
    resource = warehouse_from_env()
    assert resource.url == "" and resource.secret_id == "ELT_WAREHOUSE_SECRET_ID"

    # The instance's PostgreSQL credentials, RDS-style; variables already set win.
    secret_id = _create_secret(aws_env, json.dumps(
        {"username": "dagster", "password": "pg-secret", "host": "db.internal", "port": 5432, "dbname": "dagster"}))
    environment = {"ELT_DAGSTER_PG_SECRET_ID": secret_id, "DAGSTER_PG_HOST": "other.internal"}
    assert apply_instance_secret(environment)
    assert environment["DAGSTER_PG_PASSWORD"] == "pg-secret" and environment["DAGSTER_PG_HOST"] == "other.internal"
    assert environment["DAGSTER_PG_PORT"] == "5432" and environment["DAGSTER_PG_DB"] == "dagster"


def test_with_secrets_runs_a_command_with_the_instance_credentials(tmp_path, aws_env):
    secret_id = _create_secret(aws_env, json.dumps({"password": "pg-secret-2", "dbname": "dagster_prod"}))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DAGSTER_PG_")}
    environment.update(ELT_DAGSTER_PG_SECRET_ID=secret_id, PYTHONPATH=str(PROJECT_ROOT))
    completed = subprocess.run(
        [sys.executable, "-m", "elt_assets.cli", "with-secrets", "--", sys.executable, "-c",
         "import os; print(os.environ['DAGSTER_PG_DB'], len(os.environ['DAGSTER_PG_PASSWORD']))"],
        env=environment, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.split() == ["dagster_prod", str(len("pg-secret-2"))]
