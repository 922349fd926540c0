"""The A/B-test readout asset: the experiment's cumulative result as of each day."""

import math
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from elt_assets.assets.factory import model_deps, warehouse_kind
from elt_assets.engines.base import Engine, Session
from elt_assets.models.lineage import code_references
from elt_assets.models.build_log import check_build_order, record_build
from elt_assets.models.metadata import days_metadata, markdown_table, relation_metadata
from elt_assets.models.registry import Model, Registry, registry
from elt_assets.partitions import daily_partitions, days_in, single_run_backfill, window_days
from elt_assets.readout import statistics as readout_statistics
from elt_assets.readout.statistics import (
    TABLE_COLUMNS,
    MetricRow,
    VariantTotals,
    ctr_chart_markdown,
    readout,
    table_cells,
)
from elt_assets.resources import WarehouseResource

READOUT = registry()["ab_test_readout"]
COLUMNS = list(READOUT.columns)
# The readout's working table: per-user running totals (sql/analytics/ab_test_readout.sql),
# kept by this asset only, so that a day costs the same after 180 days as after 30.
USER_TOTALS = Model(
    schema="analytics",
    name="ab_test_user_totals",
    materialization="table",
    partition_column="as_of_date",
    description="The readout's working table: a user's totals from the first day up to a day.",
)
# Before any partition: "sum from the beginning" when a day has no previous totals.
BEGINNING = date(1900, 1, 1)
# The chart shows this many days up to the window's end.
CHART_DAYS = 60


