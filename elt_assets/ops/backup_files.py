"""The layout of a backup folder: its name, its manifest, private files, retention."""

import hashlib
import os
import shutil
from pathlib import Path

BACKUP_PREFIX = "dagster-backup-"
MANIFEST = "manifest.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def private_dir(path: Path) -> None:
    """Create path and any missing parents with mode 0700 (mkdir's parents ignore `mode`)."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)
    path.chmod(0o700)


def private_file(path: Path) -> None:
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
