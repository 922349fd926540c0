"""One Dagster asset per model of the registry; the SQL decides what the asset does."""


import dagster as dg

from elt_assets.materialize import run_model
from elt_assets.models import Model, registry
from elt_assets.partitions import daily_partitions, single_run_backfill, window_days
from elt_assets.resources import LandingZoneResource, WarehouseResource

KIND_BY_MATERIALIZATION = {
    "landing": "table",
    "view": "view",
    "ephemeral": "sql",
    "table": "table",
    "incremental": "table",
    "snapshot": "table",
}


def build_model_asset(model: Model) -> dg.AssetsDefinition:
    """A daily-partitioned asset keyed [schema, table] that runs the model for its window."""
    models = registry()
    deps = [dg.AssetKey([upstream.schema, upstream.name]) for upstream in models.upstream(model)]

    @dg.asset(
        key=[model.schema, model.name],
        deps=deps,
        description=model.description,
        group_name=model.schema,
        kinds={"sql", "duckdb", KIND_BY_MATERIALIZATION[model.materialization]},
        partitions_def=daily_partitions,
        backfill_policy=single_run_backfill,
        owners=list(model.owners) or None,
        tags={"materialization": model.materialization},
        metadata={
            "sql_file": dg.MetadataValue.path(str(model.sql_path)),
            "partition_column": model.partition_column or "",
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(name=name, description=text or None)
                    for name, text in model.columns.items()
                ]
            ),
        },
    )
    def _model_asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        landing_zone: LandingZoneResource,
    ) -> dg.MaterializeResult:
        first_day, end_day = window_days(context.partition_time_window)
        with landing_zone.open() as zone:
            run = run_model(warehouse.warehouse(), models, model, first_day, end_day, landing_root=zone)
        context.log.info(
            f"{model.qualified_name} ({model.materialization}): {run.row_count} rows "
            f"for [{first_day}, {end_day})"
        )
        return dg.MaterializeResult(metadata=run.metadata)

    return _model_asset


def build_layer_assets(schema: str) -> list[dg.AssetsDefinition]:
    """The assets of every model of one layer (schema)."""
    return [build_model_asset(model) for model in registry().in_layer(schema)]
