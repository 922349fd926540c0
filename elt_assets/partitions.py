"""The one partitioning scheme every asset shares: UTC days from the start date."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import warnings

import dagster as dg

from elt_assets.settings import start_date

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=start_date().isoformat(),
    timezone="UTC",
)

# A job over assets with mixed backfill policies silently falls back to one run per
# partition, so every partitioned asset takes this same policy.
single_run_backfill = dg.BackfillPolicy.single_run()
# Dagster marks the backfill_policy parameter as beta and warns once per asset; the policy
# is a deliberate choice here, so the warning is silenced for it alone.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`")


# A day of a depends-on-past model reads every earlier day of what it depends on: its
# upstream partitions are all days from the first up to its own (the start offset reaches
# past any first partition; the days before it are left out), and a change to one day of
# the upstream reaches every later day downstream. See elt_assets.models.build_log. The
# parameter is beta in Dagster; the warning is silenced for it alone.
warnings.filterwarnings("ignore", message="Parameter `allow_nonexistent_upstream_partitions`")
every_day_up_to = dg.TimeWindowPartitionMapping(start_offset=-100_000, allow_nonexistent_upstream_partitions=True)


def window_days(window: dg.TimeWindow) -> tuple[date, date]:
    """The [first day, day after the last) bounds of a partition time window."""
    return as_date(window.start), as_date(window.end)


# The run tags Dagster reads a ranged run's first and last partition from.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def days_in(first: date, end: date) -> list[date]:
    """Every day from first up to, not including, end."""
    return [first + timedelta(days=offset) for offset in range((end - first).days)]


def as_date(value: date | datetime) -> date:
    """The day of a date or a datetime (drivers return either for a day column)."""
    return value.date() if isinstance(value, datetime) else value
