"""The project's asset graph with every computation taken out: Dagster's own cost.

Same asset keys, dependencies, partitions, backfill policy, check specs and executor as
elt_assets.definitions, but each step only reports success: every asset materialization
and check evaluation is recorded as in a real run, and nothing touches a warehouse. A
backfill of this graph is what the run would cost if the SQL were free.

    DAGSTER_MODULE_NAME=noop_definitions PYTHONPATH=bench dagster asset materialize --select '*' ...
"""

import dagster as dg

from elt_assets import definitions as project


def _noop_asset(assets_def: dg.AssetsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"noop_{assets_def.node_def.name}",
        specs=[spec.replace_attributes(partitions_def=None) for spec in assets_def.specs],
        check_specs=list(assets_def.check_specs),
        partitions_def=assets_def.partitions_def,
        backfill_policy=assets_def.backfill_policy,
        can_subset=True,
    )
    def _step(context: dg.AssetExecutionContext):
        for key in sorted(context.selected_asset_keys, key=str):
            yield dg.MaterializeResult(asset_key=key)
        for check in sorted(context.selected_asset_check_keys, key=str):
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    return _step


def _noop_checks(checks_def: dg.AssetChecksDefinition) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name=f"noop_{checks_def.node_def.name}",
        specs=list(checks_def.check_specs),
        can_subset=True,
    )
    def _step(context: dg.AssetCheckExecutionContext):
        for check in sorted(context.selected_asset_check_keys, key=str):
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    return _step


_graph = project.defs.resolve_asset_graph()
defs = dg.Definitions(
    assets=[
        _noop_asset(assets_def) if assets_def.is_executable else assets_def
        for assets_def in _graph.assets_defs
        if not isinstance(assets_def, dg.AssetChecksDefinition)
    ],
    asset_checks=[
        _noop_checks(checks_def)
        for checks_def in _graph.assets_defs
        if isinstance(checks_def, dg.AssetChecksDefinition)
    ],
    executor=dg.in_process_executor,
)
