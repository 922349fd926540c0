"""Running a model for a window of days: the materializations, generic over models.

- view: (re)create the view; the window only scopes the reported counts.
- ephemeral: nothing is built; downstream models inline the SQL as a CTE.
- table / incremental / snapshot: in one transaction, delete the window's rows and insert
  the model's rows for the window. Re-running a window therefore gives the same table.
  On a change of columns, a table is rebuilt (other partitions must be re-run), while an
  incremental or snapshot model fails, like dbt's on_schema_change='fail'.
- snapshot: as table, then valid_to/is_current are recomputed over the full history of
  every key the window touched (SCD Type 2).
- landing: raw tables, loaded from landing files (see raw_load).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from elt_assets import raw_load
from elt_assets.landing import LandingZone, as_landing_zone
from elt_assets.metadata import day_metadata, relation_metadata, window_filter
from elt_assets.models import Model, Registry
from elt_assets.partitions import days_in
from elt_assets.settings import start_date
from elt_assets.warehouse import (
    Warehouse,
    WarehouseError,
    ensure_partition_index,
    ensure_schema,
    first_line,
    refresh_statistics,
    table_columns,
    table_exists,
    validate_identifier,
)


@dataclass
class ModelRun:
    """The outcome of one model over one window."""

    model: Model
    first_day: date
    end_day: date
    # What holds for the whole window, and what each day of it reports on its own page.
    metadata: dict[str, Any] = field(default_factory=dict)
    by_day: dict[date, dict[str, Any]] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        value = self.metadata.get("window_row_count") or self.metadata.get("dagster/row_count")
        return int(value.value) if value is not None else 0


def check_window(model: Model, first_day: date, end_day: date) -> None:
    """Refuse windows that are empty or start before the first partition."""
    if end_day <= first_day:
        raise ValueError(f"{model.qualified_name}: empty window {first_day}..{end_day}")
    if first_day < start_date():
        raise ValueError(
            f"{model.qualified_name}: partition {first_day} is before the first partition "
            f"{start_date()} (ELT_START_DATE)"
        )


def run_model(
    warehouse: Warehouse,
    registry: Registry,
    model: Model,
    first_day: date,
    end_day: date,
    landing_root: str | LandingZone | None = None,
) -> ModelRun:
    """Build the model's rows for [first_day, end_day) and report what was written."""
    check_window(model, first_day, end_day)
    try:
        return _run(warehouse, registry, model, first_day, end_day, landing_root)
    except sa.exc.DBAPIError as error:
        # The transaction was rolled back: the window still holds its previous rows.
        raise WarehouseError(
            f"{model.qualified_name} for [{first_day}, {end_day}) failed in the warehouse "
            f"{warehouse.display_url}: {first_line(error)}; the partition's previous rows "
            "are unchanged"
        ) from error


def _run(
    warehouse: Warehouse,
    registry: Registry,
    model: Model,
    first_day: date,
    end_day: date,
    landing_root: str | None,
) -> ModelRun:
    if model.materialization == "landing":
        if landing_root is None:
            raise ValueError(f"{model.qualified_name}: a landing model needs the landing root")
        return _run_landing(warehouse, registry, model, first_day, end_day, landing_root)
    sql = registry.render(model).text
    window = {"window_start": first_day, "window_end": end_day}
    run = ModelRun(model, first_day, end_day)
    with warehouse.transaction() as connection:
        ensure_schema(connection, model.schema)
        if model.materialization == "ephemeral":
            run.metadata = _ephemeral_metadata(connection, model, sql, window)
            return run
        if model.materialization == "view":
            connection.execute(sa.text(f"create or replace view {model.qualified_name} as\n{sql}"))
        else:
            run.metadata["recreated"] = dg.MetadataValue.bool(
                _prepare_table(connection, model, sql, window)
            )
            _replace_window(connection, model, sql, window)
            refresh_statistics(connection, model.schema, model.name)
        run.metadata.update(relation_metadata(connection, model, first_day, end_day, sql))
        run.by_day = _days_metadata(connection, registry, model, first_day, end_day)
    return run


def _days_metadata(
    connection: Connection, registry: Registry, model: Model, first_day: date, end_day: date
) -> dict[date, dict[str, Any]]:
    """Each day's row count, preview and the model's metrics (e.g. rows it left out)."""
    metrics = {metric: registry.render_metric(model, metric).text for metric in model.metrics}
    by_day = {}
    for day in days_in(first_day, end_day):
        values = day_metadata(connection, model, day)
        day_window = {"window_start": day, "window_end": day + timedelta(days=1)}
        for metric, rendered in metrics.items():
            value = connection.execute(sa.text(rendered), day_window).scalar_one()
            values[metric] = dg.MetadataValue.int(int(value))
        by_day[day] = values
    return by_day


