"""Where a Dagster instance keeps its runs, events and ticks (SQLite files or PostgreSQL),
and its captured stdout/stderr (the compute logs).

Backup, restore, cleanup and the health check need the same answers, read from the
instance's storage objects rather than guessed from dagster.yaml, so that every way of
configuring storage (`storage: sqlite`, `storage: postgres`, the legacy per-storage keys)
is covered.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
# No public import path; only used to tell local compute logs from cloud ones.
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

from elt_assets import settings


class InstanceStorageError(RuntimeError):
    """The instance's storage cannot be backed up or restored as asked; the message says why."""


@dataclass(frozen=True)
class PostgresDatabase:
    """One PostgreSQL database of the instance. `url` holds credentials: never log it."""

    url: str

    @property
    def name(self) -> str:
        return sa.make_url(self.url).database or "postgres"

    def describe(self) -> dict:
        """Host, port and database: what a manifest or a log line may show."""
        url = sa.make_url(self.url)
        return {"host": url.host or "localhost", "port": url.port or 5432, "database": self.name}

    def client_args_and_env(self) -> tuple[list[str], dict[str, str]]:
        """libpq connection arguments; the password travels in the environment, not argv."""
        url = sa.make_url(self.url)
        args = ["-h", url.host or "localhost", "-p", str(url.port or 5432), "-d", self.name]
        if url.username:
            args += ["-U", url.username]
        environment = dict(os.environ)
        if url.password:
            environment["PGPASSWORD"] = url.password
        if url.query.get("sslmode"):
            environment["PGSSLMODE"] = str(url.query["sslmode"])
        return args, environment


@dataclass(frozen=True)
class StorageLayout:
    """The instance's storage: its kind, and its SQLite files or PostgreSQL databases."""

    kind: str  # "sqlite" or "postgres"
    root: Path
    sqlite_dirs: tuple[Path, ...] = ()
    databases: tuple[PostgresDatabase, ...] = ()

    def sqlite_files(self) -> list[Path]:
        """Every SQLite database file of the instance (event logs first, runs last)."""
        files: list[Path] = []
        for folder in self.sqlite_dirs:
            files += sorted(Path(path) for path in glob.glob(str(folder / "*.db")))
        return files


def storage_layout(instance: dg.DagsterInstance) -> StorageLayout:
    """Describe the instance's run, event-log and schedule storage."""
    root = Path(instance.root_directory).resolve()
    storages = [instance.event_log_storage, instance.schedule_storage, instance.run_storage]
    urls = [getattr(storage, "postgres_url", None) for storage in storages]
    if all(urls):
        distinct = list(dict.fromkeys(urls))
        return StorageLayout("postgres", root, databases=tuple(PostgresDatabase(url) for url in distinct))
    if any(urls):
        raise InstanceStorageError(
            "the instance mixes PostgreSQL and other storage; back up each storage with its own tools"
        )
    folders = []
    for storage in storages:
        folder = _sqlite_folder(storage)
        if folder is None:
            raise InstanceStorageError(
                f"unsupported instance storage {type(storage).__name__}: only SQLite and PostgreSQL"
            )
        if root not in (folder, *folder.parents):
            raise InstanceStorageError(f"SQLite storage {folder} is outside DAGSTER_HOME {root}")
        folders.append(folder)
    return StorageLayout("sqlite", root, sqlite_dirs=tuple(dict.fromkeys(folders)))


def _sqlite_folder(storage: object) -> Path | None:
    # Private attributes: no public API says where a SQLite storage keeps its files.
    base_dir = getattr(storage, "_base_dir", None)
    if base_dir:
        return Path(base_dir).resolve()
    conn_string = getattr(storage, "_conn_string", None)
    if conn_string and conn_string.startswith("sqlite"):
        return Path(sa.make_url(conn_string).database).resolve().parent
    return None


def local_compute_log_root(instance: dg.DagsterInstance) -> Path | None:
    """The folder of the instance's compute logs (one subfolder per run), or None when
    they are not local files (S3, GCS, Azure, or no capture)."""
    manager = instance.compute_log_manager
    if not isinstance(manager, LocalComputeLogManager):
        return None
    # The manager keeps its folder private; a one-part log key resolves to a file in it.
    return Path(manager.get_captured_local_path(["probe"], "out")).parent


def postgres_tool(name: str) -> str:
    """Path of pg_dump / pg_restore: ELT_PG_BIN_DIR, the newest server package, or PATH.

    pg_dump refuses servers newer than itself, so the newest installed one is preferred.
    """
    configured = settings.pg_bin_dir_setting()
    candidates = [configured] if configured else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for folder in candidates:
        path = Path(folder) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    raise InstanceStorageError(f"{name} not found: install PostgreSQL's client tools or set ELT_PG_BIN_DIR")


def _version_key(folder: str) -> tuple[int, ...]:
    version = Path(folder).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def run_postgres_tool(name: str, database: PostgresDatabase, *args: str) -> None:
    """Run pg_dump or pg_restore against the database; raise with its stderr on failure."""
    connection_args, environment = database.client_args_and_env()
    command = [postgres_tool(name), *connection_args, *args]
    completed = subprocess.run(command, env=environment, capture_output=True, text=True)
    if completed.returncode != 0:
        where = database.describe()
        raise InstanceStorageError(
            f"{name} failed for database {where['database']} on {where['host']}:{where['port']}: "
            f"{completed.stderr.strip()[-2000:]}"
        )


def instance_is_empty(instance: dg.DagsterInstance) -> bool:
    """True if the instance holds no runs and no asset events."""
    return instance.get_runs_count() == 0 and not instance.get_asset_keys(limit=1)
