"""Metadata backup: the instance's storage, its compute logs and its config, to a folder or to S3.

The Dagster counterpart of the lecture's "back up the Airflow metadata DB to S3" DAG.
A backup is a folder named `dagster-backup-<UTC time>` holding a consistent copy of each
storage database (`pg_dump` for PostgreSQL, SQLite's online backup API for SQLite files),
the runs' captured stdout/stderr when they are local files (the LocalComputeLogManager's
folder, `DAGSTER_HOME/storage` by default), `dagster.yaml` and `workspace.yaml`, and a
`manifest.json` with sizes and sha256 checksums written last: a backup without a manifest
is incomplete and is never used. The manifest's `compute_logs` says whether the compute
logs are in the backup; those kept by a cloud manager (S3, GCS, Azure) are not, and stay
where that manager wrote them. Backups are private to their owner (0600 files, 0700
folders) and, on S3, encrypted at rest by the server. The newest `keep` backups are kept.
"""

import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

from elt_assets.ops.backup_files import BACKUP_PREFIX, MANIFEST, private_dir, private_file, prune_local, sha256_of
from elt_assets.ops.backup_s3 import S3BackupTarget, resolved_s3_from_env
from elt_assets.ops.instance_storage import StorageLayout, local_compute_log_root, run_postgres_tool, storage_layout
from elt_assets.settings import PROJECT_ROOT
from elt_assets import settings

SSE_CHOICES = ("", "AES256", "aws:kms")
COMPUTE_LOGS = "compute_logs"


@dataclass(frozen=True)
class BackupResult:
    """Where a backup went and what it holds."""

    location: str
    manifest: dict
    removed: list[str]


def default_destination(instance: dg.DagsterInstance) -> str:
    """ELT_BACKUP_DESTINATION, else backups/ under DAGSTER_HOME."""
    return settings.backup_destination_setting() or str(Path(instance.root_directory) / "backups")


