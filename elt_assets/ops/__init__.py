"""Operations: log cleanup, metadata backup and restore, health checks, failed-run alerts.

`ops_defs` holds their jobs, schedules, sensor and resources, merged into the code
location by definitions.py.
"""

import dagster as dg

from elt_assets.ops.alerts import report_failed_runs
from elt_assets.ops.backup import metadata_backup_job, s3_from_env
from elt_assets.ops.cleanup import log_cleanup_job
from elt_assets.ops.health import health_check_job
from elt_assets.ops.maintenance_schedules import log_cleanup_schedule, metadata_backup_schedule

ops_defs = dg.Definitions(
    jobs=[log_cleanup_job, metadata_backup_job, health_check_job],
    schedules=[log_cleanup_schedule, metadata_backup_schedule],
    sensors=[report_failed_runs],
    resources={"backup_s3": s3_from_env()},
)
