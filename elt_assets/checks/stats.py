"""Data tests over days, decided in Python from a small aggregate per day.

The row-count band compares each day's rows with the trailing days' average; the sample
ratio test fits each day's variant split to the planned one (chi-square). Their failing
rows are the days that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

from elt_assets.engines.base import Session

from elt_assets.checks.kinds import SAMPLE_ROWS, Outcome, Target
from elt_assets.readout.distributions import chi_square_sf
from elt_assets.models.metadata import markdown_table
from elt_assets.partitions import as_date, days_in


def _window_days(target: Target) -> list[date]:
    return days_in(target.params["window_start"], target.params["window_end"])


def _row_count_band(session: Session, args: Mapping[str, Any], target: Target) -> Outcome:
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
    counts = {as_date(day): int(rows) for day, rows in session.execute(sql, params)}
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


def _sample_ratio(session: Session, args: Mapping[str, Any], target: Target) -> Outcome:
    """Chi-square goodness of fit of each day's distinct keys per variant to the planned split."""
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
    for day, variant, keys in session.execute(sql, params):
        observed.setdefault(as_date(day), {})[variant] = int(keys)
    total_weight = sum(split.values())
    failures, tested, p_values = [], [], []
    for day in sorted(observed):
        counts = [observed[day].get(variant, 0) for variant in split]
        total = sum(counts)
        expected = [total * weight / total_weight for weight in split.values()]
        if min(expected) < 5:
            continue  # too few keys for the chi-square approximation to mean anything
        statistic = sum((seen - wanted) ** 2 / wanted for seen, wanted in zip(counts, expected))
        p_value = chi_square_sf(statistic, len(counts) - 1)
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


EVALUATORS: dict[str, Callable[[Session, Mapping[str, Any], Target], Outcome]] = {
    "row_count_band": _row_count_band,
    "sample_ratio": _sample_ratio,
}
