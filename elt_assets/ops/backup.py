"""Metadata backup: the instance's storage and its config, to a folder or to S3.

The Dagster counterpart of the lecture's "back up the Airflow metadata DB to S3" DAG.
A backup is a folder named `dagster-backup-<UTC time>` holding a consistent copy of each
storage database (`pg_dump` for PostgreSQL, SQLite's online backup API for SQLite files),
`dagster.yaml` and `workspace.yaml`, and a `manifest.json` with sizes and sha256
checksums written last: a backup without a manifest is incomplete and is never used.
Backups are private to their owner (0600 files, 0700 folders) and, on S3, encrypted at
rest by the server. The newest `keep` backups are kept.
"""


import hashlib
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

from elt_assets.ops.instance_storage import StorageLayout, run_postgres_tool, storage_layout
from elt_assets.settings import PROJECT_ROOT

BACKUP_PREFIX = "dagster-backup-"
MANIFEST = "manifest.json"
SSE_CHOICES = ("", "AES256", "aws:kms")


@dataclass(frozen=True)
class BackupResult:
    """Where a backup went and what it holds."""

    location: str
    manifest: dict
    removed: list[str]


def default_destination(instance: dg.DagsterInstance) -> str:
    """ELT_BACKUP_DESTINATION, else backups/ under DAGSTER_HOME."""
    return os.environ.get("ELT_BACKUP_DESTINATION") or str(Path(instance.root_directory) / "backups")


def s3_from_env() -> S3Resource:
    """dagster-aws's S3 resource; endpoint and region from ELT_S3_ENDPOINT_URL / ELT_S3_REGION."""
    settings = {}
    if os.environ.get("ELT_S3_ENDPOINT_URL"):
        settings["endpoint_url"] = dg.EnvVar("ELT_S3_ENDPOINT_URL")
    if os.environ.get("ELT_S3_REGION"):
        settings["region_name"] = dg.EnvVar("ELT_S3_REGION")
    return S3Resource(**settings)


def resolved_s3_from_env() -> S3Resource:
    """The same resource with its EnvVars read now, for use outside a run (the CLI)."""
    return s3_from_env().process_config_and_initialize()


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
    if destination.startswith("s3://"):
        with tempfile.TemporaryDirectory(prefix="elt-backup-") as scratch:
            folder = Path(scratch) / name
            manifest = write_backup(layout, folder, name)
            target = S3BackupTarget(destination, s3 or resolved_s3_from_env(), server_side_encryption, kms_key_id)
            location = target.upload(folder, name)
            removed = target.prune(keep)
        return BackupResult(location, manifest, removed)
    root = Path(destination).expanduser().resolve()
    _private_dir(root)
    partial = root / f".{name}.partial"
    manifest = write_backup(layout, partial, name)
    final = root / name
    os.replace(partial, final)
    return BackupResult(str(final), manifest, prune_local(root, keep))


def write_backup(layout: StorageLayout, folder: Path, name: str) -> dict:
    """Copy the storage and config into folder and write its manifest; returns the manifest."""
    _private_dir(folder)
    databases = []
    if layout.kind == "postgres":
        for index, database in enumerate(layout.databases):
            relative = f"postgres/{index}-{database.name}.dump"
            target = folder / relative
            _private_dir(target.parent)
            _private_file(target)
            # Custom format: compressed, restorable object by object with pg_restore.
            run_postgres_tool("pg_dump", database, "--format=custom", "--no-owner", "--no-privileges", "--file", str(target))
            databases.append({**database.describe(), "file": relative})
    else:
        for source in layout.sqlite_files():
            relative = f"sqlite/{source.relative_to(layout.root).as_posix()}"
            target = folder / relative
            _private_dir(target.parent)
            _private_file(target)
            if not _sqlite_online_copy(source, target):
                target.unlink()  # the run's file was deleted (cleanup) since it was listed
    for config_name, source in _config_files(layout.root).items():
        target = folder / "config" / config_name
        _private_dir(target.parent)
        _private_file(target)
        shutil.copyfile(source, target)
    manifest = {
        "format": 1,
        "name": name,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "dagster_version": dg.__version__,
        "storage": layout.kind,
        "databases": databases,
        "files": [
            {"path": path.relative_to(folder).as_posix(), "bytes": path.stat().st_size, "sha256": sha256_of(path)}
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        ],
    }
    manifest_path = folder / MANIFEST
    _private_file(manifest_path)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _private_dir(path: Path) -> None:
    """Create path and any missing parents with mode 0700 (mkdir's parents ignore `mode`)."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)
    path.chmod(0o700)


def _private_file(path: Path) -> None:
    """Create path empty with mode 0600 before anything writes into it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(descriptor)
    path.chmod(0o600)


