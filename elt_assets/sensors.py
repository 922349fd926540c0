"""The landing-zone sensor: runs the ELT for the days whose landing files are new or changed.

Why the sensor requests its own runs rather than leaving it to automation conditions: what
starts work here is a file, identified by its path and fingerprint, not an asset's status;
a change set landing late for day D must rebuild D and every later loaded day although
only partition D of its raw table changes (the point-in-time dimensions read every earlier
day, which the partition mappings do not say); days must wait while `user_event` is
missing; and 90 days landing at once must become one ranged run. Eager conditions would
build downstream partitions as soon as any parent updated, one partition at a time.

Runs are requested in date order and carry the tag `elt/warehouse`, which the instance's
run queue limits to one run at a time, first in first out: a later range reads the
dimensions an earlier one writes, so they must not overlap or swap. (The sensor daemon
submits a tick's runs in order unless `sensors: num_submit_workers` is set; leave it unset.)
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg

from elt_assets.assets import warehouse_assets
from elt_assets.jobs import WAREHOUSE_TAG, WAREHOUSE_TAGS
from elt_assets.landing.load_plan import Digests, LoadRun, landed_digests, plan_loads
from elt_assets.partitions import RANGE_END_TAG, RANGE_START_TAG, daily_partitions, days_in
from elt_assets.resources import LandingZoneResource
from elt_assets.settings import (
    RAW_TABLES,
    landing_sensor_interval_seconds,
    landing_sensor_max_runs,
    landing_sensor_starts_running,
    start_date,
)

CURSOR_VERSION = 1
ALL_ASSETS = warehouse_assets
# A run over a range of partitions is asked for with these two tags; every asset has the
# single-run backfill policy, so the range runs as one run with one step per asset.


def read_cursor(cursor: str | None) -> Digests:
    """The digests seen when runs were last requested; an empty state for no cursor."""
    if not cursor:
        return {}
    state = json.loads(cursor)
    if state.get("version") != CURSOR_VERSION:
        raise ValueError(f"cursor version {state.get('version')} is not {CURSOR_VERSION}")
    return {
        table: {date.fromisoformat(day): digest for day, digest in days.items()}
        for table, days in state["landed"].items()
    }


def write_cursor(seen: Digests) -> str:
    """The compact cursor: one short digest per table and day, days in order."""
    landed = {
        table: {day.isoformat(): seen[table][day] for day in sorted(seen[table])}
        for table in sorted(seen)
        if seen[table]
    }
    return json.dumps({"version": CURSOR_VERSION, "landed": landed}, separators=(",", ":"))


def selected_assets(run: LoadRun) -> list[dg.AssetKey]:
    """The raw tables the run reloads and every model downstream of the tables it rebuilds after."""
    raw = dg.AssetSelection.assets(*(["raw_data", table] for table in run.raw_tables))
    changed = dg.AssetSelection.assets(*(["raw_data", table] for table in run.rebuilt_after))
    selection = raw | (changed.downstream() - dg.AssetSelection.groups("raw_data"))
    return sorted(selection.resolve(ALL_ASSETS), key=lambda key: key.to_user_string())


def run_request(run: LoadRun) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run.run_key,
        asset_selection=selected_assets(run),
        tags={
            **WAREHOUSE_TAGS,
            RANGE_START_TAG: run.first.isoformat(),
            RANGE_END_TAG: run.last.isoformat(),
            "elt/landing": run.summary,
        },
    )


def _failed_event_loads(instance: dg.DagsterInstance, days: list[date]) -> set[date]:
    status = instance.get_status_by_partition(
        dg.AssetKey(["raw_data", "user_event"]), [day.isoformat() for day in days], daily_partitions
    )
    return {
        date.fromisoformat(key)
        for key, value in (status or {}).items()
        if value == dg.AssetPartitionStatus.FAILED
    }


# The assets whose partitions say whether a day was built to the end: a day whose run
# failed (a blocking check, a bad file, a database that went away) is FAILED on them.
_END_OF_THE_LINE = (
    dg.AssetKey(["raw_data", "user_event"]),
    dg.AssetKey(["analytics", "analytics_variant_user_daily"]),
    dg.AssetKey(["analytics", "ab_test_readout"]),
)


def failed_days(instance: dg.DagsterInstance, days: list[date]) -> list[date]:
    """The days whose last run did not build them to the end, as the UI shows them."""
    keys = [day.isoformat() for day in days]
    failed: set[date] = set()
    for asset_key in _END_OF_THE_LINE:
        status = instance.get_status_by_partition(asset_key, keys, daily_partitions) or {}
        failed |= {date.fromisoformat(key) for key, value in status.items() if value == dg.AssetPartitionStatus.FAILED}
    return sorted(failed)


def day_ranges(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days: [(first, last), ...]."""
    spans: list[tuple[date, date]] = []
    for day in sorted(days):
        if spans and (day - spans[-1][1]).days == 1:
            spans[-1] = (spans[-1][0], day)
        else:
            spans.append((day, day))
    return spans