def back_up_instance(
    instance: dg.DagsterInstance,
    destination: str | None = None,
    keep: int = 7,
    s3: S3Resource | None = None,
    server_side_encryption: str = "AES256",
    kms_key_id: str | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """Write a backup of the instance to a local folder or s3://bucket/prefix; keep the newest `keep`."""
    if keep < 1:
        raise ValueError("keep must be at least 1: a backup job that deletes its own backup is useless")
    if server_side_encryption not in SSE_CHOICES:
        raise ValueError(f"server_side_encryption must be one of {SSE_CHOICES}, not {server_side_encryption!r}")
    destination = destination or default_destination(instance)
    name = BACKUP_PREFIX + (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    layout = storage_layout(instance)
    logs = ComputeLogSource(type(instance.compute_log_manager).__name__, local_compute_log_root(instance))
    if destination.startswith("s3://"):
        with tempfile.TemporaryDirectory(prefix="elt-backup-") as scratch:
            folder = Path(scratch) / name
            manifest = write_backup(layout, folder, name, logs)
            target = S3BackupTarget(destination, s3 or resolved_s3_from_env(), server_side_encryption, kms_key_id)
            location = target.upload(folder, name)
            removed = target.prune(keep)
        return BackupResult(location, manifest, removed)
    root = Path(destination).expanduser().resolve()
    private_dir(root)
    partial = root / f".{name}.partial"
    try:
        manifest = write_backup(layout, partial, name, logs)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    final = root / name
    os.replace(partial, final)
    return BackupResult(str(final), manifest, prune_local(root, keep))


@dataclass(frozen=True)
class ComputeLogSource:
    """The instance's compute-log manager, and its folder when the logs are local files."""

    manager: str
    root: Path | None

    def describe(self, copied: int) -> dict:
        """The manifest's `compute_logs` entry."""
        if self.root is None:
            return {
                "included": False,
                "manager": self.manager,
                "reason": f"{self.manager} does not write the compute logs to local files; back up "
                "the storage it writes them to on its own",
            }
        return {"included": True, "manager": self.manager, "folder": COMPUTE_LOGS, "files": copied}


def write_backup(layout: StorageLayout, folder: Path, name: str, logs: ComputeLogSource) -> dict:
    """Copy the storage, the compute logs and the config into folder and write its
    manifest; returns the manifest."""
    private_dir(folder)
    databases = []
    if layout.kind == "postgres":
        for index, database in enumerate(layout.databases):
            relative = f"postgres/{index}-{database.name}.dump"
            target = folder / relative
            private_dir(target.parent)
            private_file(target)
            # Custom format: compressed, restorable object by object with pg_restore.
            run_postgres_tool("pg_dump", database, "--format=custom", "--no-owner", "--no-privileges", "--file", str(target))
            databases.append({**database.describe(), "file": relative})
    else:
        for source in layout.sqlite_files():
            relative = f"sqlite/{source.relative_to(layout.root).as_posix()}"
            target = folder / relative
            private_dir(target.parent)
            private_file(target)
            if not _sqlite_online_copy(source, target):
                target.unlink()  # the run's file was deleted (cleanup) since it was listed
    copied = _copy_compute_logs(logs.root, folder / COMPUTE_LOGS) if logs.root is not None else 0
    for config_name, source in _config_files(layout.root).items():
        target = folder / "config" / config_name
        private_dir(target.parent)
        private_file(target)
        shutil.copyfile(source, target)
    manifest = {
        "format": 1,
        "name": name,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "dagster_version": dg.__version__,
        "storage": layout.kind,
        "databases": databases,
        "compute_logs": logs.describe(copied),
        "files": [
            {"path": path.relative_to(folder).as_posix(), "bytes": path.stat().st_size, "sha256": sha256_of(path)}
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        ],
    }
    manifest_path = folder / MANIFEST
    private_file(manifest_path)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _copy_compute_logs(root: Path, target: Path) -> int:
    """Copy every file under the compute-log folder; returns how many.

    A running run's log is copied as far as it is written; a file that cleanup deletes
    meanwhile is skipped.
    """
    copied = 0
    if not root.is_dir():
        return 0
    for source in sorted(root.rglob("*")):
        if not source.is_file():
            continue
        destination = target / source.relative_to(root)
        private_dir(destination.parent)
        private_file(destination)
        try:
            shutil.copyfile(source, destination)
        except FileNotFoundError:
            destination.unlink()
            continue
        copied += 1
    return copied


def _config_files(root: Path) -> dict[str, Path]:
    found = {}
    for name in ("dagster.yaml", "workspace.yaml"):
        for folder in (root, PROJECT_ROOT):
            if (folder / name).is_file():
                found[name] = folder / name
                break
    return found


def _sqlite_online_copy(source: Path, target: Path) -> bool:
    """Copy a live SQLite database; False if it no longer exists."""
    # The online backup API copies a consistent snapshot while runs keep writing; a plain
    # file copy of a database in WAL mode can miss or tear recent transactions.
    try:
        # mode=rw: never create an empty database where a file has just been deleted.
        origin = sqlite3.connect(f"{source.as_uri()}?mode=rw", uri=True)
    except sqlite3.OperationalError:
        if source.exists():
            raise
        return False
    try:
        copy = sqlite3.connect(target)
        try:
            origin.backup(copy)
        finally:
            copy.close()
    finally:
        origin.close()
    return True


class BackupConfig(dg.Config):
    """Where backups go and how many are kept."""

    destination: str = ""  # a folder or s3://bucket/prefix; empty: ELT_BACKUP_DESTINATION or DAGSTER_HOME/backups
    keep: int = 7
    server_side_encryption: str = "AES256"  # "", "AES256" or "aws:kms" (S3 only)
    kms_key_id: str | None = None


@dg.op(description="Back up the instance's storage, local compute logs, dagster.yaml and workspace.yaml.")
def back_up_metadata(context: dg.OpExecutionContext, config: BackupConfig, backup_s3: S3Resource) -> str:
    result = back_up_instance(
        context.instance,
        destination=config.destination or None,
        keep=config.keep,
        s3=backup_s3,
        server_side_encryption=config.server_side_encryption,
        kms_key_id=config.kms_key_id,
    )
    files = result.manifest["files"]
    context.log.info(f"backup written to {result.location}; removed old backups: {result.removed or 'none'}")
    context.add_output_metadata(
        {
            "location": dg.MetadataValue.text(result.location),
            "storage": dg.MetadataValue.text(result.manifest["storage"]),
            "compute_logs_included": dg.MetadataValue.bool(result.manifest["compute_logs"]["included"]),
            "files": dg.MetadataValue.int(len(files)),
            "bytes": dg.MetadataValue.int(sum(item["bytes"] for item in files)),
            "removed_backups": dg.MetadataValue.int(len(result.removed)),
        }
    )
    return result.location


@dg.job(description="Metadata backup: the instance's storage, compute logs and config to a folder or S3.",
        tags={"elt/maintenance": "backup"})
def metadata_backup_job():
    back_up_metadata()
