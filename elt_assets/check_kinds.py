"""What each kind of data test asserts: the query that returns its failing rows.

A test is a query whose rows are the failures, as in dbt: zero rows means it passed.
Every query here is built from identifiers that were validated when the schema file was
read, binds its values as parameters, and runs unchanged on DuckDB and PostgreSQL.
Two kinds compute their verdict in Python from a small aggregate (the row-count band and
the sample ratio test); their failing rows are the days that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from elt_assets.metadata import markdown_table
from elt_assets.partitions import days_in

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Target:
    """The relation under test and the predicate that limits a test to the written rows."""

    relation: str
    predicate: str
    params: Mapping[str, Any]


@dataclass
class Outcome:
    """A test's failing rows: how many, a few of them, and the query that found them."""

    failing_rows: int
    columns: list[str]
    sample: list[tuple[Any, ...]]
    sql: str
    params: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


def failing_rows_query(kind: str, args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    """The SQL (and its parameters) returning the rows that fail a row-level test."""
    return _QUERIES[kind](args, target)


def evaluate(connection: Connection, kind: str, args: Mapping[str, Any], target: Target) -> Outcome:
    """Run a test against the target and return its failing rows."""
    if kind in _EVALUATORS:
        return _EVALUATORS[kind](connection, args, target)
    sql, params = failing_rows_query(kind, args, target)
    params = {**target.params, **params}
    failing = connection.execute(sa.text(f"select count(*) from (\n{sql}\n) as failures"), params).scalar_one()
    sample = connection.execute(
        sa.text(f"select * from (\n{sql}\n) as failures order by 1 limit {SAMPLE_ROWS}"), params
    )
    return Outcome(int(failing), list(sample.keys()), [tuple(row) for row in sample], sql, params)


# ------------------------------------------------------------------ row-level tests


def _not_null(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    column = args["column"]
    return f"select *\nfrom {target.relation}\nwhere {target.predicate}\n    and {column} is null", {}


def _unique(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    # NULLs group together, as in dbt_utils.unique_combination_of_columns: a NULL key twice
    # is a duplicate here, and not_null says whether NULL is allowed at all.
    columns = ", ".join(args["columns"])
    return (
        f"select {columns}, count(*) as occurrences\nfrom {target.relation}\n"
        f"where {target.predicate}\ngroup by {columns}\nhaving count(*) > 1"
    ), {}


def _accepted_values(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    # As in dbt, NULL is neither accepted nor rejected here; not_null decides about it.
    params = {f"accepted_{index}": value for index, value in enumerate(args["values"])}
    placeholders = ", ".join(f":{name}" for name in params)
    column = args["column"]
    return (
        f"select *\nfrom {target.relation}\nwhere {target.predicate}\n"
        f"    and {column} not in ({placeholders})"
    ), params


def _accepted_range(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    column = args["column"]
    inclusive = args.get("inclusive", True)
    bounds, params = [], {}
    if args.get("min_value") is not None:
        bounds.append(f"{column} {'<' if inclusive else '<='} :min_value")
        params["min_value"] = args["min_value"]
    if args.get("max_value") is not None:
        bounds.append(f"{column} {'>' if inclusive else '>='} :max_value")
        params["max_value"] = args["max_value"]
    return (
        f"select *\nfrom {target.relation}\nwhere {target.predicate}\n    and ({' or '.join(bounds)})"
    ), params


def _column_pair_at_most(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    return (
        f"select *\nfrom {target.relation}\nwhere {target.predicate}\n"
        f"    and {args['column_a']} > {args['column_b']}"
    ), {}


def _relationships(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    # The window predicate names the child's columns unqualified; the subquery names the
    # parent's columns through its alias, so the two never mix.
    column, field_ = args["column"], args["field"]
    same_day = ""
    if args.get("same_day"):
        same_day = f"\n            and parent.{args['to_day_column']} = cast(child.{args['day_column']} as date)"
    return (
        f"select child.*\nfrom {target.relation} as child\nwhere {target.predicate}\n"
        f"    and child.{column} is not null\n    and not exists (\n"
        f"        select 1\n        from {args['to_relation']} as parent\n"
        f"        where parent.{field_} = child.{column}{same_day}\n    )"
    ), {}


def _one_current_version(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    key, flag = args["key"], args["current_column"]
    return (
        f"select {key}, sum(case when {flag} then 1 else 0 end) as current_versions, "
        f"count(*) as versions\nfrom {target.relation}\nwhere {target.predicate}\n"
        f"group by {key}\nhaving sum(case when {flag} then 1 else 0 end) <> 1"
    ), {}


def _no_overlapping_versions(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    # Each version must end no later than the next one starts; two versions starting at
    # the same moment overlap entirely.
    key, start, end = args["key"], args["valid_from"], args["valid_to"]
    return (
        f"select {key}, {start}, {end}, next_valid_from\nfrom (\n"
        f"    select\n        {key},\n        {start},\n        {end},\n"
        f"        lead({start}) over (partition by {key} order by {start}) as next_valid_from\n"
        f"    from {target.relation}\n    where {target.predicate}\n) as versions\n"
        f"where next_valid_from is not null\n"
        f"    and ({end} is null or {end} > next_valid_from or {start} = next_valid_from)"
    ), {}


_QUERIES: dict[str, Callable[[Mapping[str, Any], Target], tuple[str, dict[str, Any]]]] = {
    "not_null": _not_null,
    "unique": _unique,
    "accepted_values": _accepted_values,
    "accepted_range": _accepted_range,
    "column_pair_at_most": _column_pair_at_most,
    "relationships": _relationships,
    "one_current_version": _one_current_version,
    "no_overlapping_versions": _no_overlapping_versions,
}


# ------------------------------------------------------------------ tests over days


def _window_days(target: Target) -> list[date]:
    return days_in(target.params["window_start"], target.params["window_end"])


def _row_count_band(connection: Connection, args: Mapping[str, Any], target: Target) -> Outcome:
    """Each day's row count against the average of the trailing days that have rows."""
    column, lookback = args["day_column"], int(args["lookback_days"])
    params = {
        "history_start": target.params["window_start"] - timedelta(days=lookback),
        "window_end": target.params["window_end"],
    }
    sql = (
        f"select cast({column} as date) as day, count(*) as day_rows\nfrom {target.relation}\n"
        f"where {column} >= :history_start and {column} < :window_end\n"
        f"group by cast({column} as date)"
    )
    counts = {_as_date(day): int(rows) for day, rows in connection.execute(sa.text(sql), params)}
    failures, checked = [], []
    for day in _window_days(target):
        history = [counts[past] for past in days_in(day - timedelta(days=lookback), day) if counts.get(past)]
        if not history:
            continue  # the first day(s): nothing to compare with
        average = sum(history) / len(history)
        ratio = counts.get(day, 0) / average
        row = (day.isoformat(), counts.get(day, 0), round(average, 1), round(ratio, 3))
        checked.append(row)
        if not args["min_ratio"] <= ratio <= args["max_ratio"]:
            failures.append(row)
    columns = ["day", "rows", "trailing_average", "ratio"]
    return Outcome(
        failing_rows=len(failures),
        columns=columns,
        sample=failures[:SAMPLE_ROWS],
        sql=sql,
        params=params,
        details={"days_compared": len(checked), "by_day": markdown_table(columns, checked)},
    )


def _sample_ratio(connection: Connection, args: Mapping[str, Any], target: Target) -> Outcome:
    """Chi-square goodness of fit of each day's distinct keys per variant to the planned split."""
    from scipy.stats import chisquare  # scipy takes a while to import; only this test needs it

    column, key, day_column = args["column"], args["key"], args["day_column"]
    split: dict[str, float] = args["expected"]
    params = {f"variant_{index}": value for index, value in enumerate(split)}
    placeholders = ", ".join(f":{name}" for name in params)
    sql = (
        f"select cast({day_column} as date) as day, {column} as variant, count(distinct {key}) as keys\n"
        f"from {target.relation}\nwhere {target.predicate}\n    and {column} in ({placeholders})\n"
        f"group by cast({day_column} as date), {column}"
    )
    params = {**target.params, **params}
    observed: dict[date, dict[str, int]] = {}
    for day, variant, keys in connection.execute(sa.text(sql), params):
        observed.setdefault(_as_date(day), {})[variant] = int(keys)
    total_weight = sum(split.values())
    failures, tested, p_values = [], [], []
    for day in sorted(observed):
        counts = [observed[day].get(variant, 0) for variant in split]
        total = sum(counts)
        expected = [total * weight / total_weight for weight in split.values()]
        if min(expected) < 5:
            continue  # too few keys for the chi-square approximation to mean anything
        statistic, p_value = chisquare(counts, f_exp=expected)
        p_values.append(float(p_value))
        row = (day.isoformat(), *counts, round(float(statistic), 2), float(f"{p_value:.3g}"))
        tested.append(row)
        if p_value < args["p_value_threshold"]:
            failures.append(row)
    columns = ["day", *split, "chi_square", "p_value"]
    details: dict[str, Any] = {"days_tested": len(p_values), "by_day": markdown_table(columns, tested)}
    if p_values:
        details["min_p_value"] = min(p_values)
    return Outcome(
        failing_rows=len(failures),
        columns=columns,
        sample=failures[:SAMPLE_ROWS],
        sql=sql,
        params=params,
        details=details,
    )


def _as_date(value: Any) -> date:
    return value.date() if hasattr(value, "date") and callable(value.date) else value


_EVALUATORS: dict[str, Callable[[Connection, Mapping[str, Any], Target], Outcome]] = {
    "row_count_band": _row_count_band,
    "sample_ratio": _sample_ratio,
}

KINDS = tuple(_QUERIES) + tuple(_EVALUATORS)
