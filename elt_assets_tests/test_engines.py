"""The engine seam: a URL picks its engine, and what is shown of a URL hides its secrets."""

from __future__ import annotations

import pytest

from elt_assets.assets.factory import warehouse_kind
from elt_assets.engines import WarehouseError, engine_for_url
from elt_assets.engines.duckdb import DuckDBEngine
from elt_assets.engines.postgres import PostgresEngine
from elt_assets.secrets import masked_url


def test_the_url_scheme_picks_the_engine():
    assert isinstance(engine_for_url("duckdb:///:memory:"), DuckDBEngine)
    assert isinstance(engine_for_url("postgresql+psycopg2://u@127.0.0.1/db"), PostgresEngine)
    with pytest.raises(WarehouseError, match="no warehouse engine for URLs starting 'mysql'"):
        engine_for_url("mysql://u@h/db")


def test_asset_kinds_follow_the_configured_engine(monkeypatch):
    monkeypatch.setenv("ELT_WAREHOUSE_URL", "postgresql+psycopg2://u@127.0.0.1/db")
    assert warehouse_kind() == "postgres"
    monkeypatch.delenv("ELT_WAREHOUSE_URL")
    assert warehouse_kind() == "duckdb"


def test_passwords_are_masked_in_userinfo_and_in_query_parameters():
    url = "postgresql+psycopg2://elt:pw-in-userinfo@db:5432/w?sslmode=require&password=pw-in-query&sslpassword=key-pw"
    shown = masked_url(url)
    assert "pw-in-userinfo" not in shown and "pw-in-query" not in shown and "key-pw" not in shown
    assert shown == "postgresql+psycopg2://elt:***@db:5432/w?password=***&sslmode=require&sslpassword=***"
    assert engine_for_url(url).display_url == shown


def test_a_duckdb_file_that_is_not_there_is_not_created_by_asking(tmp_path):
    engine = engine_for_url(f"duckdb:///{tmp_path / 'absent.duckdb'}")
    assert not engine.exists()
    assert not (tmp_path / "absent.duckdb").exists()
