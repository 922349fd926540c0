"""The daily schedule: every asset, for the previous UTC day, stopped until turned on."""

from datetime import datetime, timezone

import dagster as dg

from elt_assets.definitions import defs


def test_the_schedule_runs_every_asset_for_the_previous_day_at_two():
    schedule = defs.resolve_schedule_def("elt_daily_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "elt_daily"
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2023, 6, 15, 2, 0, tzinfo=timezone.utc)
        )
        requests = schedule.evaluate_tick(context).run_requests
    assert [request.partition_key for request in requests] == ["2023-06-14"]


def test_the_scheduled_job_covers_every_asset_and_queues_per_warehouse():
    job = defs.resolve_job_def("elt_daily")
    graph = defs.resolve_asset_graph()
    assert job.asset_layer.executable_asset_keys == set(graph.materializable_asset_keys)
    assert job.tags["elt/warehouse"] == "default"
