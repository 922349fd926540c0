"""What a materialization reports: row counts, the window, a preview, the SQL, the schema."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import dagster as dg

from elt_assets.engines.base import Engine, Session, window_filter
from elt_assets.models.registry import Model

PREVIEW_ROWS = 10


def markdown_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A small markdown table; cell text has its pipes escaped."""

    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def window_text(first_day: date, end_day: date) -> str:
    return f"[{first_day.isoformat()}, {end_day.isoformat()})"


def relation_metadata(
    engine: Engine, session: Session, model: Model, first_day: date, end_day: date, sql: str
) -> dict[str, Any]:
    """What holds for the whole window after a write: its row count (named as the window's),
    the window, the SQL and the column schema. Each day's own figures come from day_metadata."""
    window = {"window_start": first_day, "window_end": end_day}
    predicate = window_filter(model.partition_column) if model.partition_column else "1 = 1"
    row_count = session.execute(f"select count(*) from {model.qualified_name} where {predicate}", window).scalar_one()
    return {
        "window_row_count": dg.MetadataValue.int(int(row_count)),
        "partition_window": dg.MetadataValue.text(window_text(first_day, end_day)),
        "materialization": dg.MetadataValue.text(model.materialization),
        "sql": dg.MetadataValue.md(f"```sql\n{sql.strip()}\n```"),
        "dagster/column_schema": column_schema(engine, session, model),
    }


def day_metadata(session: Session, model: Model, day: date) -> dict[str, Any]:
    """One day's row count and a preview of its rows: what that partition's page shows."""
    window = {"window_start": day, "window_end": day + timedelta(days=1)}
    predicate = window_filter(model.partition_column) if model.partition_column else "1 = 1"
    target = model.qualified_name
    row_count = session.execute(f"select count(*) from {target} where {predicate}", window).scalar_one()
    preview = session.execute(f"select * from {target} where {predicate} order by 1, 2, 3 limit {PREVIEW_ROWS}", window)
    columns = list(preview.keys())
    return {
        "dagster/row_count": dg.MetadataValue.int(int(row_count)),
        "preview": dg.MetadataValue.md(markdown_table(columns, [tuple(row) for row in preview.all()])),
    }


def column_schema(engine: Engine, session: Session, model: Model) -> dg.TableSchema:
    """The relation's columns and types as the warehouse reports them, with descriptions."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=column.name, type=column.data_type.lower(), description=model.columns.get(column.name))
            for column in engine.table_columns(session, model.schema, model.name)
        ]
    )