def failed_days_note(days: list[date]) -> str:
    """What a tick says of days whose run failed: they are not retried for the same files."""
    spans = ", ".join(str(first) if first == last else f"{first}..{last}" for first, last in day_ranges(days))
    first, last = days[0], days[-1]
    window = f"--partition {first}" if first == last else f"--partition-range {first}...{last}"
    return (
        f"waiting on a failed run: {spans} (the run page names the failing check or file); "
        "the same files are not loaded again: land corrected files, or fix the cause and rebuild "
        f"with `dagster asset materialize -m elt_assets.definitions --select '*' {window}`"
    )


def _serializes_warehouse_runs(instance: dg.DagsterInstance) -> bool:
    coordinator = instance.run_coordinator
    if not isinstance(coordinator, dg.QueuedRunCoordinator):
        return False
    limits = coordinator.get_run_queue_config().tag_concurrency_limits or []
    return any(limit.get("key") == WAREHOUSE_TAG and limit.get("limit") == 1 for limit in limits)


@dg.sensor(
    name="landing_zone_sensor",
    target=dg.AssetSelection.assets(*ALL_ASSETS),
    minimum_interval_seconds=landing_sensor_interval_seconds(),
    # Stopped until someone turns it on: a new deployment should not start loading
    # whatever sits in a landing zone into a warehouse before a person decides it may.
    default_status=(
        dg.DefaultSensorStatus.RUNNING if landing_sensor_starts_running() else dg.DefaultSensorStatus.STOPPED
    ),
    description=(
        "Loads new and changed landing files: one run per range of days, raw tables and "
        "everything downstream; a late change set also rebuilds every later loaded day."
    ),
)
def landing_zone_sensor(
    context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource
) -> dg.SensorResult:
    """Request the runs that bring the warehouse up to date with the landing zone."""
    try:
        seen = read_cursor(context.cursor)
    except (ValueError, KeyError, TypeError) as error:
        # Starting over is safe: every run key is derived from the files themselves, so
        # work that was already requested is not launched again.
        context.log.warning(f"unreadable cursor ({error}); comparing against an empty state")
        seen = {}
    with landing_zone.open() as zone:
        landed = landed_digests(zone, RAW_TABLES)
    last_key = daily_partitions.get_last_partition_key()
    plan = plan_loads(
        landed,
        seen,
        first_day=start_date(),
        last_day=date.fromisoformat(last_key) if last_key else start_date() - date.resolution,
        failed_loads=lambda days: _failed_event_loads(context.instance, days),
        max_runs=landing_sensor_max_runs(),
    )
    # Days whose run failed and which this tick does not retry (their files are unchanged).
    retried = {day for run in plan.runs for day in days_in(run.first, run.last + date.resolution)}
    landed_days = [
        day
        for day in landed.get("user_event", {})
        if last_key is not None and start_date() <= day <= date.fromisoformat(last_key) and day not in retried
    ]
    stuck = failed_days(context.instance, landed_days) if landed_days else []
    if stuck:
        plan.notes.append(failed_days_note(stuck))
    for note in plan.notes:
        context.log.info(note)
    if plan.runs and not _serializes_warehouse_runs(context.instance):
        context.log.warning(
            f"this instance does not limit runs tagged {WAREHOUSE_TAG} to one at a time: "
            "ranges that read each other's dimensions may overlap (see run_queue in dagster.yaml)"
        )
    for run in plan.runs:
        context.log.info(f"requesting {run.summary} ({run.run_key})")
    skip_reason = None
    if not plan.runs:
        skip_reason = "; ".join(plan.notes) or "no new or changed landing files"
    return dg.SensorResult(
        run_requests=[run_request(run) for run in plan.runs],
        cursor=write_cursor(plan.seen),
        skip_reason=skip_reason,
    )
