"""The registry reads sql/, renders refs, and inlines ephemeral models as CTEs."""

from dataclasses import replace
from datetime import date

import duckdb
import pytest

from elt_assets.models.registry import Registry, registry
from elt_assets.engines.base import qualified, validate_identifier
from elt_assets_tests.support import duckdb_path, run_elt


def test_every_model_has_a_materialization_from_its_layer():
    models = registry().models
    assert {models[name].materialization for name in ("src_user_event", "src_user_variant")} == {"view"}
    assert models["fact_user_event"].materialization == "incremental"
    assert models["dim_user_metadata"].materialization == "snapshot"
    assert models["dim_user"].materialization == "table"
    assert models["user_event"].materialization == "landing"


def test_refs_resolve_to_schema_qualified_tables():
    rendered = registry().render(registry()["dim_user"])
    assert "core.dim_user_variant" in rendered.text
    assert "core.dim_user_metadata" in rendered.text
    assert rendered.refs == ("dim_user_variant", "dim_user_metadata")


def test_identifiers_are_validated():
    assert validate_identifier("user_event") == "user_event"
    for bad in ("User", "a;drop table x", "1abc", "a b", ""):
        with pytest.raises(ValueError):
            validate_identifier(bad)
    with pytest.raises(ValueError):
        qualified("core", "x; drop")


def test_ephemeral_staging_is_inlined_and_runs(landing, duckdb_url):
    run_elt(landing, duckdb_url, "2023-06-01", "2023-06-02", selection="key:raw_data/*")
    base = registry()
    ephemeral = Registry(
        replace(model, materialization="ephemeral") if model.schema == "staging" else model
        for model in base.models.values()
    )
    sql = ephemeral.render(ephemeral["fact_user_event"]).text
    assert "__ephemeral_src_user_event as (" in sql
    assert "staging.src_user_event" not in sql
    with duckdb.connect(duckdb_path(duckdb_url), read_only=True) as connection:
        inlined = connection.execute(
            sql.replace(":window_start", "$window_start").replace(":window_end", "$window_end"),
            {"window_start": date(2023, 6, 1), "window_end": date(2023, 6, 3)},
        ).fetchall()
        direct = connection.execute(
            "select user_id, datestamp, item_id, clicked, purchased, paidamount "
            "from raw_data.user_event where datestamp is not null"
        ).fetchall()
    assert sorted(inlined) == sorted(direct)
