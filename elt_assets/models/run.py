"""Running a model for a window of days: build its plan, execute it, report what was written.

The plan (elt_assets.models.plan) and this run share one unit of work: a failure anywhere
rolls the window back to its previous rows, on engines with transactions.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from elt_assets.engines.base import Engine, Session, StatementError, WarehouseError, first_line, window_filter
from elt_assets.landing import raw_load
from elt_assets.landing.zone import LandingZone, as_landing_zone
from elt_assets.models.build_log import check_build_order
from elt_assets.models.metadata import days_metadata, relation_metadata
from elt_assets.models.plan import check_window, plan_model
from elt_assets.models.registry import Model, Registry


@dataclass
class ModelRun:
    """The outcome of one model over one window."""

    model: Model
    first_day: date
    end_day: date
    # What holds for the whole window, and what each day of it reports on its own page.
    metadata: dict[str, Any] = field(default_factory=dict)
    by_day: dict[date, dict[str, Any]] = field(default_factory=dict)
    # What the run let through but must be told (ELT_BUILD_ORDER=warn).
    warnings: list[str] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        value = self.metadata.get("window_row_count") or self.metadata.get("dagster/row_count")
        return int(value.value) if value is not None else 0


def run_model(
    engine: Engine,
    registry: Registry,
    model: Model,
    first_day: date,
    end_day: date,
    landing_root: str | LandingZone | None = None,
) -> ModelRun:
    """Build the model's rows for [first_day, end_day) and report what was written."""
    check_window(model, first_day, end_day)
    files = None
    if model.materialization == "landing":
        if landing_root is None:
            raise ValueError(f"{model.qualified_name}: a landing model needs the landing root")
        files = raw_load.files_for_window(landing_root, model.name, first_day, end_day)
        # Engines read local files: files on S3 are read from local copies.
        files = as_landing_zone(landing_root).localize(files)
    try:
        with engine.transaction() as session:
            warnings = check_build_order(engine, session, registry, model, first_day, end_day)
            plan = plan_model(engine, session, registry, model, first_day, end_day, files)
            loaded = plan.execute(engine, session)
            run = _report(engine, session, registry, plan, files, loaded)
            run.warnings = warnings
            return run
    except (sa.exc.DBAPIError, StatementError) as error:
        # Rolled back where the engine has transactions (see Engine.after_failure).
        raise WarehouseError(
            f"{model.qualified_name} for [{first_day}, {end_day}) failed in the warehouse "
            f"{engine.display_url}: {first_line(error)}; {engine.after_failure}"
        ) from error


def _report(engine: Engine, session: Session, registry: Registry, plan, files, loaded: int) -> ModelRun:
    model, first_day, end_day = plan.model, plan.first_day, plan.end_day
    run = ModelRun(model, first_day, end_day)
    if model.materialization == "ephemeral":
        sql = registry.render(model).text
        run.metadata = _ephemeral_metadata(session, model, sql, first_day, end_day)
        return run
    sql = model.sql_path.read_text(encoding="utf-8") if model.materialization == "landing" else registry.render(model).text
    if model.writes_rows and model.materialization != "landing":
        run.metadata["recreated"] = dg.MetadataValue.bool(plan.creates_table)
    run.by_day = _days_metadata(engine, session, registry, model, first_day, end_day)
    run.metadata.update(relation_metadata(engine, session, model, first_day, end_day, sql, run.by_day))
    if files is not None:
        run.metadata["landing_files"] = dg.MetadataValue.int(len(files))
        run.metadata["landed_rows"] = dg.MetadataValue.int(loaded)
        run.metadata["landing_file_list"] = dg.MetadataValue.md(
            "\n".join(f"- `{landing_file.path}` ({landing_file.size} bytes)" for landing_file in files) or "(none)"
        )
    return run


def _days_metadata(
    engine: Engine, session: Session, registry: Registry, model: Model, first_day: date, end_day: date
) -> dict[date, dict[str, Any]]:
    """Each day's row count, preview and the model's metrics (e.g. rows it left out).

    A metric's query returns one row per day of its window, (day, value); a day it does
    not return counts 0. It runs once per day of the window, or once for the whole window
    on engines where a query costs more than its work (Engine.metrics_by_window).
    """
    by_day = days_metadata(engine, session, model, first_day, end_day)
    if not model.metrics or not by_day:
        return by_day
    metrics = {metric: registry.render_metric(model, metric).text for metric in model.metrics}
    windows = [(first_day, end_day)] if engine.metrics_by_window else [(day, day + timedelta(days=1)) for day in by_day]

    def measure(item: tuple[str, tuple[date, date]]) -> list[tuple[date, int]]:
        metric, (start, end) = item
        rows = session.execute(metrics[metric], {"window_start": start, "window_end": end}).all()
        return [(_as_date(day), int(value or 0)) for day, value in rows]

    items = [(metric, window) for metric in metrics for window in windows]
    values: dict[str, dict[date, int]] = {metric: {} for metric in metrics}
    with ThreadPoolExecutor(max_workers=engine.concurrent_queries) as pool:
        for (metric, _), rows in zip(items, pool.map(measure, items)):
            values[metric].update(rows)
    for day in by_day:
        for metric in metrics:
            by_day[day][metric] = dg.MetadataValue.int(values[metric].get(day, 0))
    return by_day


def _as_date(value: date | datetime) -> date:
    """A day as the engines return it: a date, or a timestamp at midnight."""
    return value.date() if isinstance(value, datetime) else value


def _ephemeral_metadata(session: Session, model: Model, sql: str, first_day: date, end_day: date) -> dict[str, Any]:
    predicate = window_filter(model.partition_column) if model.partition_column else "1 = 1"
    rows = session.execute(
        f"select count(*) from (\n{sql}\n) as model_rows where {predicate}",
        {"window_start": first_day, "window_end": end_day},
    ).scalar_one()
    return {
        "window_row_count": dg.MetadataValue.int(int(rows)),
        "materialization": dg.MetadataValue.text("ephemeral"),
        "sql": dg.MetadataValue.md(f"```sql\n{sql.strip()}\n```"),
    }
