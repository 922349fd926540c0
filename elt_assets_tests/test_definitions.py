"""The code location loads, and every asset is daily-partitioned with one backfill policy."""

import dagster as dg

from elt_assets.definitions import defs
from elt_assets.partitions import daily_partitions

EXPECTED_KEYS = {
    ("raw_data", "user_event"),
    ("raw_data", "user_variant"),
    ("raw_data", "user_metadata"),
    ("staging", "src_user_event"),
    ("staging", "src_user_variant"),
    ("staging", "src_user_metadata"),
    ("core", "dim_user_variant"),
    ("core", "dim_user_metadata"),
    ("core", "fact_user_event"),
    ("core", "dim_user"),
    ("analytics", "analytics_variant_user_daily"),
    ("analytics", "ab_test_readout"),
}


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_model_is_an_asset_keyed_by_schema_and_table():
    keys = {tuple(key.path) for key in defs.resolve_asset_graph().materializable_asset_keys}
    assert keys == EXPECTED_KEYS


def test_the_landing_files_are_external_assets_upstream_of_the_raw_tables():
    graph = defs.resolve_asset_graph()
    external = set(graph.get_all_asset_keys()) - set(graph.materializable_asset_keys)
    assert {tuple(key.path) for key in external} == {
        ("landing", "user_event"),
        ("landing", "user_variant"),
        ("landing", "user_metadata"),
    }
    for table in ("user_event", "user_variant", "user_metadata"):
        parents = graph.get(dg.AssetKey(["raw_data", table])).parent_keys
        assert parents == {dg.AssetKey(["landing", table])}


def test_every_asset_is_daily_partitioned_with_a_single_run_backfill():
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.partitions_def == daily_partitions, key
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), key
    assert daily_partitions.get_first_partition_key() == "2023-06-01"
    assert daily_partitions.timezone == "UTC"


def test_lineage_follows_the_lecture():
    graph = defs.resolve_asset_graph()

    def parents(schema, table):
        return {tuple(key.path) for key in graph.get(dg.AssetKey([schema, table])).parent_keys}

    assert parents("staging", "src_user_event") == {("raw_data", "user_event")}
    assert parents("core", "fact_user_event") == {("staging", "src_user_event")}
    assert parents("core", "dim_user") == {("core", "dim_user_variant"), ("core", "dim_user_metadata")}
    assert parents("analytics", "analytics_variant_user_daily") == {
        ("core", "dim_user"),
        ("core", "fact_user_event"),
    }


def test_assets_describe_their_rows_and_columns():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and "row" in node.description.lower(), key
        schema = node.metadata["dagster/column_schema"]
        assert schema.columns, key
