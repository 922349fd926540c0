"""What each kind of data test asserts: its arguments, its words, its failing rows.

A row-level test is a query whose rows are the failures, as in dbt: zero rows means it
passed. Every query here is built from identifiers that were validated when the schema
file was read, binds its values as parameters, and runs unchanged on DuckDB and
PostgreSQL. The tests over days (row-count band, sample ratio) are in check_stats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from elt_assets.engines.base import Session

SAMPLE_ROWS = 5
# Arguments each kind needs, besides the optional severity, scope and name.
REQUIRED_ARGS = {
    "not_null": ("column",),
    "unique": ("columns",),
    "accepted_values": ("column", "values"),
    "accepted_range": ("column",),
    "column_pair_at_most": ("column_a", "column_b"),
    "relationships": ("column", "to", "field"),
    "one_current_version": ("key",),
    "no_overlapping_versions": ("key",),
    "no_conflicting_versions": ("of", "key", "columns"),
    "row_count_band": (),
    "sample_ratio": ("column", "key"),
}
KINDS = tuple(REQUIRED_ARGS)
# What an argument left out means.
DEFAULT_ARGS = {
    "row_count_band": {"lookback_days": 7, "min_ratio": 0.5, "max_ratio": 2.0},
    "sample_ratio": {"expected": {"control": 0.5, "test": 0.5}, "p_value_threshold": 0.001},
    "one_current_version": {"current_column": "is_current"},
    "no_overlapping_versions": {"valid_from": "valid_from", "valid_to": "valid_to"},
}


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


def describe(kind: str, a: Mapping[str, Any]) -> str:
    """What a test asserts, in words, for the UI."""
    match kind:
        case "not_null":
            return f"{a['column']} is never NULL"
        case "unique":
            return f"({', '.join(a['columns'])}) identifies one row"
        case "accepted_values":
            return f"{a['column']} is one of {', '.join(map(str, a['values']))}"
        case "accepted_range":
            equal = "=" if a.get("inclusive", True) else ""
            bounds = [
                f"{a['column']} {operator} {a[bound]}"
                for bound, operator in (("min_value", ">" + equal), ("max_value", "<" + equal))
                if a.get(bound) is not None
            ]
            return " and ".join(bounds)
        case "column_pair_at_most":
            return f"{a['column_a']} <= {a['column_b']}"
        case "relationships":
            day = " on the same day" if a.get("same_day") else ""
            grain = f"{a['column']} and day" if a.get("same_day") else a["column"]
            return (
                f"every {a['column']} has a row in {a['to_relation']} ({a['field']}){day}; "
                f"a failing row is a {grain} without one, with its count of rows"
            )
        case "one_current_version":
            return f"exactly one row per {a['key']} has {a['current_column']} true"
        case "no_overlapping_versions":
            return f"the [{a['valid_from']}, {a['valid_to']}) windows of a {a['key']} do not overlap"
        case "no_conflicting_versions":
            return f"rows of {a['of']} with the same ({', '.join(a['key'])}) agree on {', '.join(a['columns'])}"
        case "row_count_band":
            return (
                f"each day's row count is within {a['min_ratio']}x..{a['max_ratio']}x of the "
                f"average of the {a['lookback_days']} days before"
            )
        case "sample_ratio":
            split = "/".join(f"{weight:g}" for weight in a["expected"].values())
            return (
                f"each day's distinct {a['key']} per {a['column']} ({'/'.join(a['expected'])}) "
                f"fit a {split} split (chi-square p >= {a['p_value_threshold']})"
            )
    raise ValueError(f"unknown test kind {kind!r}")


def failing_rows_query(kind: str, args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    """The SQL (and its parameters) returning the rows that fail a row-level test."""
    return _QUERIES[kind](args, target)


def evaluate_rows(session: Session, kind: str, args: Mapping[str, Any], target: Target) -> Outcome:
    """Run a row-level test against the target: how many rows fail, and a few of them."""
    sql, params = failing_rows_query(kind, args, target)
    params = {**target.params, **params}
    failing = session.execute(f"select count(*) from (\n{sql}\n) as failures", params).scalar_one()
    if not failing:
        return Outcome(0, [], [], sql, params)  # most tests pass: skip the second query
    # `offset 0` keeps the failing rows' query planned on its own: under the LIMIT,
    # PostgreSQL otherwise picked a fast-start nested loop for an anti-join (the
    # relationships test) that ran for minutes instead of a second.
    sample = session.execute(
        f"select * from (\n{sql}\noffset 0\n) as failures order by 1 limit {SAMPLE_ROWS}", params
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
    # A failing row is one key value (and day) of the child without a parent row, with the
    # number of child rows that carry it: the child's rows are grouped first, so the lookup
    # runs once per user-day instead of once per event (about 40% less time on the fact).
    # The window predicate names the child's columns unqualified, inside the grouping; the
    # lookup names the parent's columns through its alias, so the two never mix.
    column, field_ = args["column"], args["field"]
    keys, day_select, same_day = f"child.{column}", "", ""
    if args.get("same_day"):
        day_of_row = f"cast(child.{args['day_column']} as date)"
        keys += f", {day_of_row}"
        day_select = f", {day_of_row} as on_day"
        # The bounds repeat what the day match implies; they let the database read only the
        # window's days of the parent instead of its whole history.
        day = f"parent.{args['to_day_column']}"
        same_day = (
            f"\n            and {day} = unmatched.on_day"
            f"\n            and {day} >= :window_start and {day} < :window_end"
        )
    return (
        f"select * from (\n    select child.{column}{day_select}, count(*) as child_rows\n"
        f"    from {target.relation} as child\n    where {target.predicate}\n"
        f"        and child.{column} is not null\n    group by {keys}\n) as unmatched\n"
        f"where not exists (\n        select 1\n        from {args['to_relation']} as parent\n"
        f"        where parent.{field_} = unmatched.{column}{same_day}\n    )"
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


def _no_conflicting_versions(args: Mapping[str, Any], target: Target) -> tuple[str, dict[str, Any]]:
    # Read in the upstream model (`of`), where every landed version still is; the model
    # under test keeps one per key. A key fails when a version of it landed in the window
    # and its versions, landed on any day, differ in a compared column (NULL is a value
    # here); identical copies of a version are no conflict. One row per key. The subquery
    # is correlated by equality only, which every engine (Spark too) decorrelates.
    source, keys, columns = args["of_relation"], args["key"], args["columns"]
    key_list = ", ".join(keys)
    present = " and ".join(f"{key} is not null" for key in keys)
    differ = "\n                or ".join(
        f"count(distinct {column}) > 1 or (count({column}) > 0 and count({column}) < count(*))"
        for column in columns
    )
    same_key = " and ".join(f"conflicting.{key} = landed.{key}" for key in keys)
    return (
        f"select {key_list}, count(*) as landed_rows\nfrom {source} as landed\n"
        f"where {target.predicate}\n    and exists (\n"
        f"        select 1\n        from (\n"
        f"            select {key_list}\n            from {source} as versions\n"
        f"            where {present}\n            group by {key_list}\n"
        f"            having {differ}\n        ) as conflicting\n"
        f"        where {same_key}\n    )\n"
        f"group by {key_list}"
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
    "no_conflicting_versions": _no_conflicting_versions,
}
