"""The operations jobs, schedules and sensor are part of the code location."""

import dagster as dg

from elt_assets.definitions import defs


def test_operations_are_wired_into_the_code_location():
    dg.Definitions.validate_loadable(defs)
    jobs = {job.name for job in defs.resolve_all_job_defs()}
    assert {"log_cleanup_job", "metadata_backup_job", "health_check_job", "elt_daily"} <= jobs
    schedules = {schedule.name: schedule for schedule in defs.schedules}
    assert schedules["log_cleanup_nightly"].job_name == "log_cleanup_job"
    assert schedules["metadata_backup_nightly"].job_name == "metadata_backup_job"
    for schedule in schedules.values():
        if schedule.name in ("log_cleanup_nightly", "metadata_backup_nightly"):
            assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
            assert schedule.execution_timezone == "UTC"
    sensor = next(sensor for sensor in defs.sensors if sensor.name == "report_failed_runs")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_the_cleanup_job_defaults_to_thirty_days_and_deletes_for_real():
    config = defs.resolve_job_def("log_cleanup_job").run_config_schema.config_type
    fields = config.fields["ops"].config_type.fields["clean_up_logs"].config_type.fields["config"].config_type.fields
    assert fields["max_age_days"].default_value == 30
    assert fields["dry_run"].default_value is False
