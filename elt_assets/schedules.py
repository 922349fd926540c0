"""The daily schedule: every asset, for the day that just ended, once its files have landed."""

import dagster as dg

from elt_assets.jobs import elt_job

# Daily partitions make this a run for the previous UTC day. It fires at 02:00 rather than
# at midnight to give the day's last files time to land; a day whose user_event has not
# landed by then fails with a message that names the missing file. Stopped by default:
# the landing sensor is the usual trigger, and this is for deployments that prefer a clock.
elt_daily_schedule = dg.build_schedule_from_partitioned_job(
    elt_job,
    name="elt_daily_schedule",
    description="Loads the previous UTC day's landing files and builds every model for it, at 02:00 UTC.",
    hour_of_day=2,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