@dg.asset(
    key=["analytics", "ab_test_readout"],
    deps=model_deps(READOUT),
    description=READOUT.description,
    group_name="analytics",
    owners=list(READOUT.owners),
    kinds={"python", warehouse_kind(), "table"},
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    tags={"materialization": READOUT.materialization},
    metadata={
        "sql_file": dg.MetadataValue.path(str(READOUT.sql_path)),
        "partition_column": READOUT.partition_column,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=name, description=text) for name, text in READOUT.columns.items()]
        ),
        "dagster/code_references": code_references(READOUT, Path(__file__), Path(readout_statistics.__file__)),
    },
)
def ab_test_readout(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Compute the readout for every day of the window, in order, and replace its rows.

    Each day's per-user totals are the previous day's plus the day's own rows, kept in
    analytics.ab_test_user_totals, so a day's cost does not grow with the experiment's
    length; the statistics need only a few sums per variant.
    """
    first_day, end_day = window_days(context.partition_time_window)
    sql = ReadoutSql.render(registry())
    readouts: dict[date, list[MetricRow]] = {}
    engine = warehouse.engine()
    with engine.transaction() as session:
        for warning in check_build_order(engine, session, registry(), READOUT, first_day, end_day):
            context.log.warning(warning)
        for statement in engine.create_schema(READOUT.schema):
            statement.run(engine, session)
        for ddl, model in ((sql.create_table, READOUT), (sql.create_user_totals, USER_TOTALS)):
            for statement in engine.declare_table(model, ddl) + engine.after_create(model):
                statement.run(engine, session)
        for day in days_in(first_day, end_day):
            by_variant = _user_totals(engine, session, sql, day, context.log)
            if not all(by_variant.get(variant) and by_variant[variant].users for variant in ("control", "test")):
                context.log.warning(f"{day}: no users in both control and test yet; no readout for this day")
                continue
            readouts[day] = readout(by_variant)
        rows = [{"as_of_date": day, **vars(row)} for day, day_rows in readouts.items() for row in day_rows]
        window = {"window_start": first_day, "window_end": end_day}
        engine.replace_window_rows(session, READOUT, [{name: row[name] for name in COLUMNS} for row in rows], window)
        for model in (READOUT, USER_TOTALS):
            for statement in engine.after_write(model):
                statement.run(engine, session)
        record_build(engine, session, READOUT, first_day, end_day)
        by_day = days_metadata(engine, session, READOUT, first_day, end_day)
        metadata = relation_metadata(engine, session, READOUT, first_day, end_day, sql.totals, by_day)
        last_day = end_day - timedelta(days=1)
        daily = session.execute(
            sql.daily_ctr, {"chart_start": end_day - timedelta(days=CHART_DAYS), "window_end": end_day}
        ).all()
    # Each day's materialization gets that day's readout, as a table and as numbers that
    # the asset's plots chart across days; the table replaces the raw rows' preview.
    for day, values in by_day.items():
        values.pop("preview", None)
        if day in readouts:
            values["readout"] = dg.MetadataValue.md(readout_markdown(readouts[day]))
            values.update(readout_figures(readouts[day]))
        context.add_asset_metadata(values, partition_key=day.isoformat())
    if daily:
        metadata["daily_ctr_chart"] = dg.MetadataValue.md(
            ctr_chart_markdown(
                [tuple(row) for row in daily], f"Daily click-through rate per variant, up to {last_day}"
            )
        )
    return dg.MaterializeResult(metadata=metadata)


@dataclass(frozen=True)
class ReadoutSql:
    """The readout's statements, rendered once per run (sql/analytics/ab_test_readout*.sql)."""

    totals: str  # per-user totals as of a day
    create_table: str  # the readout's table
    create_user_totals: str  # its working table
    carried_sums: str  # the previous day's totals, added up
    history_sums: str  # the history they stand for, added up
    by_variant: str  # a day's totals summed per variant
    daily_ctr: str  # the chart's daily click-through rate

    @classmethod
    def render(cls, models: Registry) -> "ReadoutSql":
        return cls(
            totals=models.render(READOUT).text,
            **{name: models.render_query(READOUT, name).text for name in READOUT.queries},
        )


def _user_totals(engine: Engine, session: Session, sql: ReadoutSql, day: date, log) -> dict[str, VariantTotals]:
    """Write the day's per-user totals and return their sums per variant.

    The previous day's totals are carried forward only if they still add up to the
    history before this day: after late data for an earlier day was loaded, they do not,
    and the totals are summed from the whole history instead (and are current again from
    this day on).
    """
    previous_day = day - timedelta(days=1)
    carried_users, *carried = session.execute(sql.carried_sums, {"previous_day": previous_day}).one()
    current = False
    if carried_users:
        history = session.execute(sql.history_sums, {"history_end": day}).one()
        current = [int(value) for value in carried] == [int(value) for value in history]
        if not current:
            log.info(f"{day}: the totals of {previous_day} no longer match its history; summing the whole history")
    # Without current totals to carry, carry nothing and sum the whole history.
    params = {
        "previous_day": previous_day if current else BEGINNING,
        "history_start": day if current else BEGINNING,
        "window_start": day,
        "window_end": day + timedelta(days=1),
        "as_of_date": day,
    }
    day_totals = (
        "select cast(:as_of_date as date) as as_of_date, variant_id, user_id, impressions, clicks, purchases, revenue\n"
        f"from (\n{sql.totals}\n) as totals"
    )
    for statement in engine.replace_window(USER_TOTALS, day_totals, params):
        statement.run(engine, session)
    return {
        variant: VariantTotals(
            users=int(users),
            impressions=float(impressions or 0),
            clicks=float(clicks or 0),
            purchasers=int(purchasers or 0),
            revenue=float(revenue or 0),
            revenue_squares=float(squares or 0),
        )
        for variant, users, impressions, clicks, purchasers, revenue, squares in session.execute(
            sql.by_variant, {"as_of_date": day}
        )
    }


def readout_markdown(rows: list[MetricRow]) -> str:
    """A day's readout as a markdown table narrow enough for the UI's metadata panel."""
    return markdown_table(list(TABLE_COLUMNS), [table_cells(row) for row in rows])


def readout_figures(rows: list[MetricRow]) -> dict[str, dg.MetadataValue]:
    """A day's readout as numbers, `<metric>_control`, `_test`, `_lift`, `_p_value`
    (e.g. ctr_lift): the keys the asset's plots chart across partitions.

    A figure the day does not have (no p-value for impressions, no lift without a
    control value) is left out rather than charted as a gap."""
    figures = {}
    for row in rows:
        for suffix, value in (
            ("control", row.control_value),
            ("test", row.test_value),
            ("lift", row.lift),
            ("p_value", row.p_value),
        ):
            if value is not None and math.isfinite(value):
                figures[f"{row.metric}_{suffix}"] = dg.MetadataValue.float(float(value))
    return figures
