"""Restore a metadata backup into an instance: checksums first, an empty instance only.

Stop the daemon and the webserver of the target instance first: the restore replaces
its storage underneath them. The backup's compute logs go into the instance's local
compute-log folder, if it has one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3Resource

from elt_assets.ops.backup_files import MANIFEST, sha256_of
from elt_assets.ops.backup_s3 import S3BackupTarget, resolved_s3_from_env
from elt_assets.ops.instance_storage import (
    InstanceStorageError,
    instance_is_empty,
    local_compute_log_root,
    run_postgres_tool,
    storage_layout,
)


class RestoreError(RuntimeError):
    """The backup cannot be restored; nothing was changed unless the message says so."""


def restore_backup(
    source: str, home: Path, force: bool = False, s3: S3Resource | None = None, log=print
) -> dict:
    """Restore the backup at source (a folder or s3://bucket/prefix/<name>) into the instance in home."""
    if source.startswith("s3://"):
        prefix, _, name = source.rstrip("/").rpartition("/")
        with tempfile.TemporaryDirectory(prefix="elt-restore-") as scratch:
            folder = Path(scratch) / name
            S3BackupTarget(prefix, s3 or resolved_s3_from_env(), "", None).download(name, folder)
            return _restore_folder(folder, home, force, log)
    return _restore_folder(Path(source).expanduser().resolve(), home, force, log)


def verify_backup(folder: Path) -> dict:
    """Read the manifest and check every file's size and sha256; returns the manifest."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise RestoreError(f"{folder} is not a complete backup: it has no {MANIFEST}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for item in manifest["files"]:
        path = folder / item["path"]
        if folder.resolve() not in path.resolve().parents:
            raise RestoreError(f"the manifest names a file outside the backup: {item['path']}")
        if not path.is_file():
            raise RestoreError(f"backup file {item['path']} is missing; nothing was restored")
        if path.stat().st_size != item["bytes"] or sha256_of(path) != item["sha256"]:
            raise RestoreError(f"backup file {item['path']} does not match its checksum; nothing was restored")
    return manifest


def _restore_folder(folder: Path, home: Path, force: bool, log) -> dict:
    manifest = verify_backup(folder)
    log(f"checksums of {len(manifest['files'])} file(s) verified")
    home.mkdir(parents=True, exist_ok=True)
    for name in ("dagster.yaml", "workspace.yaml"):
        saved, target = folder / "config" / name, home / name
        # The target's own config decides where its storage lives: never replace it.
        if saved.is_file() and not target.exists():
            shutil.copyfile(saved, target)
            log(f"restored {name}")
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        layout = storage_layout(instance)
        if layout.kind != manifest["storage"]:
            raise RestoreError(
                f"the backup holds {manifest['storage']} storage but the instance in {home} uses {layout.kind}"
            )
        if not instance_is_empty(instance):
            if not force:
                raise RestoreError(
                    f"the instance in {home} already holds {instance.get_runs_count()} run(s) or asset "
                    "events; restore into an empty instance, or pass --force to replace its storage"
                )
            log("the instance is not empty; replacing its storage (--force)")
        log_root = local_compute_log_root(instance)
        log_copies = _compute_log_copies(folder, manifest, log_root, type(instance.compute_log_manager).__name__, log)
    finally:
        instance.dispose()
    if layout.kind == "postgres":
        _restore_postgres(folder, manifest, layout, log)
    else:
        _restore_sqlite(folder, manifest, layout, log)
    _restore_compute_logs(log_copies, log_root, log)
    return manifest


def _restore_postgres(folder: Path, manifest: dict, layout, log) -> None:
    saved = manifest["databases"]
    if len(saved) != len(layout.databases):
        raise RestoreError(
            f"the backup holds {len(saved)} database(s), the instance uses {len(layout.databases)}"
        )
    for entry, database in zip(saved, layout.databases):
        try:
            run_postgres_tool(
                "pg_restore", database, "--clean", "--if-exists", "--no-owner", "--no-privileges",
                "--single-transaction", "--exit-on-error", str(folder / entry["file"]),
            )
        except InstanceStorageError as error:
            raise RestoreError(f"{error} (the restore ran in one transaction: nothing changed)") from error
        log(f"restored database {database.describe()['database']} from {entry['file']}")


def _restore_sqlite(folder: Path, manifest: dict, layout, log) -> None:
    # Stage every file next to its target first, so that a failed copy leaves the old
    # storage in place; only then swap the databases.
    staged: list[tuple[Path, Path]] = []
    for item in manifest["files"]:
        if not item["path"].startswith("sqlite/"):
            continue
        target = layout.root / item["path"].removeprefix("sqlite/")
        if layout.root not in target.resolve().parents:
            raise RestoreError(f"refusing to write outside DAGSTER_HOME: {item['path']}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".restoring")
        shutil.copyfile(folder / item["path"], partial)
        staged.append((partial, target))
    for directory in layout.sqlite_dirs:
        for pattern in ("*.db", "*.db-wal", "*.db-shm"):
            for stale in directory.glob(pattern):
                stale.unlink()
    for partial, target in staged:
        partial.replace(target)
    log(f"restored {len(staged)} SQLite file(s)")


def _compute_log_copies(folder: Path, manifest: dict, root: Path | None, manager: str, log) -> list[tuple[Path, Path]]:
    """The backup's compute-log files and where they go in this instance (checked before
    anything is restored)."""
    # Backups made before compute logs were backed up have no entry.
    saved = manifest.get("compute_logs", {"included": False})
    if not saved["included"]:
        log("the backup holds no compute logs")
        return []
    prefix = saved["folder"] + "/"
    items = [item["path"] for item in manifest["files"] if item["path"].startswith(prefix)]
    if root is None:
        log(f"{len(items)} compute-log file(s) not restored: the instance keeps its compute logs with {manager}")
        return []
    copies = []
    for path in items:
        target = root / path.removeprefix(prefix)
        if root.resolve() not in target.resolve().parents:
            raise RestoreError(f"refusing to write outside the compute-log folder: {path}")
        copies.append((folder / path, target))
    return copies


def _restore_compute_logs(copies: list[tuple[Path, Path]], root: Path | None, log) -> None:
    for source, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    if copies:
        log(f"restored {len(copies)} compute-log file(s) into {root}")
