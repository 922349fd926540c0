"""Which windows of each model the warehouse holds, and the build-order rule they enforce.

A day of some models is computed from every earlier day, not from that day alone:
`core.dim_user_variant` keeps a user's first assignment over the whole history,
`core.dim_user_metadata` closes versions over it, `core.dim_user` reads both dimensions up
to its day, and the readout sums the analytics from the first day. Their schema files say
so with `depends_on_past: true` (Airflow's name for the same rule). Building such a day
before the days it reads gives tables that look right and are not: a user assigned on an
earlier day that is not loaded yet would be "first assigned" twice.

So each write of a model's window is logged in the warehouse itself, in `meta.build_log`
(one row per window written: model, window_start, window_end, built_at), in the same unit
of work as the write. Before a depends-on-past model writes [first, end), every day from
the first partition up to `first` of the model itself, and up to `end` of every table it
reads (through views), must be in that log; otherwise the run fails and says which days
to build first. A range run builds upstream days before this step, so it passes. The log
lives in the warehouse, not in Dagster's instance, so that it describes the tables it
guards whichever instance ran them (ELT_BUILD_ORDER=warn only warns, e.g. for a warehouse
built before the log existed).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from elt_assets import settings
from elt_assets.engines.base import Engine, Session, Statement, WarehouseError
from elt_assets.models.registry import Model, Registry
from elt_assets.partitions import as_date

LOG = Model(
    schema="meta",
    name="build_log",
    materialization="table",
    partition_column="window_start",
    description="One row per window of a model written to the warehouse.",
)
LOG_DDL = """create table if not exists meta.build_log (
    model varchar(128) not null,
    window_start date not null,
    window_end date not null,
    built_at timestamp not null
)"""


class BuildOrderError(WarehouseError):
    """A depends-on-past window was asked for before the days it is computed from."""


def log_statements(engine: Engine, model: Model, first_day: date, end_day: date) -> list[Statement]:
    """Record that the model's window [first_day, end_day) was written."""
    return [
        *engine.create_schema(LOG.schema),
        *engine.declare_table(LOG, LOG_DDL),
        Statement(
            "insert into meta.build_log (model, window_start, window_end, built_at) "
            "values (:model, :first_day, :end_day, :built_at)",
            {
                "model": model.qualified_name,
                "first_day": first_day,
                "end_day": end_day,
                "built_at": datetime.now(UTC).replace(tzinfo=None),
            },
        ),
    ]


def record_build(engine: Engine, session: Session, model: Model, first_day: date, end_day: date) -> None:
    for statement in log_statements(engine, model, first_day, end_day):
        statement.run(engine, session)


def tables_read(registry: Registry, model: Model) -> list[Model]:
    """The models with rows of their own that `model` reads, looking through views and
    ephemeral models to the tables beneath them."""
    found: dict[str, Model] = {}
    pending = list(registry.upstream(model))
    while pending:
        upstream = pending.pop()
        if upstream.materialization in ("view", "ephemeral"):
            pending.extend(registry.upstream(upstream))
        else:
            found[upstream.qualified_name] = upstream
    return sorted(found.values(), key=lambda found_model: found_model.qualified_name)


def built_days(engine: Engine, session: Session, names: list[str], before: date) -> dict[str, set[date]]:
    """The days before `before` each named model has had written, from the log."""
    days: dict[str, set[date]] = {name: set() for name in names}
    if not names or not engine.table_columns(session, LOG.schema, LOG.name):
        return days
    start = settings.start_date()
    for name in names:
        rows = session.execute(
            "select window_start, window_end from meta.build_log where model = :model "
            "and window_start < :before and window_end > :start",
            {"model": name, "before": before, "start": start},
        ).all()
        for window_start, window_end in rows:
            day, end = max(as_date(window_start), start), min(as_date(window_end), before)
            while day < end:
                days[name].add(day)
                day += timedelta(days=1)
    return days


def missing_days(wanted: date, end: date, have: set[date]) -> list[date]:
    days, day = [], wanted
    while day < end:
        if day not in have:
            days.append(day)
        day += timedelta(days=1)
    return days


def check_build_order(
    engine: Engine, session: Session, registry: Registry, model: Model, first_day: date, end_day: date
) -> list[str]:
    """Refuse a depends-on-past window whose earlier days are not built (see the module).

    Returns the problems found when ELT_BUILD_ORDER=warn (the caller logs them); raises
    BuildOrderError otherwise."""
    if not model.depends_on_past:
        return []
    start = settings.start_date()
    needs = {model.qualified_name: first_day}
    for upstream in tables_read(registry, model):
        needs[upstream.qualified_name] = end_day
    have = built_days(engine, session, list(needs), max(needs.values()))
    problems = []
    for name, until in needs.items():
        missing = missing_days(start, until, have[name])
        if missing:
            problems.append(f"{name} has not been built for {_ranges(missing)}")
    if not problems:
        return []
    message = (
        f"{model.qualified_name} for [{first_day}, {end_day}) is computed from every earlier day, "
        f"but {'; '.join(problems)}. Build the earlier days first, or the whole range in one run: "
        f"dagster asset materialize -m elt_assets.definitions --select '*' "
        f"--partition-range {start}...{end_day - timedelta(days=1)} (or, if there is no data "
        f"before some later day, set ELT_START_DATE to that day)"
    )
    if settings.build_order_mode() == "warn":
        return [message]
    raise BuildOrderError(message)


def _ranges(days: list[date]) -> str:
    """2023-06-01..2023-06-03, 2023-06-05 (consecutive days joined)."""
    spans: list[list[date]] = []
    for day in days:
        if spans and day - spans[-1][1] == timedelta(days=1):
            spans[-1][1] = day
        else:
            spans.append([day, day])
    shown = [f"{first}" if first == last else f"{first}..{last}" for first, last in spans[:5]]
    return ", ".join(shown) + (f" and {len(spans) - 5} more" if len(spans) > 5 else "")
