"""One Dagster asset per model of the registry; the SQL decides what the asset does."""

from collections.abc import Iterator

import dagster as dg

from elt_assets import settings
from elt_assets.assets.landing import landing_key, raw_column_lineage
from elt_assets.checks.data_tests import evaluate_model_tests, in_step_check_specs
from elt_assets.checks.freshness import raw_freshness_policy
from elt_assets.engines import WarehouseError, engine_class
from elt_assets.models.lineage import code_references, column_lineage, columns_with_upstream
from elt_assets.models.run import run_model
from elt_assets.models.registry import Model, registry
from elt_assets.partitions import daily_partitions, every_day_up_to, single_run_backfill, window_days
from elt_assets.resources import LandingZoneResource, WarehouseResource

KIND_BY_MATERIALIZATION = {
    "landing": "table",
    "view": "view",
    "ephemeral": "sql",
    "table": "table",
    "incremental": "table",
    "snapshot": "table",
}


def warehouse_kind() -> str:
    """The configured engine's kind, for the assets' kinds (the UI shows its icon)."""
    try:
        return engine_class(settings.warehouse_url_setting() or settings.default_warehouse_url()).kind
    except WarehouseError:
        return "sql"


def model_deps(model: Model) -> list[dg.AssetDep]:
    """The model's upstream assets; a depends-on-past model reads every earlier day of them."""
    mapping = every_day_up_to if model.depends_on_past else None
    return [
        dg.AssetDep(dg.AssetKey([upstream.schema, upstream.name]), partition_mapping=mapping)
        for upstream in registry().upstream(model)
    ]


def build_model_asset(model: Model) -> dg.AssetsDefinition:
    """A daily-partitioned asset keyed [schema, table] that runs the model for its window.

    Its data tests run in the same step, after the write; a failing blocking test fails
    the step, so this run builds nothing downstream of it.
    """
    models = registry()
    deps = model_deps(model)
    landing = model.materialization == "landing"
    if landing and model.source:
        deps.append(landing_key(model))
    lineage = raw_column_lineage(model) if landing and model.source else column_lineage(model.name)

    @dg.asset(
        key=[model.schema, model.name],
        deps=deps,
        description=model.description,
        group_name=model.schema,
        kinds={"sql", warehouse_kind(), KIND_BY_MATERIALIZATION[model.materialization]},
        partitions_def=daily_partitions,
        backfill_policy=single_run_backfill,
        owners=list(model.owners) or None,
        tags={"materialization": model.materialization},
        check_specs=in_step_check_specs(model),
        freshness_policy=raw_freshness_policy() if landing else None,
        metadata={
            "sql_file": dg.MetadataValue.path(str(model.sql_path)),
            "partition_column": model.partition_column or "",
            # Open-source Dagster shows descriptions but draws column lineage only in
            # Dagster+: each description also names the columns it is computed from.
            "dagster/column_schema": columns_with_upstream(model, lineage),
            **({"dagster/column_lineage": lineage} if lineage else {}),
            "dagster/code_references": code_references(model),
        },
    )
    def _model_asset(
        context: dg.AssetExecutionContext,
        warehouse: WarehouseResource,
        landing_zone: LandingZoneResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        first_day, end_day = window_days(context.partition_time_window)
        engine = warehouse.engine()  # resolves any secret once per step
        with landing_zone.open() as zone:
            run = run_model(engine, models, model, first_day, end_day, landing_root=zone)
        for warning in run.warnings:
            context.log.warning(warning)
        context.log.info(
            f"{model.qualified_name} ({model.materialization}): {run.row_count} rows "
            f"for [{first_day}, {end_day})"
        )
        # Each day's own row count and preview go on that partition's materialization;
        # figures of the whole window are named as such.
        for day, values in run.by_day.items():
            context.add_asset_metadata(values, partition_key=day.isoformat())
        yield dg.MaterializeResult(metadata=run.metadata)
        # The write is committed; the tests read what the window now holds, as dbt build
        # tests a model after building it. Dagster fails the step after the last result if
        # a blocking check failed, so nothing downstream of this window runs.
        results = evaluate_model_tests(engine, model, first_day, end_day, set(context.selected_asset_check_keys))
        blocking = [
            f"{result.check_name} ({result.metadata['failing_rows'].value} failing rows)"
            for result in results
            if not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
        ]
        if blocking:
            context.log.error(
                f"{model.qualified_name} for [{first_day}, {end_day}) was written, but its checks "
                f"{', '.join(blocking)} failed: its downstream assets are not built in this run"
            )
        yield from results

    return _model_asset


def build_layer_assets(schema: str) -> list[dg.AssetsDefinition]:
    """The assets of every SQL model of one layer (schema); a python model's asset is its own
    (the readout, in readout.py)."""
    return [build_model_asset(model) for model in registry().in_layer(schema) if model.materialization != "python"]
