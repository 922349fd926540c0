"""Log cleanup on SQLite and PostgreSQL instance storage: what goes, what stays, dry runs,
and unfinished runs that can never finish.

Schedule and sensor ticks are dagster-daemon's to purge (per `retention:`), not cleanup's.
A real run killed with SIGKILL is in test_reliability.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import dagster as dg
# Private: a queued run needs a code-location origin, and no public API builds one.
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin

from elt_assets.ops.cleanup import clean_up_instance, log_cleanup_job
from elt_assets_tests.ops_fixtures import backdate_run, instance_home  # noqa: F401 (fixture)
from elt_assets_tests.support import run_elt

USER_EVENT = dg.AssetKey(["raw_data", "user_event"])
DAY = 86400.0
REPOSITORY = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("elt_assets"), "__repository__")


def _add_run(instance, status):
    """A run record in the given status, as the webserver or a sensor would have stored it."""
    run = dg.DagsterRun(
        job_name="elt_daily",
        run_id=str(uuid.uuid4()),
        status=status,
        remote_job_origin=RemoteJobOrigin(REPOSITORY, "elt_daily"),
    )
    return instance.add_run(run).run_id


def _load_user_event(landing, duckdb_url, instance, day):
    result = run_elt(landing, duckdb_url, day, selection="key:raw_data/user_event", instance=instance)
    assert result.success
    return result.run_id


def _sqlite_event_log_file(instance, run_id):
    """The run's own event-log database on the embedded SQLite storage, else None."""
    path = Path(instance.root_directory) / "history" / "runs" / f"{run_id}.db"
    return path if path.exists() else None


def _compute_log_folder(instance, run_id):
    root = os.path.dirname(instance.compute_log_manager.get_captured_local_path(["probe"], "out"))
    return os.path.join(root, run_id)


def test_cleanup_keeps_latest_materializations_and_unfinished_runs(instance_home, landing, duckdb_url):
    now = time.time()
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        superseded = _load_user_event(landing, duckdb_url, instance, "2023-06-01")
        latest_old = _load_user_event(landing, duckdb_url, instance, "2023-06-01")
        recent = _load_user_event(landing, duckdb_url, instance, "2023-06-02")
        failed = _add_run(instance, dg.DagsterRunStatus.FAILURE)
        queued = _add_run(instance, dg.DagsterRunStatus.QUEUED)
        # Started 45 days ago and never heard of since: it records no process to check,
        # and it has been silent far past the limit (6 hours).
        started = _add_run(instance, dg.DagsterRunStatus.STARTED)
        # Started just now, no process recorded yet: left alone.
        starting_now = _add_run(instance, dg.DagsterRunStatus.STARTED)
        for run_id in (superseded, latest_old, failed, queued, started):
            backdate_run(instance, run_id, days=45)
        # Compute logs left behind by a run deleted long ago (e.g. from the UI).
        orphan = _compute_log_folder(instance, str(uuid.uuid4()))
        os.makedirs(os.path.join(orphan, "compute_logs"))
        with open(os.path.join(orphan, "compute_logs", "x.out"), "w") as handle:
            handle.write("old output\n" * 100)
        for path in (os.path.join(orphan, "compute_logs", "x.out"), os.path.join(orphan, "compute_logs"), orphan):
            os.utime(path, (now - 60 * DAY, now - 60 * DAY))
        assert os.path.isdir(_compute_log_folder(instance, superseded))
        runs_before = {run.run_id for run in instance.get_runs()}

        dry = clean_up_instance(instance, max_age_days=30, dry_run=True, batch_size=2)
        assert dry.deleted_run_ids == [superseded, failed]
        assert dry.abandoned_run_ids == [started]
        assert dry.runs_kept_for_latest_materialization == 1
        assert dry.unfinished_runs_left == 2
        assert dry.compute_log_folders_deleted == 2 and dry.compute_log_bytes > 1100
        # The SQLite storage keeps one database file per run, which delete_run leaves behind.
        shard = _sqlite_event_log_file(instance, superseded)
        assert (dry.event_log_file_bytes > 0) == (shard is not None)
        assert "dagster-daemon" in dry.summary()
        assert {run.run_id for run in instance.get_runs()} == runs_before
        assert os.path.isdir(orphan) and os.path.isdir(_compute_log_folder(instance, superseded))

        result = log_cleanup_job.execute_in_process(
            instance=instance,
            run_config={"ops": {"clean_up_logs": {"config": {"max_age_days": 30, "batch_size": 2}}}},
        )
        assert result.success
        assert result.output_for_node("clean_up_logs") == 2
        metadata = _output_metadata(result)
        assert metadata["runs_deleted"].value == 2
        assert metadata["abandoned_runs_marked_failed"].value == 1
        assert metadata["bytes_freed"].value == dry.bytes_freed
        assert metadata["dry_run"].value is False
        # Failed now, the silent run is kept until it is as old as the retention.
        assert instance.get_run_by_id(started).status == dg.DagsterRunStatus.FAILURE
        (failure,) = instance.all_logs(started, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "no process recorded yet; last event 1080.0 h ago (limit 6.0 h)" in failure.message
        assert instance.get_run_by_id(starting_now).status == dg.DagsterRunStatus.STARTED
        assert instance.get_run_by_id(queued).status == dg.DagsterRunStatus.QUEUED

        remaining = {run.run_id for run in instance.get_runs()}
        assert remaining == runs_before - {superseded, failed} | {result.run_id}
        assert shard is None or not any(shard.parent.glob(shard.name + "*"))
        # Read in the same process after its SQLite file went: empty, not an error.
        assert instance.get_records_for_run(superseded).records == []
        assert not os.path.exists(_compute_log_folder(instance, superseded))
        assert not os.path.exists(orphan)
        assert os.path.isdir(_compute_log_folder(instance, latest_old))
        assert os.path.isdir(_compute_log_folder(instance, recent))
        # Every partition still shows its latest materialization, from the run that made it.
        latest = instance.get_latest_storage_id_by_partition(
            USER_EVENT, dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        assert set(latest) == {"2023-06-01", "2023-06-02"}
        assert instance.get_materialized_partitions(USER_EVENT) == {"2023-06-01", "2023-06-02"}

        # A second pass finds nothing more.
        again = clean_up_instance(instance, max_age_days=30)
        assert again.runs_deleted == 0 and again.compute_log_folders_deleted == 0
        assert again.abandoned_run_ids == []


def _output_metadata(result: dg.ExecuteInProcessResult) -> dict:
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            return dict(event.event_specific_data.metadata)
    raise AssertionError("no step output")


def test_cleanup_pages_through_a_backlog_in_small_batches(tmp_path):
    """More old runs than one batch: every old run goes, in bounded queries."""
    from elt_assets_tests.ops_fixtures import sqlite_home

    with dg.DagsterInstance.from_config(str(sqlite_home(tmp_path / "home"))) as instance:
        old_runs = []
        for _ in range(7):
            run_id = _add_run(instance, dg.DagsterRunStatus.SUCCESS)
            backdate_run(instance, run_id, days=31)
            old_runs.append(run_id)
        report = clean_up_instance(instance, max_age_days=30, batch_size=3)
        assert sorted(report.deleted_run_ids) == sorted(old_runs)
        assert instance.get_runs_count() == 0
