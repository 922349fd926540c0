"""The asset pages are the documentation: descriptions, column schemas with types, column
lineage, owners, landing sources, freshness and check descriptions."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from elt_assets.definitions import defs
from elt_assets.models.lineage import output_columns
from elt_assets.models.registry import registry

GRAPH = defs.resolve_asset_graph()
FACT = dg.AssetKey(["core", "fact_user_event"])
ANALYTICS = dg.AssetKey(["analytics", "analytics_variant_user_daily"])


def lineage_of(key: dg.AssetKey) -> dict[str, set[tuple[str, str]]]:
    lineage = GRAPH.get(key).metadata["dagster/column_lineage"]
    return {
        column: {(dep.asset_key.to_user_string(), dep.column_name) for dep in deps}
        for column, deps in lineage.deps_by_column.items()
    }


def test_every_asset_documents_what_a_row_is_and_every_column():
    for key in GRAPH.get_all_asset_keys():
        node = GRAPH.get(key)
        assert node.description and "row" in node.description.lower(), key
        columns = node.metadata["dagster/column_schema"].columns
        assert columns and all(column.description for column in columns), key
        assert node.owners, key


def test_the_documented_columns_are_exactly_the_columns_the_sql_returns():
    models = registry()
    for model in models.models.values():
        if model.materialization not in ("landing", "python"):
            assert output_columns(model, models) == list(model.columns), model.name


def test_analytics_and_fact_columns_trace_back_to_their_sources():
    assert lineage_of(ANALYTICS)["revenue"] == {("core/fact_user_event", "paidamount")}
    assert lineage_of(ANALYTICS)["num_of_clicks"] == {
        ("core/fact_user_event", "clicked"),
        ("core/fact_user_event", "item_id"),
    }
    assert lineage_of(ANALYTICS)["variant_id"] == {("core/dim_user", "variant_id")}
    assert lineage_of(FACT)["user_id"] == {("staging/src_user_event", "user_id")}
    assert lineage_of(dg.AssetKey(["core", "dim_user_variant"]))["assigned_on"] == {
        ("staging/src_user_variant", "partition_date")
    }
    assert lineage_of(dg.AssetKey(["raw_data", "user_event"]))["paidamount"] == {("landing/user_event", "paidamount")}


def test_column_lineage_names_only_parents_and_their_documented_columns():
    for key in GRAPH.materializable_asset_keys:
        node = GRAPH.get(key)
        if "dagster/column_lineage" not in node.metadata:
            continue
        for column, deps in lineage_of(key).items():
            assert column in {c.name for c in node.metadata["dagster/column_schema"].columns}, (key, column)
            for parent, parent_column in deps:
                parent_key = dg.AssetKey.from_user_string(parent)
                assert parent_key in node.parent_keys, (key, parent)
                parent_columns = GRAPH.get(parent_key).metadata["dagster/column_schema"].columns
                assert parent_column in {c.name for c in parent_columns}, (key, parent, parent_column)


def test_raw_tables_name_their_landing_files_and_carry_a_freshness_policy():
    for table in ("user_event", "user_variant", "user_metadata"):
        landing = GRAPH.get(dg.AssetKey(["landing", table]))
        assert not landing.is_executable
        assert landing.metadata["path_pattern"].value.startswith(f"$ELT_LANDING_DIR/{table}/<YYYY-MM-DD>.csv")
        assert "csv" in landing.kinds and "parquet" in landing.kinds
        policy = GRAPH.get(dg.AssetKey(["raw_data", table])).freshness_policy
        assert policy.warn_window.to_timedelta() == timedelta(hours=36)
        assert policy.fail_window.to_timedelta() == timedelta(hours=72)
    assert GRAPH.get(dg.AssetKey(["landing", "user_event"])).metadata["required_every_day"].value is True


def test_every_check_says_what_it_asserts_and_how_severe_it_is():
    for check_key in GRAPH.asset_check_keys:
        spec = GRAPH.get_check_spec(check_key)
        assert spec.description, check_key
        assert spec.metadata["severity"] in ("error", "warn"), check_key
        assert spec.blocking == (spec.metadata["severity"] == "error"), check_key


def test_materializations_report_the_warehouse_column_types(clean_sample_build):
    _landing, _url, result = clean_sample_build
    latest = {
        event.asset_key: event.materialization.metadata for event in result.get_asset_materialization_events()
    }
    fact_columns = {column.name: column for column in latest[FACT]["dagster/column_schema"].value.columns}
    assert fact_columns["user_id"].type == "integer"
    assert fact_columns["datestamp"].type == "timestamp"
    assert fact_columns["paidamount"].description == "Amount paid (0 when not bought)."
    analytics_columns = {
        column.name: column.type for column in latest[ANALYTICS]["dagster/column_schema"].value.columns
    }
    assert list(analytics_columns) == list(registry()["analytics_variant_user_daily"].columns)
    assert analytics_columns["num_of_items"] == "bigint"
    assert all(column_type for column_type in analytics_columns.values())
    assert latest[ANALYTICS]["window_row_count"].value > 5_000


def test_lineage_cache_holds_what_sqlglot_computes_and_follows_the_sql(tmp_path, monkeypatch):
    import shutil

    from elt_assets import settings
    from elt_assets.models import lineage
    from elt_assets.models.registry import registry

    monkeypatch.setenv("ELT_CACHE_DIR", str(tmp_path / "cache"))
    lineage.all_column_dependencies.cache_clear()
    first = lineage.all_column_dependencies()
    [cache_file] = (tmp_path / "cache").glob("lineage-*.json")
    expected = lineage.column_dependencies(registry()["analytics_variant_user_daily"])
    assert first["analytics_variant_user_daily"] == expected
    lineage.all_column_dependencies.cache_clear()
    assert lineage.all_column_dependencies() == first  # read back from the file
    # Any change in the SQL folder names another cache file.
    sql_copy = tmp_path / "sql"
    shutil.copytree(settings.SQL_DIR, sql_copy)
    monkeypatch.setattr(lineage, "SQL_DIR", sql_copy)
    (sql_copy / "core" / "dim_user.sql").write_text((sql_copy / "core" / "dim_user.sql").read_text() + "\n")
    assert lineage._cache_path() != cache_file
    lineage.all_column_dependencies.cache_clear()
