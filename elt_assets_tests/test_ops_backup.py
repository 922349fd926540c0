"""Metadata backup and restore: round trips on SQLite and PostgreSQL, with the runs' compute
logs, and to S3 (moto)."""

from __future__ import annotations

import json
import shutil
import stat
import uuid
from pathlib import Path

import boto3
import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from elt_assets import cli
from elt_assets.ops.backup import back_up_instance, metadata_backup_job
from elt_assets.ops.backup_files import MANIFEST, sha256_of
from elt_assets.ops.instance_storage import local_compute_log_root
from elt_assets.ops.restore import RestoreError, restore_backup
from elt_assets_tests.ops_fixtures import (  # noqa: F401 (fixtures)
    FAKE_PG_PASSWORD,
    aws_env,
    instance_home,
    moto_endpoint,
    sqlite_home,
    wipe_instance_storage,
)
from elt_assets_tests.support import run_elt


def _history(instance: dg.DagsterInstance) -> dict:
    """Runs and asset materializations as the UI would show them."""
    runs = sorted((run.run_id, run.job_name, run.status.value, tuple(sorted(run.tags.items())))
                  for run in instance.get_runs())
    materializations = []
    for key in instance.get_asset_keys():
        for record in instance.fetch_materializations(key, limit=1000).records:
            materializations.append((record.storage_id, record.run_id, key.to_user_string(),
                                     record.partition_key, record.timestamp))
    return {"runs": runs, "materializations": sorted(materializations)}


def _make_history(home: Path, landing, duckdb_url) -> dict:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for day in ("2023-06-01", "2023-06-02"):
            assert run_elt(landing, duckdb_url, day, selection="key:raw_data/user_event", instance=instance).success
        return _history(instance)


