"""The A/B-test readout asset: the experiment's cumulative result as of each day."""

from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import sqlalchemy as sa

from elt_assets.metadata import day_metadata, markdown_table, relation_metadata, window_filter
from elt_assets.models import Model, Registry, registry
from elt_assets.partitions import daily_partitions, days_in, single_run_backfill, window_days
from elt_assets.readout import METRICS, VariantTotals, ctr_chart_markdown, readout
from elt_assets.resources import WarehouseResource
from elt_assets.warehouse import ensure_partition_index, ensure_schema, qualified, refresh_statistics

READOUT = Model(
    schema="analytics",
    name="ab_test_readout",
    materialization="table",
    partition_column="as_of_date",
    owners=("team:analytics",),
    description=(
        "One row per day and metric: the experiment's result with every user and event seen "
        "up to the end of that day (users, impressions, click-through rate, purchase "
        "conversion, revenue per user), control and test values, the relative lift of test "
        "over control with its 95% confidence interval and p-value. The users row carries "
        "the sample ratio check (chi-square against 50/50)."
    ),
    columns={
        "as_of_date": "The last day the figures include.",
        "metric": f"One of {', '.join(METRICS)}.",
        "control_value": "The metric in the control group.",
        "test_value": "The metric in the test group.",
        "lift": "test_value / control_value - 1.",
        "lift_ci_low": "Lower bound of the lift's 95% confidence interval.",
        "lift_ci_high": "Upper bound of the lift's 95% confidence interval.",
        "p_value": "Two-sided p-value (users: the sample ratio chi-square test).",
        "flagged": "Significant at 5% (users: a sample ratio mismatch at 0.1%).",
    },
)
COLUMNS = list(READOUT.columns)
# The readout's working table of per-user running totals (sql/analytics/ab_test_readout.sql).
USER_TOTALS = "ab_test_user_totals"
# Before any partition: "sum from the beginning" when a day has no previous totals.
BEGINNING = date(1900, 1, 1)
# The chart shows this many days up to the window's end.
CHART_DAYS = 60


@dg.asset(
    key=["analytics", "ab_test_readout"],
    deps=[dg.AssetKey(["analytics", "analytics_variant_user_daily"])],
    description=READOUT.description,
    group_name="analytics",
    owners=list(READOUT.owners),
    kinds={"python", "sql", "table"},
    partitions_def=daily_partitions,
    backfill_policy=single_run_backfill,
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=name, description=text) for name, text in READOUT.columns.items()]
        )
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
    rows: list[dict] = []
    with warehouse.warehouse().transaction() as connection:
        ensure_schema(connection, READOUT.schema)
        for ddl in ("table", "user_totals_table"):
            connection.execute(sa.text(READOUT.metric_path(ddl).read_text(encoding="utf-8")))
        ensure_partition_index(connection, READOUT.schema, READOUT.name, READOUT.partition_column)
        ensure_partition_index(connection, READOUT.schema, USER_TOTALS, "as_of_date")
        window = {"window_start": first_day, "window_end": end_day}
        for table in (READOUT.qualified_name, qualified(READOUT.schema, USER_TOTALS)):
            connection.execute(sa.text(f"delete from {table} where {window_filter('as_of_date')}"), window)
        for day in days_in(first_day, end_day):
            by_variant = _user_totals(connection, sql, day, context.log)
            if not all(by_variant.get(variant) and by_variant[variant].users for variant in ("control", "test")):
                context.log.warning(f"{day}: no users in both control and test yet; no readout for this day")
                continue
            rows += [{"as_of_date": day, **vars(row)} for row in readout(by_variant)]
        if rows:
            placeholders = ", ".join(f":{name}" for name in COLUMNS)
            connection.execute(
                sa.text(f"insert into {READOUT.qualified_name} ({', '.join(COLUMNS)}) values ({placeholders})"),
                rows,
            )
        for table in (READOUT.name, USER_TOTALS):
            refresh_statistics(connection, READOUT.schema, table)
        metadata = relation_metadata(connection, READOUT, first_day, end_day, sql.totals)
        for day in days_in(first_day, end_day):
            context.add_asset_metadata(day_metadata(connection, READOUT, day), partition_key=day.isoformat())
        last_day = end_day - timedelta(days=1)
        daily = connection.execute(
            sa.text(sql.daily_ctr), {"chart_start": end_day - timedelta(days=CHART_DAYS), "window_end": end_day}
        ).all()
    latest = [row for row in rows if row["as_of_date"] == last_day]
    metadata["readout"] = dg.MetadataValue.md(
        markdown_table(COLUMNS[1:], [tuple(_rounded(row[name]) for name in COLUMNS[1:]) for row in latest])
    )
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
    carried_sums: str  # the previous day's totals, added up
    history_sums: str  # the history they stand for, added up
    by_variant: str  # a day's totals summed per variant
    daily_ctr: str  # the chart's daily click-through rate

    @classmethod
    def render(cls, models: Registry) -> "ReadoutSql":
        metrics = ("carried_sums", "history_sums", "by_variant", "daily_ctr")
        return cls(
            totals=models.render(READOUT).text,
            **{name: models.render_metric(READOUT, name).text for name in metrics},
        )


def _user_totals(connection: sa.Connection, sql: ReadoutSql, day: date, log) -> dict[str, VariantTotals]:
    """Write the day's per-user totals and return their sums per variant.

    The previous day's totals are carried forward only if they still add up to the
    history before this day: after late data for an earlier day was loaded, they do not,
    and the totals are summed from the whole history instead (and are current again from
    this day on).
    """
    previous_day = day - timedelta(days=1)
    carried_users, *carried = connection.execute(sa.text(sql.carried_sums), {"previous_day": previous_day}).one()
    current = False
    if carried_users:
        history = connection.execute(sa.text(sql.history_sums), {"history_end": day}).one()
        current = [int(value) for value in carried] == [int(value) for value in history]
        if not current:
            log.info(f"{day}: the totals of {previous_day} no longer match its history; summing the whole history")
    # Without current totals to carry, carry nothing and sum the whole history.
    params = {
        "previous_day": previous_day if current else BEGINNING,
        "history_start": day if current else BEGINNING,
        "window_end": day + timedelta(days=1),
        "as_of_date": day,
    }
    connection.execute(
        sa.text(
            f"insert into {qualified(READOUT.schema, USER_TOTALS)} "
            f"(as_of_date, variant_id, user_id, impressions, clicks, purchases, revenue)\n"
            f"select cast(:as_of_date as date), variant_id, user_id, impressions, clicks, purchases, revenue\n"
            f"from (\n{sql.totals}\n) as totals"
        ),
        params,
    )
    return {
        variant: VariantTotals(
            users=int(users),
            impressions=float(impressions or 0),
            clicks=float(clicks or 0),
            purchasers=int(purchasers or 0),
            revenue=float(revenue or 0),
            revenue_squares=float(squares or 0),
        )
        for variant, users, impressions, clicks, purchasers, revenue, squares in connection.execute(
            sa.text(sql.by_variant), {"as_of_date": day}
        )
    }


def _rounded(value):
    return f"{value:.4g}" if isinstance(value, float) else value
