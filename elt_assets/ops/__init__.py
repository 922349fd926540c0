"""Operations: log cleanup, metadata backup and restore, health checks, failed-run alerts.

`operations_definitions()` returns their jobs, schedules, sensor and resources, merged
into the code location by definitions.py. A function, not a module-level object: a code
location module may hold only one Definitions object at module scope.
"""

import dagster as dg

from elt_assets.ops.alerts import report_failed_runs
from elt_assets.ops.backup import metadata_backup_job
from elt_assets.resources import s3_from_env
from elt_assets.ops.cleanup import log_cleanup_job
from elt_assets.ops.health import health_check_job
from elt_assets.ops.maintenance_schedules import log_cleanup_schedule, metadata_backup_schedule


def operations_definitions() -> dg.Definitions:
    """The maintenance jobs, their schedules, the failed-run sensor and the backup S3 resource."""
    return dg.Definitions(
        jobs=[log_cleanup_job, metadata_backup_job, health_check_job],
        schedules=[log_cleanup_schedule, metadata_backup_schedule],
        sensors=[report_failed_runs],
        resources={"backup_s3": s3_from_env()},
    )
