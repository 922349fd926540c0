"""`elt-assets compile` writes the SQL a run executes, and that SQL runs unchanged."""

from __future__ import annotations

import re
from datetime import date

import duckdb
import pytest

from elt_assets import cli
from elt_assets.engines import engine_for_url
from elt_assets.engines.base import Statement
from elt_assets.engines.duckdb import DuckDBEngine
from elt_assets.models.compile import models_in_build_order
from elt_assets.models.registry import registry
from elt_assets.models.run import run_model
from elt_assets.models.sql_text import render_literals
from elt_assets_tests.support import duckdb_path, query, run_elt, warehouse_digest

FIRST, LAST = "2023-06-01", "2023-06-03"
def test_bind_parameters_become_literals_of_their_type():
    text = render_literals(
        "select * from t where d >= :window_start and x::int = :n and s = :s",
        {"window_start": date(2023, 6, 5), "n": 3, "s": "it's"},
    )
    assert text == "select * from t where d >= date '2023-06-05' and x::int = 3 and s = 'it''s'"
    with pytest.raises(ValueError, match="window_end"):
        render_literals("select :window_end", {})


def test_compiled_sql_runs_unchanged_and_builds_what_a_run_builds(landing, tmp_path, monkeypatch, capsys):
    built = f"duckdb:///{tmp_path / 'built.duckdb'}"
    run_elt(landing, built, FIRST, LAST)
    compiled = f"duckdb:///{tmp_path / 'compiled.duckdb'}"
    run_elt(landing, compiled, FIRST, LAST, selection="key:raw_data/*")
    monkeypatch.setenv("ELT_WAREHOUSE_URL", compiled)
    monkeypatch.setenv("ELT_LANDING_DIR", str(landing))
    out = tmp_path / "target" / "compiled"

    assert cli.main(["compile", "--partition-range", f"{FIRST}...{LAST}", "--out", str(out)]) == 0

    written = capsys.readouterr().out.split()
    order = models_in_build_order(registry())
    assert written == [str(out / model.schema / f"{model.name}.sql") for model in order]
    fact = (out / "core" / "fact_user_event.sql").read_text()
    assert "delete from core.fact_user_event where datestamp >= date '2023-06-01' and datestamp < date '2023-06-04';" in fact
    assert "create table core.fact_user_event as select" in fact  # not built yet in this warehouse
    with duckdb.connect(duckdb_path(compiled)) as connection:
        for path in written:
            connection.execute(open(path, encoding="utf-8").read())
    assert warehouse_digest(compiled) == warehouse_digest(built)

    # Compiled again, the tables exist: no create, just the window replaced; printed to
    # stdout, it runs unchanged too and changes nothing.
    assert cli.main(["compile", "--partition-range", f"{FIRST}...{LAST}"]) == 0
    script = capsys.readouterr().out
    assert re.findall(r"create table (?!if not exists)", script) == []  # raw DDL aside
    with duckdb.connect(duckdb_path(compiled)) as connection:
        connection.execute(script)
    assert warehouse_digest(compiled) == warehouse_digest(built)


def test_a_run_and_compile_share_one_plan(landing, duckdb_url, monkeypatch, capsys):
    """A change to the plan shows in what compile prints and in what a run does."""
    run_elt(landing, duckdb_url, FIRST, LAST, selection="group:raw_data or group:staging")
    marker = Statement("create table if not exists core.plan_marker as select 1 as planned")
    original = DuckDBEngine.after_write
    monkeypatch.setattr(DuckDBEngine, "after_write", lambda self, model: [*original(self, model), marker])
    monkeypatch.setenv("ELT_WAREHOUSE_URL", duckdb_url)

    assert cli.main(["compile", "--partition", FIRST, "fact_user_event"]) == 0
    assert "create table if not exists core.plan_marker as select 1 as planned;" in capsys.readouterr().out
    assert query(duckdb_url, "select count(*) from information_schema.tables where table_name = 'plan_marker'") == [(0,)]

    run_model(engine_for_url(duckdb_url), registry(), registry()["fact_user_event"], date(2023, 6, 1), date(2023, 6, 2))
    assert query(duckdb_url, "select planned from core.plan_marker") == [(1,)]


def test_compile_names_the_window_and_refuses_unknown_models(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ELT_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'absent.duckdb'}")
    assert cli.main(["compile", "--partition", "2023-06-05", "core.dim_user"]) == 0
    script = capsys.readouterr().out
    assert script.startswith("-- core.dim_user (table) for [2023-06-05, 2023-06-06)\n")
    assert "cast(date '2023-06-05' as date)" in script
    assert not (tmp_path / "absent.duckdb").exists()  # compiling does not create a warehouse

    assert cli.main(["compile", "--partition", "2023-06-05", "dim_nobody"]) == 2
    assert "no model named 'dim_nobody'" in capsys.readouterr().err
    assert cli.main(["compile", "--partition-range", "2023-06-05...2023-06-01"]) == 2


def test_compile_never_prints_the_warehouse_password(monkeypatch, capsys):
    monkeypatch.setenv("ELT_WAREHOUSE_URL", "postgresql://elt:s3cret-pw@127.0.0.1:9/warehouse")
    assert cli.main(["compile", "--partition", "2023-06-05", "fact_user_event"]) == 1
    captured = capsys.readouterr()
    assert "s3cret-pw" not in captured.out + captured.err
    assert "postgresql://elt:***@127.0.0.1:9/warehouse" in captured.err
