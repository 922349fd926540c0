"""Nightly maintenance: log cleanup and metadata backup, both stopped until turned on."""

import dagster as dg

from elt_assets.ops.backup import metadata_backup_job
from elt_assets.ops.cleanup import log_cleanup_job

# After the 02:00 ELT run, before people look at the UI; the two never overlap.
log_cleanup_schedule = dg.ScheduleDefinition(
    name="log_cleanup_nightly",
    job=log_cleanup_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Delete runs and their logs older than the retention (30 days unless configured).",
)

metadata_backup_schedule = dg.ScheduleDefinition(
    name="metadata_backup_nightly",
    job=metadata_backup_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Back up the instance's storage and config (ELT_BACKUP_DESTINATION, newest 7 kept).",
)
