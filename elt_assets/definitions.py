"""The code location: assets, checks, jobs, sensors, schedules and resources, assembled."""

import dagster as dg

from elt_assets.assets import warehouse_assets
from elt_assets.assets.landing import landing_specs
from elt_assets.checks.data_tests import build_standalone_checks
from elt_assets.checks.freshness import build_freshness_checks
from elt_assets.jobs import elt_job
from elt_assets.ops import operations_definitions
from elt_assets.resources import landing_zone_from_env, warehouse_from_env
from elt_assets.schedules import elt_daily_schedule
from elt_assets.sensors import landing_zone_sensor

defs = dg.Definitions(
    assets=[*landing_specs, *warehouse_assets],
    asset_checks=[*build_standalone_checks(), *build_freshness_checks()],
    jobs=[elt_job],
    sensors=[landing_zone_sensor],
    schedules=[elt_daily_schedule],
    resources={
        "warehouse": warehouse_from_env(),
        "landing_zone": landing_zone_from_env(),
    },
    # Steps run one after another in the run's process: DuckDB takes one writer per
    # file, and a process per step would add seconds of start-up to every run.
    executor=dg.in_process_executor,
)

# Maintenance jobs, their schedules and the failed-run sensor (elt_assets/ops/).
defs = dg.Definitions.merge(defs, operations_definitions())
