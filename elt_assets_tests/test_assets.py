"""The ELT materialized for real into a DuckDB file, checked against the landing files;
and what each asset's page says about its columns and files."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from elt_assets.assets import readout as readout_asset
from elt_assets.definitions import defs
from elt_assets.models.registry import registry
from elt_assets_tests.support import (
    TABLES,
    query,
    rows,
    run_elt,
    table_digest,
    warehouse_digest,
)

FIRST, LAST = "2023-06-01", "2023-06-14"


def landed(landing: Path, table: str) -> pd.DataFrame:
    """Every landing row of a table, with the day of its file, read with pandas."""
    frames = []
    for path in sorted((landing / table).rglob("*.csv")):
        day = path.stem if path.parent.name == table else path.parent.name
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame["partition_date"] = day
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def built(landing, warehouse_url):
    run_elt(landing, warehouse_url, FIRST, LAST)
    return landing, warehouse_url


def test_every_table_holds_the_landed_sample(built):
    landing, url = built
    events = landed(landing, "user_event")
    assert len(rows(url, "raw_data.user_event")) == len(events)
    assert len(rows(url, "raw_data.user_variant")) == len(landed(landing, "user_variant"))
    assert len(rows(url, "raw_data.user_metadata")) == len(landed(landing, "user_metadata"))

    dated = events[events["datestamp"] != ""]
    assert len(rows(url, "core.fact_user_event")) == len(dated)
    revenue = sum(row[-1] for row in rows(url, "analytics.analytics_variant_user_daily"))
    assert revenue == dated["paidamount"].astype(int).sum()
    groups = dated.groupby(["user_id", "datestamp"]).ngroups
    assert len(rows(url, "analytics.analytics_variant_user_daily")) == groups

    variants = landed(landing, "user_variant")
    assert len(rows(url, "core.dim_user_variant")) == variants["user_id"].nunique()
    # dim_user: one row per assigned user per day
    assigned = variants.groupby("user_id")["partition_date"].min()
    expected_user_days = sum(
        (pd.Timestamp(LAST) - pd.Timestamp(first)).days + 1 for first in assigned
    )
    assert len(rows(url, "core.dim_user")) == expected_user_days


def test_staging_models_are_views_and_core_models_tables(built):
    _landing, url = built
    kinds = dict(
        query(url, "select table_schema || '.' || table_name, table_type from information_schema.tables")
    )
    assert kinds["staging.src_user_event"] == "VIEW"
    assert kinds["core.fact_user_event"] == "BASE TABLE"
    assert kinds["analytics.analytics_variant_user_daily"] == "BASE TABLE"


def test_partitions_are_idempotent_in_any_order(landing, warehouse_url, tmp_path):
    run_elt(landing, warehouse_url, FIRST, LAST)
    once = warehouse_digest(warehouse_url)
    run_elt(landing, warehouse_url, FIRST, LAST)
    run_elt(landing, warehouse_url, "2023-06-07")
    assert warehouse_digest(warehouse_url) == once

    # Every day re-run on its own, newest first: still the same tables.
    for day in sorted(pd.date_range(FIRST, LAST).strftime("%Y-%m-%d"), reverse=True):
        run_elt(landing, warehouse_url, day)
    assert warehouse_digest(warehouse_url) == once

    # A fresh warehouse built the same way gives the same tables too.
    other_url = f"duckdb:///{tmp_path / 'other.duckdb'}"
    run_elt(landing, other_url, FIRST, LAST)
    assert warehouse_digest(other_url) == once


def test_late_part_file_for_an_old_day_is_included(built):
    landing, url = built
    before = {table: table_digest(url, table) for table in TABLES}
    late_dir = landing / "user_event" / "2023-06-03"
    late_dir.mkdir()
    (late_dir / "part-late-0001.csv").write_text(
        "user_id,datestamp,item_id,clicked,purchased,paidamount\n"
        "1,2023-06-03,99999,1,1,777\n"
    )
    fact_where = "where datestamp >= '2023-06-03' and datestamp < '2023-06-04'"
    count_before = len(rows(url, "core.fact_user_event", fact_where))

    run_elt(landing, url, "2023-06-03")

    assert len(rows(url, "core.fact_user_event", fact_where)) == count_before + 1
    day_rows = rows(url, "analytics.analytics_variant_user_daily", "where user_id = 1 and " + fact_where[6:])
    assert sum(row[-1] for row in day_rows) >= 777
    other_days = "where datestamp < '2023-06-03' or datestamp >= '2023-06-04'"
    assert rows(url, "core.fact_user_event", other_days)
    total = query(url, "select count(*) from core.fact_user_event")[0][0]
    assert total == count_before + 1 + len(rows(url, "core.fact_user_event", other_days))
    assert before["raw_data.user_variant"] == table_digest(url, "raw_data.user_variant")


def test_null_datestamps_stay_in_raw_and_leave_the_fact(built):
    landing, url = built
    events = landed(landing, "user_event")
    null_days = events[events["datestamp"] == ""]["partition_date"]
    assert len(null_days) > 0, "the sample should carry NULL datestamps"
    raw_nulls = rows(url, "raw_data.user_event", "where datestamp is null")
    assert sorted(str(row[6]) for row in raw_nulls) == sorted(null_days)
    assert rows(url, "core.fact_user_event", "where datestamp is null") == []


def test_null_datestamp_count_is_reported(landing, warehouse_url):
    result = run_elt(landing, warehouse_url, FIRST, LAST)
    events = landed(landing, "user_event")
    by_day = {
        event.materialization.partition: event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.path == ["core", "fact_user_event"]
    }
    # One materialization per day of the range, each with that day's own figures.
    assert sorted(by_day) == sorted(events["partition_date"].astype(str).unique())
    for day, metadata in by_day.items():
        on_day = events[events["partition_date"].astype(str) == day]
        assert metadata["null_datestamp_rows"].value == int((on_day["datestamp"] == "").sum())
        assert metadata["dagster/row_count"].value == int((on_day["datestamp"] != "").sum())
        assert metadata["window_row_count"].value == int((events["datestamp"] != "").sum())
        assert f"| {day} 00:00:00 |" in metadata["preview"].value


def test_variant_is_fixed_at_first_assignment(built):
    landing, url = built
    variants = landed(landing, "user_variant").sort_values(["partition_date", "variant_id"])
    first = variants.drop_duplicates("user_id", keep="first").set_index("user_id")["variant_id"]
    conflicting = variants.merge(first.rename("first_variant"), left_on="user_id", right_index=True)
    conflicting = conflicting[conflicting["variant_id"] != conflicting["first_variant"]]
    assert len(conflicting) > 0, "the sample should carry conflicting re-assignments"
    dimension = {str(row[0]): row[1] for row in rows(url, "core.dim_user_variant")}
    assert dimension == first.to_dict()
    for user in conflicting["user_id"]:
        variant_rows = rows(url, "core.dim_user", f"where user_id = {int(user)}")
        assert {row[2] for row in variant_rows} == {first[user]}


def test_conflicting_assignments_are_counted(landing, warehouse_url):
    result = run_elt(landing, warehouse_url, FIRST, LAST)
    reported = {
        event.materialization.partition: event.materialization.metadata["conflicting_assignments"].value
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.path == ["core", "dim_user_variant"]
    }
    variants = landed(landing, "user_variant").sort_values(["partition_date", "variant_id"])
    first = variants.drop_duplicates("user_id", keep="first").set_index("user_id")["variant_id"]
    conflicting = variants[variants["variant_id"] != variants["user_id"].map(first)]
    assert len(conflicting) > 0
    # Each day reports the conflicting assignments that landed on it.
    assert {day: count for day, count in reported.items() if count} == conflicting.groupby("partition_date").size().to_dict()


def test_metadata_history_is_scd2(built):
    _landing, url = built
    versions = rows(url, "core.dim_user_metadata")
    by_user: dict[int, list[tuple]] = {}
    for row in versions:
        by_user.setdefault(row[0], []).append(row)
    changed = [user for user, history in by_user.items() if len(history) > 1]
    assert changed, "the sample should carry metadata changes"
    for history in by_user.values():
        history.sort(key=lambda row: row[4])
        assert [row[6] for row in history] == [False] * (len(history) - 1) + [True]
        assert history[-1][5] is None
        for older, newer in zip(history, history[1:]):
            assert older[5] == newer[4]  # valid_to of one version = valid_from of the next


def test_scd2_validity_is_repaired_when_an_older_day_reruns(built):
    landing, url = built
    digest = table_digest(url, "core.dim_user_metadata")
    run_elt(landing, url, FIRST, selection="key:core/dim_user_metadata")
    assert table_digest(url, "core.dim_user_metadata") == digest


def test_analytics_uses_attributes_in_effect_each_day(built):
    _landing, url = built
    changes = rows(
        url,
        "core.dim_user_metadata",
        "where partition_date > '2023-06-01' and user_id in "
        "(select user_id from core.dim_user_metadata group by user_id having count(*) > 1)",
    )
    assert changes
    user, age, gender, updated_at = changes[0][0], changes[0][1], changes[0][2], changes[0][3]
    change_day = updated_at.date()
    previous = rows(
        url,
        "core.dim_user_metadata",
        f"where user_id = {user} and valid_to = timestamp '{updated_at}'",
    )[0]
    summary = rows(url, "analytics.analytics_variant_user_daily", f"where user_id = {user}")
    assert summary
    for row in summary:
        expected = (age, gender) if row[2].date() >= change_day else (previous[1], previous[2])
        assert (row[3], row[4]) == expected, row


def test_parquet_part_files_load_like_csv(tmp_path, duckdb_url):
    from elt_assets.landing.generator import generate_landing

    csv_root, parquet_root = tmp_path / "csv", tmp_path / "parquet"
    for root, fmt in ((csv_root, "csv"), (parquet_root, "parquet")):
        generate_landing(root, users=120, days=3, events_per_day=600, seed=3, fmt=fmt)
    parquet_url = f"duckdb:///{tmp_path / 'parquet.duckdb'}"
    run_elt(csv_root, duckdb_url, "2023-06-01", "2023-06-03")
    run_elt(parquet_root, parquet_url, "2023-06-01", "2023-06-03")
    for table in TABLES:
        if table.startswith("raw_data"):
            ours = [row[:-1] for row in rows(parquet_url, table)]  # source_file differs
            theirs = [row[:-1] for row in rows(duckdb_url, table)]
            assert ours == theirs, table
        else:
            assert table_digest(parquet_url, table) == table_digest(duckdb_url, table), table


def _asset_nodes():
    return defs.resolve_asset_graph().asset_nodes


def test_every_model_asset_links_its_sql_and_schema_entry():
    """`dagster/code_references`: the files an asset page links to, in the open-source UI too."""
    models = registry()
    checked = set()
    for node in _asset_nodes():
        group, name = node.key.path
        model = models[name]
        references = node.metadata["dagster/code_references"].code_references
        paths = [Path(reference.file_path) for reference in references]
        assert all(path.is_file() for path in paths), node.key
        spec = model.sql_path.parent / "_models.yml"
        [entry] = [reference for reference in references if Path(reference.file_path) == spec]
        line = spec.read_text().splitlines()[entry.line_number - 1]
        if group == "landing":
            # The files' contract: the entry's `source:` block and the raw table's DDL.
            assert paths == [spec, model.sql_path], node.key
            assert line.strip() == "source:", node.key
        else:
            assert paths[0] == model.sql_path and model.sql_path.stem == name, node.key
            assert line.strip() == f"{name}:", node.key
            assert {model.metric_path(metric) for metric in model.metrics} <= set(paths)
        if model.materialization == "python":  # the readout: its code too
            assert Path(readout_asset.__file__) in paths, node.key
        checked.add(group)
    assert checked == {"landing", "raw_data", "staging", "core", "analytics"}


def test_column_descriptions_name_their_upstream_columns():
    """The open-source UI shows column descriptions but not column lineage (Dagster+ does)."""
    descriptions = {
        node.key.to_user_string(): {
            column.name: column.description for column in node.metadata["dagster/column_schema"].columns
        }
        for node in _asset_nodes()
    }
    assert descriptions["analytics/analytics_variant_user_daily"]["revenue"] == (
        "Revenue, the sum of amounts paid. ← core.fact_user_event.paidamount"
    )
    assert descriptions["analytics/analytics_variant_user_daily"]["num_of_clicks"].endswith(
        "← core.fact_user_event.clicked, core.fact_user_event.item_id"
    )
    assert descriptions["raw_data/user_event"]["clicked"].endswith("← landing/user_event.clicked")
    # Every column the lineage traces, on every asset, names all its sources.
    for node in _asset_nodes():
        lineage = node.metadata.get("dagster/column_lineage")
        for column, deps in (lineage.deps_by_column.items() if lineage else ()):
            description = descriptions[node.key.to_user_string()][column]
            assert description.endswith("← " + ", ".join(_named(dep) for dep in deps)), (node.key, column)


def _named(dep: dg.TableColumnDep) -> str:
    """A column as a description names it: schema.table.column, or landing/table.column."""
    separator = "/" if dep.asset_key.path[0] == "landing" else "."
    return f"{separator.join(dep.asset_key.path)}.{dep.column_name}"
