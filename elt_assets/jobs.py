"""Jobs: the whole ELT graph, run as one single-run backfill per date range."""

import dagster as dg

# Every ELT run carries this tag; the instance's run queue lets one such run at a time
# write the warehouse (see run_queue in dagster.yaml), in the order they were requested.
WAREHOUSE_TAG = "elt/warehouse"
WAREHOUSE_TAGS = {WAREHOUSE_TAG: "default"}

# Partitions are inferred from the assets; every asset shares the same daily scheme.
elt_job = dg.define_asset_job(
    name="elt_daily",
    selection=dg.AssetSelection.all(),
    description="Load the landing files and build every model for the selected days.",
    tags=WAREHOUSE_TAGS,
)