def _compute_logs(home: Path) -> dict[str, str]:
    """Every file of the instance's compute-log folder, by path, with its sha256."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        root = local_compute_log_root(instance)
    return {path.relative_to(root).as_posix(): sha256_of(path) for path in root.rglob("*") if path.is_file()}


NOOP_COMPUTE_LOGS = (
    "compute_logs:\n  module: dagster._core.storage.noop_compute_log_manager\n  class: NoOpComputeLogManager\n"
)


def _assert_private(folder: Path) -> None:
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in folder.rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_backup_wipe_restore_round_trip(instance_home, landing, duckdb_url, request):
    before = _make_history(instance_home, landing, duckdb_url)
    assert len(before["runs"]) == 2 and len(before["materializations"]) == 2
    logs_before = _compute_logs(instance_home)
    # Each run's captured stdout and stderr, in a folder named after the run.
    assert {path.split("/")[0] for path in logs_before} == {run[0] for run in before["runs"]}
    destination = instance_home.parent / "backups"
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        result = back_up_instance(instance, destination=str(destination), keep=3)
    folder = Path(result.location)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest == result.manifest
    assert manifest["storage"] == ("postgres" if "postgres" in request.node.name else "sqlite")
    names = {item["path"] for item in manifest["files"]}
    assert {"config/dagster.yaml", "config/workspace.yaml"} <= names
    assert manifest["compute_logs"] == {
        "included": True, "manager": "LocalComputeLogManager", "folder": "compute_logs", "files": len(logs_before)
    }
    assert {f"compute_logs/{path}" for path in logs_before} <= names
    _assert_private(destination)
    # Nothing in the backup carries the instance's database password.
    for path in folder.rglob("*"):
        if path.is_file():
            assert FAKE_PG_PASSWORD.encode() not in path.read_bytes(), path

    admin_url = request.getfixturevalue("postgres_admin_url") if manifest["storage"] == "postgres" else None
    wipe_instance_storage(instance_home, admin_url)
    shutil.rmtree(instance_home / "storage", ignore_errors=True)  # the compute logs, lost with the machine
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        assert instance.get_runs_count() == 0
    messages: list[str] = []
    restore_backup(str(folder), instance_home, log=messages.append)
    assert messages[0] == f"checksums of {len(manifest['files'])} file(s) verified"
    assert messages[-1].startswith(f"restored {len(logs_before)} compute-log file(s) into ")
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        assert _history(instance) == before
    assert _compute_logs(instance_home) == logs_before

    with pytest.raises(RestoreError, match="pass --force"):
        restore_backup(str(folder), instance_home)
    restore_backup(str(folder), instance_home, force=True)
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        assert _history(instance) == before


def test_restore_verifies_checksums_and_backups_keep_the_newest(tmp_path, landing, duckdb_url):
    home = sqlite_home(tmp_path / "home")
    before = _make_history(home, landing, duckdb_url)
    destination = tmp_path / "backups"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        made = [back_up_instance(instance, destination=str(destination), keep=2) for _ in range(3)]
    assert sorted(path.name for path in destination.iterdir()) == sorted(Path(r.location).name for r in made[1:])
    assert made[2].removed == [Path(made[0].location).name]

    damaged = Path(made[1].location) / "sqlite" / "history" / "runs.db"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\x00")
    target = sqlite_home(tmp_path / "fresh")
    with pytest.raises(RestoreError, match="runs.db does not match its checksum; nothing was restored"):
        restore_backup(made[1].location, target)
    assert not (target / "history").exists()

    # The command line, as an operator would run it.
    fresh = tmp_path / "fresh_cli"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(fresh))
        assert cli.main(["restore", made[2].location]) == 0
    with dg.DagsterInstance.from_config(str(fresh)) as instance:
        assert _history(instance) == before


def test_backup_job_and_restore_through_s3_with_server_side_encryption(tmp_path, landing, duckdb_url, aws_env):
    home = sqlite_home(tmp_path / "home")
    before = _make_history(home, landing, duckdb_url)
    bucket = f"elt-backups-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    kms_key = boto3.client("kms", endpoint_url=aws_env, region_name="us-east-1").create_key()["KeyMetadata"]["KeyId"]
    s3 = S3Resource(endpoint_url=aws_env, region_name="us-east-1")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        first = back_up_instance(instance, destination=f"s3://{bucket}/elt/backups", keep=1, s3=s3)
        job = metadata_backup_job.execute_in_process(
            instance=instance,
            resources={"backup_s3": s3},
            run_config={"ops": {"back_up_metadata": {"config": {
                "destination": f"s3://{bucket}/elt/backups", "keep": 1,
                "server_side_encryption": "aws:kms", "kms_key_id": kms_key,
            }}}},
        )
    assert job.success
    second = job.output_for_node("back_up_metadata")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    # keep=1: the first backup is gone, the second is whole.
    name = second.rsplit("/", 1)[1]
    assert first.location != second
    assert {key.split("/")[2] for key in keys} == {name}
    assert f"elt/backups/{name}/{MANIFEST}" in keys and len(keys) >= 5
    for key in keys:
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert kms_key in head["SSEKMSKeyId"], key

    target = sqlite_home(tmp_path / "restored")
    restore_backup(second, target, s3=s3)
    with dg.DagsterInstance.from_config(str(target)) as instance:
        restored = _history(instance)
    # The backup job's own run was in progress when its backup was taken.
    assert [run for run in restored["runs"] if run[0] != job.run_id] == before["runs"]
    assert restored["materializations"] == before["materializations"]


def test_aes256_is_the_default_encryption_on_s3(tmp_path, aws_env):
    home = sqlite_home(tmp_path / "home")
    bucket = f"elt-backups-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # No resource given: the S3 resource comes from ELT_S3_ENDPOINT_URL.
        result = back_up_instance(instance, destination=f"s3://{bucket}/b")
    for item in client.list_objects_v2(Bucket=bucket)["Contents"]:
        assert client.head_object(Bucket=bucket, Key=item["Key"])["ServerSideEncryption"] == "AES256"
    assert result.location.startswith(f"s3://{bucket}/b/dagster-backup-")


def test_a_backup_says_so_when_the_compute_logs_are_not_local_files(tmp_path, landing, duckdb_url, capsys):
    """Compute logs that a manager keeps elsewhere (here: nowhere) are not in the backup, and
    its manifest and the command say so; local ones restored into such an instance neither."""
    home = sqlite_home(tmp_path / "home")
    with open(home / "dagster.yaml", "a", encoding="utf-8") as config:
        config.write(NOOP_COMPUTE_LOGS)
    _make_history(home, landing, duckdb_url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        assert cli.main(["backup", "--destination", str(tmp_path / "backups")]) == 0
    reason = (
        "NoOpComputeLogManager does not write the compute logs to local files; back up the storage it "
        "writes them to on its own"
    )
    assert f"compute logs: not included ({reason})" in capsys.readouterr().out
    (folder,) = (tmp_path / "backups").iterdir()
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["compute_logs"] == {"included": False, "manager": "NoOpComputeLogManager", "reason": reason}
    assert not any(item["path"].startswith("compute_logs/") for item in manifest["files"])
    messages: list[str] = []
    restore_backup(str(folder), sqlite_home(tmp_path / "restored"), log=messages.append)
    assert "the backup holds no compute logs" in messages

    # A backup with local compute logs, restored into an instance that keeps none locally.
    local = sqlite_home(tmp_path / "local")
    _make_history(local, landing, duckdb_url)
    with dg.DagsterInstance.from_config(str(local)) as instance:
        with_logs = back_up_instance(instance, destination=str(tmp_path / "local_backups"))
    target = sqlite_home(tmp_path / "no_local_logs")
    (target / "dagster.yaml").write_text(NOOP_COMPUTE_LOGS, encoding="utf-8")
    messages = []
    restore_backup(with_logs.location, target, log=messages.append)
    files = with_logs.manifest["compute_logs"]["files"]
    assert files > 0
    assert f"{files} compute-log file(s) not restored: the instance keeps its compute logs with NoOpComputeLogManager" in messages
