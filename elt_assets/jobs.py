"""Jobs: the whole ELT graph, run as one single-run backfill per date range."""

import dagster as dg

# Partitions are inferred from the assets; every asset shares the same daily scheme.
elt_job = dg.define_asset_job(
    name="elt_daily",
    selection=dg.AssetSelection.all(),
    description="Load the landing files and build every model for the selected days.",
    tags={"elt/warehouse": "default"},
)