def _prepare_table(connection: Connection, model: Model, sql: str, window: dict[str, date]) -> bool:
    """Create the table from the model's columns if needed; True if it was (re)created."""
    target = model.qualified_name
    model_columns = list(
        connection.execute(sa.text(f"select * from (\n{sql}\n) as model_rows limit 0"), window).keys()
    )
    if table_exists(connection, model.schema, model.name):
        existing = [column.name for column in table_columns(connection, model.schema, model.name)]
        if existing == model_columns:
            return False
        if model.materialization != "table":
            raise WarehouseError(
                f"{target}: the model's columns ({', '.join(model_columns)}) differ from the "
                f"table's ({', '.join(existing)}); a {model.materialization} model does not "
                "change its schema on its own: drop the table and backfill every partition"
            )
        connection.execute(sa.text(f"drop table {target}"))
    connection.execute(
        sa.text(f"create table {target} as select * from (\n{sql}\n) as model_rows where 1 = 0"),
        window,
    )
    ensure_partition_index(connection, model.schema, model.name, model.partition_column)
    return True


def _replace_window(connection: Connection, model: Model, sql: str, window: dict[str, date]) -> None:
    target = model.qualified_name
    predicate = window_filter(model.partition_column)
    if model.materialization == "snapshot":
        key = validate_identifier(model.unique_key)
        connection.execute(sa.text("drop table if exists _touched_keys"))
        connection.execute(
            sa.text(f"create temp table _touched_keys as select distinct {key} from {target} where {predicate}"),
            window,
        )
    connection.execute(sa.text(f"delete from {target} where {predicate}"), window)
    columns = ", ".join(column.name for column in table_columns(connection, model.schema, model.name))
    connection.execute(
        sa.text(f"insert into {target} ({columns}) select {columns} from (\n{sql}\n) as model_rows"),
        window,
    )
    if model.materialization == "snapshot":
        _close_versions(connection, model, window)


def _close_versions(connection: Connection, model: Model, window: dict[str, date]) -> None:
    """Recompute valid_to and is_current for every key whose history the window touched."""
    target = model.qualified_name
    key = validate_identifier(model.unique_key)
    connection.execute(
        sa.text(f"insert into _touched_keys select distinct {key} from {target} where {window_filter(model.partition_column)}"),
        window,
    )
    connection.execute(
        sa.text(
            f"""
            update {target}
            set
                valid_to = versions.next_valid_from,
                is_current = versions.next_valid_from is null
            from (
                select
                    {key},
                    valid_from,
                    lead(valid_from) over (partition by {key} order by valid_from) as next_valid_from
                from {target}
                where {key} in (select {key} from _touched_keys)
            ) as versions
            where {target}.{key} = versions.{key}
                and {target}.valid_from = versions.valid_from
            """
        )
    )
    connection.execute(sa.text("drop table _touched_keys"))


def _ephemeral_metadata(connection: Connection, model: Model, sql: str, window: dict[str, date]) -> dict[str, Any]:
    predicate = window_filter(model.partition_column) if model.partition_column else "1 = 1"
    rows = connection.execute(
        sa.text(f"select count(*) from (\n{sql}\n) as model_rows where {predicate}"), window
    ).scalar_one()
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "materialization": dg.MetadataValue.text("ephemeral"),
        "sql": dg.MetadataValue.md(f"```sql\n{sql.strip()}\n```"),
    }


def _run_landing(
    warehouse: Warehouse, registry: Registry, model: Model, first_day: date, end_day: date, root: str | LandingZone
) -> ModelRun:
    run = ModelRun(model, first_day, end_day)
    files = raw_load.files_for_window(root, model.name, first_day, end_day)
    # DuckDB reads local files only: files on S3 are read from local copies.
    files = as_landing_zone(root).localize(files)
    ddl = model.sql_path.read_text(encoding="utf-8")
    with warehouse.transaction() as connection:
        ensure_schema(connection, model.schema)
        connection.execute(sa.text(ddl))
        columns = raw_load.landing_columns(table_columns(connection, model.schema, model.name))
        replace = (
            raw_load.replace_raw_window_in_duckdb
            if warehouse.dialect == "duckdb"
            else raw_load.replace_raw_window_in_postgres
        )
        staged = replace(connection, model, columns, files, first_day, end_day)
        ensure_partition_index(connection, model.schema, model.name, model.partition_column)
        refresh_statistics(connection, model.schema, model.name)
        run.metadata.update(relation_metadata(connection, model, first_day, end_day, ddl))
        run.by_day = _days_metadata(connection, registry, model, first_day, end_day)
    run.metadata["landing_files"] = dg.MetadataValue.int(len(files))
    run.metadata["landed_rows"] = dg.MetadataValue.int(staged)
    run.metadata["landing_file_list"] = dg.MetadataValue.md(
        "\n".join(f"- `{landing_file.path}` ({landing_file.size} bytes)" for landing_file in files) or "(none)"
    )
    return run

