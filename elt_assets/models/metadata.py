"""What a materialization reports: row counts, the window, a preview, the SQL, the schema."""

from __future__ import annotations

from datetime import date
from typing import Any

import dagster as dg

from elt_assets.engines.base import Engine, Session, window_filter
from elt_assets.models.registry import Model
from elt_assets.partitions import as_date, days_in

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
    engine: Engine,
    session: Session,
    model: Model,
    first_day: date,
    end_day: date,
    sql: str,
    by_day: dict[date, dict[str, Any]],
) -> dict[str, Any]:
    """What holds for the whole window after a write: its row count (named as the window's,
    the sum of the days' counts from days_metadata), the window, the SQL and the column schema."""
    row_count = sum(values["dagster/row_count"].value for values in by_day.values())
    return {
        "window_row_count": dg.MetadataValue.int(int(row_count)),
        "partition_window": dg.MetadataValue.text(window_text(first_day, end_day)),
        "materialization": dg.MetadataValue.text(model.materialization),
        "sql": dg.MetadataValue.md(f"```sql\n{sql.strip()}\n```"),
        "dagster/column_schema": column_schema(engine, session, model),
    }


def days_metadata(engine: Engine, session: Session, model: Model, first_day: date, end_day: date) -> dict[date, dict[str, Any]]:
    """Each day's row count and a preview of its rows: what that partition's page shows.

    The counts of every day come from one grouped query; the previews from the engine
    (one query per day, or one for the window where round trips are dear)."""
    window = {"window_start": first_day, "window_end": end_day}
    partition = model.partition_column
    counts = {
        as_date(day): int(rows)
        for day, rows in session.execute(
            f"select cast({partition} as date) as day, count(*) as row_count from {model.qualified_name} "
            f"where {window_filter(partition)} group by cast({partition} as date)",
            window,
        ).all()
    }
    columns, previews = engine.day_previews(session, model, first_day, end_day, PREVIEW_ROWS)
    by_day = {}
    for day in days_in(first_day, end_day):
        rows = previews.get(day, [])
        by_day[day] = {
            "dagster/row_count": dg.MetadataValue.int(counts.get(day, 0)),
            "preview": dg.MetadataValue.md(markdown_table(list(columns), rows)),
        }
    return by_day


def column_schema(engine: Engine, session: Session, model: Model) -> dg.TableSchema:
    """The relation's columns and types as the warehouse reports them, with descriptions."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=column.name, type=column.data_type.lower(), description=model.columns.get(column.name))
            for column in engine.table_columns(session, model.schema, model.name)
        ]
    )
