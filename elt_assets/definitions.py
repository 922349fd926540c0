"""The code location: assets, jobs and resources, assembled."""

import dagster as dg

from elt_assets.assets.analytics import analytics_assets
from elt_assets.assets.core import core_assets
from elt_assets.assets.raw import raw_assets
from elt_assets.assets.staging import staging_assets
from elt_assets.jobs import elt_job
from elt_assets.ops import operations_definitions
from elt_assets.resources import landing_zone_from_env, warehouse_from_env

defs = dg.Definitions(
    assets=[*raw_assets, *staging_assets, *core_assets, *analytics_assets],
    jobs=[elt_job],
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
