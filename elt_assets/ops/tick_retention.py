"""Schedule and sensor ticks past retention, purged in bounded batches."""

from collections.abc import Callable
from datetime import datetime, timedelta

import dagster as dg
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickStatus


def purge_old_ticks(
    instance: dg.DagsterInstance,
    now: datetime,
    max_age_days: int | None,
    batch_size: int,
    dry_run: bool,
    log: Callable[[str], None],
) -> int:
    """Delete schedule and sensor ticks past retention; returns how many (would) go."""
    total = 0
    for state in instance.all_instigator_state():
        if state.instigator_type not in (InstigatorType.SCHEDULE, InstigatorType.SENSOR):
            continue
        if max_age_days is None:
            retention = instance.get_tick_retention_settings(state.instigator_type)
        else:
            retention = {status: max_age_days for status in TickStatus}
        days_to_statuses: dict[int, list[TickStatus]] = {}
        for status, days in retention.items():
            if days >= 0:  # -1: keep forever
                days_to_statuses.setdefault(days, []).append(status)
        for days, statuses in days_to_statuses.items():
            before = (now - timedelta(days=days)).timestamp()
            count = _purge_ticks_in_batches(
                instance, state.instigator_origin_id, state.selector_id, before, statuses, batch_size, dry_run
            )
            if count:
                verb = "would delete" if dry_run else "deleted"
                log(f"{verb} {count} {'/'.join(s.value.lower() for s in statuses)} tick(s) "
                    f"of {state.instigator_type.value.lower()} {state.instigator_name} older than {days} day(s)")
            total += count
    return total


def _purge_ticks_in_batches(
    instance: dg.DagsterInstance,
    origin_id: str,
    selector_id: str,
    before: float,
    statuses: list[TickStatus],
    batch_size: int,
    dry_run: bool,
) -> int:
    # Ticks are listed newest first and purged as "everything older than t", so walk back
    # page by page to find bounds, then purge from the oldest bound forward: every delete
    # then removes about one page of rows.
    bounds = [before]
    count = 0
    while True:
        page = instance.get_ticks(origin_id, selector_id, before=bounds[-1], limit=batch_size, statuses=statuses)
        count += len(page)
        if len(page) < batch_size:
            break
        oldest = page[-1].timestamp
        # `before` is strict: ticks sharing the page's oldest timestamp but cut off by the
        # limit would be skipped by the next page. Count them here (the purge takes them).
        listed = {tick.tick_id for tick in page}
        ties = instance.get_ticks(
            origin_id, selector_id, before=oldest + 0.001, after=oldest - 0.001, statuses=statuses
        )
        count += sum(1 for tick in ties if tick.timestamp == oldest and tick.tick_id not in listed)
        bounds.append(oldest)
    if not dry_run and count:
        for bound in reversed(bounds):
            instance.purge_ticks(origin_id, selector_id, before=bound, tick_statuses=statuses)
    return count
