"""The landing files each raw table is loaded from, as external assets upstream of it.

Dagster does not build these; they document where a raw table's rows come from (path
pattern, formats, columns) and give the raw tables a visible upstream in the lineage.
"""

import dagster as dg

from elt_assets.models.lineage import code_references
from elt_assets.models.registry import Model, registry
from elt_assets.partitions import daily_partitions
from elt_assets.landing.raw_load import BOOKKEEPING_COLUMNS, TABLES_REQUIRED_EVERY_DAY

LANDING_GROUP = "landing"


def landing_key(model: Model) -> dg.AssetKey:
    """[landing, <table>]: the landing files of a raw table."""
    return dg.AssetKey([LANDING_GROUP, model.name])


def landing_spec(model: Model) -> dg.AssetSpec:
    """The landing files of one raw table: one file (or folder of part files) per day."""
    source = model.source
    every_day = model.name in TABLES_REQUIRED_EVERY_DAY
    return dg.AssetSpec(
        key=landing_key(model),
        description=(
            f"{source.get('description', '').strip()} Each row of a file becomes one row of "
            f"{model.qualified_name}. "
            + ("A file must land every day." if every_day else "A day without a file has no changes.")
        ).strip(),
        group_name=LANDING_GROUP,
        kinds=set(source.get("formats") or ["csv"]),
        partitions_def=daily_partitions,
        owners=list(model.owners) or None,
        metadata={
            "path_pattern": dg.MetadataValue.text(f"$ELT_LANDING_DIR/{source.get('path_pattern', '')}"),
            "formats": dg.MetadataValue.text(", ".join(source.get("formats") or ["csv"])),
            "required_every_day": dg.MetadataValue.bool(every_day),
            "dagster/code_references": code_references(model, source=True),
            "dagster/column_schema": dg.TableSchema(
                columns=[
                    dg.TableColumn(name=name, description=text or None)
                    for name, text in model.columns.items()
                    if name not in BOOKKEEPING_COLUMNS
                ]
            ),
        },
    )


def raw_column_lineage(model: Model) -> dg.TableColumnLineage:
    """A raw table's columns come from the same-named columns of its landing files."""
    return dg.TableColumnLineage(
        deps_by_column={
            name: [dg.TableColumnDep(asset_key=landing_key(model), column_name=name)]
            for name in model.columns
            if name not in BOOKKEEPING_COLUMNS
        }
    )


landing_specs = [landing_spec(model) for model in registry().in_layer("raw_data") if model.source]
