"""Log cleanup: runs whose process died are marked failed, then old finished runs go with
their event and compute logs.

The Dagster counterpart of the lecture's log-cleanup DAG. A run whose process died would
otherwise stay unfinished forever (elt_assets.ops.dead_runs). Everything is read through
bounded queries (`batch_size` rows at a time) and deleted one run at a time, each in its
own short transaction, so that a large backlog never holds the instance's storage locked
while runs and the webserver use it. Two kinds of run are never deleted: runs that are
not finished (queued, starting, in progress, cancelling), and runs that hold the latest
materialization of some asset partition, because the UI, sensors and partition status
read it from there.

Schedule and sensor ticks are not touched here: dagster-daemon purges them after every
tick of a running schedule or sensor, per `retention:` in dagster.yaml, and ticks only
exist where a daemon runs.
"""

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
# No public import path; only locates the per-run event-log files cleaned up below.
from dagster._core.storage.event_log.sqlite import SqliteEventLogStorage

from elt_assets.ops.dead_runs import DEFAULT_SILENT_AFTER_SECONDS, fail_abandoned_runs, find_unfinished_runs
from elt_assets.ops.instance_storage import local_compute_log_root

FINISHED_STATUSES = [
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
]
_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Storage ids per query when mapping latest materializations to their runs.
_STORAGE_ID_CHUNK = 500

Log = Callable[[str], None]
TICKS_NOTE = "schedule/sensor ticks are purged by dagster-daemon per `retention:` in dagster.yaml"


@dataclass
class CleanupReport:
    """What a cleanup deleted (or, in a dry run, would delete)."""

    dry_run: bool
    cutoff: datetime
    runs_deleted: int = 0
    # Unfinished runs that can never finish (their process died, or they fell silent), marked failed.
    abandoned_run_ids: list[str] = field(default_factory=list)
    runs_kept_for_latest_materialization: int = 0
    unfinished_runs_left: int = 0
    compute_log_folders_deleted: int = 0
    compute_log_bytes: int = 0
    event_log_file_bytes: int = 0
    deleted_run_ids: list[str] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return self.compute_log_bytes + self.event_log_file_bytes

    def as_metadata(self) -> dict[str, dg.MetadataValue]:
        return {
            "dry_run": dg.MetadataValue.bool(self.dry_run),
            "cutoff": dg.MetadataValue.text(self.cutoff.isoformat()),
            "runs_deleted": dg.MetadataValue.int(self.runs_deleted),
            "abandoned_runs_marked_failed": dg.MetadataValue.int(len(self.abandoned_run_ids)),
            "runs_kept_for_latest_materialization": dg.MetadataValue.int(
                self.runs_kept_for_latest_materialization
            ),
            "unfinished_runs_left": dg.MetadataValue.int(self.unfinished_runs_left),
            "compute_log_folders_deleted": dg.MetadataValue.int(self.compute_log_folders_deleted),
            "bytes_freed": dg.MetadataValue.int(self.bytes_freed),
            "compute_log_bytes": dg.MetadataValue.int(self.compute_log_bytes),
            "event_log_file_bytes": dg.MetadataValue.int(self.event_log_file_bytes),
            "ticks": dg.MetadataValue.text(TICKS_NOTE),
        }

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        marked = "would mark" if self.dry_run else "marked"
        return (
            f"{marked} {len(self.abandoned_run_ids)} run(s) that can never finish failed; "
            f"{verb} {self.runs_deleted} run(s) created before {self.cutoff:%Y-%m-%d %H:%M} UTC, "
            f"{self.compute_log_folders_deleted} compute-log folder(s), {self.bytes_freed} byte(s) of "
            f"files; kept {self.runs_kept_for_latest_materialization} run(s) holding a latest "
            f"materialization and {self.unfinished_runs_left} unfinished run(s); {TICKS_NOTE}"
        )


def clean_up_instance(
    instance: dg.DagsterInstance,
    max_age_days: int = 30,
    dry_run: bool = False,
    batch_size: int = 100,
    now: datetime | None = None,
    log: Log = logging.getLogger(__name__).info,
    silent_after: float = DEFAULT_SILENT_AFTER_SECONDS,
) -> CleanupReport:
    """Mark runs whose process died failed; delete finished runs (with event and compute
    logs) older than max_age_days."""
    if max_age_days < 0 or batch_size < 1:
        raise ValueError("max_age_days must be >= 0 and batch_size >= 1")
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=max_age_days)
    report = CleanupReport(dry_run=dry_run, cutoff=cutoff)
    # Judged by the clock, like the processes they ran in (`now` only moves the cutoff).
    unfinished = find_unfinished_runs(instance, silent_after)
    report.abandoned_run_ids = fail_abandoned_runs(instance, unfinished, dry_run=dry_run, log=log)
    protected = runs_holding_latest_materializations(instance)
    _delete_old_runs(instance, report, protected, batch_size, log)
    report.unfinished_runs_left = instance.get_runs_count(
        dg.RunsFilter(
            statuses=[status for status in dg.DagsterRunStatus if status not in FINISHED_STATUSES],
            created_before=cutoff,
        )
    )
    _delete_orphaned_compute_logs(instance, report, log)
    log(report.summary())
    return report


def runs_holding_latest_materializations(instance: dg.DagsterInstance) -> set[str]:
    """Ids of the runs that hold the latest materialization of an asset or asset partition."""
    keys = list(instance.get_asset_keys())
    run_ids = {
        entry.run_id
        for entry in instance.get_latest_materialization_events(keys).values()
        if entry is not None
    }
    for key in keys:
        latest = instance.get_latest_storage_id_by_partition(
            key, dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        storage_ids = sorted(set(latest.values()))
        for chunk in _chunks(storage_ids, _STORAGE_ID_CHUNK):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, storage_ids=chunk), limit=len(chunk)
            ).records
            run_ids.update(record.event_log_entry.run_id for record in records)
    return run_ids