def prune_local(root: Path, keep: int) -> list[str]:
    """Delete all but the newest `keep` complete backups in root; returns the names removed."""
    complete = sorted(
        path for path in root.iterdir()
        if path.is_dir() and path.name.startswith(BACKUP_PREFIX) and (path / MANIFEST).is_file()
    )
    doomed = complete[:-keep]
    for path in doomed:
        shutil.rmtree(path)
    return [path.name for path in doomed]


class S3BackupTarget:
    """s3://bucket/prefix: uploads with server-side encryption, lists and prunes backups."""

    def __init__(self, url: str, s3: S3Resource, server_side_encryption: str, kms_key_id: str | None):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"{url!r} names no bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = s3.get_client()
        self.extra_args: dict[str, str] = {}
        if server_side_encryption:
            self.extra_args["ServerSideEncryption"] = server_side_encryption
        if server_side_encryption == "aws:kms" and kms_key_id:
            self.extra_args["SSEKMSKeyId"] = kms_key_id

    def upload(self, folder: Path, name: str) -> str:
        files = sorted(path for path in folder.rglob("*") if path.is_file() and path.name != MANIFEST)
        # The manifest goes last: its presence marks the backup complete.
        for path in [*files, folder / MANIFEST]:
            key = f"{self.prefix}{name}/{path.relative_to(folder).as_posix()}"
            self.client.upload_file(str(path), self.bucket, key, ExtraArgs=self.extra_args)
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def backup_names(self) -> list[str]:
        """Names of the complete backups under the prefix, oldest first."""
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + BACKUP_PREFIX):
            for item in page.get("Contents", []):
                name, _, rest = item["Key"][len(self.prefix):].partition("/")
                if rest == MANIFEST:
                    names.append(name)
        return sorted(names)

    def prune(self, keep: int) -> list[str]:
        doomed = self.backup_names()[:-keep]
        for name in doomed:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{name}/"):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
        return doomed

    def download(self, name: str, folder: Path) -> None:
        """Fetch one backup into folder (private, like a local backup)."""
        _private_dir(folder)
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{name}/"):
            for item in page.get("Contents", []):
                relative = item["Key"][len(f"{self.prefix}{name}/"):]
                target = folder / relative
                if folder.resolve() not in target.resolve().parents:
                    raise ValueError(f"refusing object key outside the backup: {item['Key']}")
                _private_dir(target.parent)
                _private_file(target)
                self.client.download_file(self.bucket, item["Key"], str(target))


class BackupConfig(dg.Config):
    """Where backups go and how many are kept."""

    destination: str = ""  # a folder or s3://bucket/prefix; empty: ELT_BACKUP_DESTINATION or DAGSTER_HOME/backups
    keep: int = 7
    server_side_encryption: str = "AES256"  # "", "AES256" or "aws:kms" (S3 only)
    kms_key_id: str | None = None


@dg.op(description="Back up the instance's storage, dagster.yaml and workspace.yaml.")
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
            "files": dg.MetadataValue.int(len(files)),
            "bytes": dg.MetadataValue.int(sum(item["bytes"] for item in files)),
            "removed_backups": dg.MetadataValue.int(len(result.removed)),
        }
    )
    return result.location


@dg.job(description="Metadata backup: the instance's storage and config to a folder or S3.",
        tags={"elt/maintenance": "backup"})
def metadata_backup_job():
    back_up_metadata()