def _delete_old_runs(
    instance: dg.DagsterInstance,
    report: CleanupReport,
    protected: set[str],
    batch_size: int,
    log: Log,
) -> None:
    filters = dg.RunsFilter(
        statuses=FINISHED_STATUSES, created_before=report.cutoff, updated_before=report.cutoff
    )
    # Oldest first. The cursor only ever names a run that is still stored (one kept, or
    # any run in a dry run), because the storage resolves it to a row id.
    cursor = None
    while True:
        page = instance.get_runs(filters=filters, cursor=cursor, limit=batch_size, ascending=True)
        for run in page:
            if run.run_id in protected:
                report.runs_kept_for_latest_materialization += 1
                cursor = run.run_id
                continue
            folders, log_bytes = _delete_compute_logs(instance, run.run_id, report.dry_run)
            shard_bytes = _delete_run_and_event_log_file(instance, run.run_id, report.dry_run)
            report.runs_deleted += 1
            report.compute_log_folders_deleted += folders
            report.compute_log_bytes += log_bytes
            report.event_log_file_bytes += shard_bytes
            report.deleted_run_ids.append(run.run_id)
            if report.dry_run:
                log(f"would delete run {run.run_id} ({run.job_name}, {run.status.value})")
                cursor = run.run_id
            else:
                log(f"deleted run {run.run_id} ({run.job_name}, {run.status.value})")
        if len(page) < batch_size:
            return


def _delete_compute_logs(instance: dg.DagsterInstance, run_id: str, dry_run: bool) -> tuple[int, int]:
    """Delete a run's captured stdout/stderr; returns (folders, bytes) (both 0 for cloud managers)."""
    root = local_compute_log_root(instance)
    folder = root / run_id if root is not None else None
    if folder is not None and not folder.is_dir():
        return 0, 0
    size = _tree_size(folder) if folder is not None else 0
    if not dry_run:
        instance.compute_log_manager.delete_logs(prefix=[run_id])
    return (1 if folder is not None else 0), size


def _delete_orphaned_compute_logs(instance: dg.DagsterInstance, report: CleanupReport, log: Log) -> None:
    """Compute-log folders whose run is gone and that are past the cutoff.

    Dagster's own run deletion (UI, `dagster run delete`) leaves a run's compute logs behind.
    """
    root = local_compute_log_root(instance)
    if root is None or not root.is_dir():
        return
    cutoff = report.cutoff.timestamp()
    already = set(report.deleted_run_ids)
    for entry in os.scandir(root):
        if not entry.is_dir() or not _RUN_ID.match(entry.name) or entry.name in already:
            continue
        folder = Path(entry.path)
        if _newest_mtime(folder) >= cutoff or instance.has_run(entry.name):
            continue
        report.compute_log_folders_deleted += 1
        report.compute_log_bytes += _tree_size(folder)
        if report.dry_run:
            log(f"would delete compute logs of the deleted run {entry.name}")
        else:
            instance.compute_log_manager.delete_logs(prefix=[entry.name])
            log(f"deleted compute logs of the deleted run {entry.name}")


def _delete_run_and_event_log_file(instance: dg.DagsterInstance, run_id: str, dry_run: bool) -> int:
    """Delete the run and its events (and, on SQLite, its event-log file); returns bytes of files removed.

    `delete_run` removes the run's rows and events on every storage, but the default
    SQLite storage keeps one database file per run and leaves it behind at full size; no
    public API removes it, so that file is unlinked here.
    """
    storage = instance.event_log_storage
    paths: list[Path] = []
    if isinstance(storage, SqliteEventLogStorage):
        shard = Path(storage.path_for_shard(run_id))
        paths = [shard, shard.with_name(shard.name + "-wal"), shard.with_name(shard.name + "-shm")]
    size = sum(path.stat().st_size for path in paths if path.exists())
    if not dry_run:
        instance.delete_run(run_id)
        for path in paths:
            path.unlink(missing_ok=True)
        if paths:
            # Private, no public reset: the storage remembers which run files it has set up;
            # forget this one, or a later read of the run in this process fails on a missing table.
            getattr(storage, "_initialized_dbs", set()).discard(run_id)
    return size


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _tree_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _newest_mtime(folder: Path) -> float:
    times: Iterable[float] = (path.stat().st_mtime for path in folder.rglob("*"))
    return max(times, default=folder.stat().st_mtime)


class LogCleanupConfig(dg.Config):
    """How much history to keep."""

    max_age_days: int = 30
    dry_run: bool = False
    batch_size: int = 100
    # A run whose process cannot be checked from here is marked failed after this silence.
    silent_run_hours: float = DEFAULT_SILENT_AFTER_SECONDS / 3600


@dg.op(description="Mark runs whose process died failed; delete finished runs and their logs past the retention.")
def clean_up_logs(context: dg.OpExecutionContext, config: LogCleanupConfig) -> int:
    started = time.monotonic()
    report = clean_up_instance(
        context.instance,
        max_age_days=config.max_age_days,
        dry_run=config.dry_run,
        batch_size=config.batch_size,
        log=context.log.info,
        silent_after=config.silent_run_hours * 3600,
    )
    metadata = report.as_metadata()
    metadata["seconds"] = dg.MetadataValue.float(round(time.monotonic() - started, 3))
    context.add_output_metadata(metadata)
    return report.runs_deleted


@dg.job(
    description="Log cleanup: runs whose process died marked failed; runs, event and compute logs past the retention.",
    tags={"elt/maintenance": "cleanup"},
)
def log_cleanup_job():
    clean_up_logs()
