"""Data tests as asset checks, declared beside each model in `sql/<schema>/_models.yml`.

As in dbt's schema files, a model lists `tests:` and so may each of its columns. Each
test becomes a Dagster asset check on the model's asset:

- Most run in the model's own step, right after its window was written: the asset
  declares them as `check_specs` and yields their results after its MaterializeResult.
- A `relationships` test reads another model too, which may be built later in the same
  run (the fact's users are looked up in dim_user), so it is an `@asset_check` of its own
  that Dagster runs once both are built.

A test of severity `error` (the default) is blocking: when it fails, Dagster fails the
step (or the check's step) and does not build that run's downstream assets; a `warn`
test only reports. Results carry the failing row count and a sample of failing rows.
"""

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import dagster as dg

from elt_assets.engines.base import Engine, Session, validate_identifier, window_filter

from elt_assets.checks import stats as check_stats
from elt_assets.checks.kinds import (
    DEFAULT_ARGS,
    KINDS,
    REQUIRED_ARGS,
    Outcome,
    Target,
    describe,
    evaluate_rows,
)
from elt_assets.models.metadata import markdown_table, window_text
from elt_assets.models.sql_text import render_literals
from elt_assets.models.registry import Model, Registry, registry
from elt_assets.partitions import window_days
from elt_assets.resources import WarehouseResource

SEVERITIES = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}
SCOPES = ("window", "table")
# Arguments that name columns of the model under test (validated), and those that name the test.
_COLUMN_ARGS = (
    "column", "columns", "column_a", "column_b", "key",
    "current_column", "valid_from", "valid_to", "day_column",
)
_NAME_ARGS = ("column", "columns", "column_a", "column_b", "key")


@dataclass(frozen=True)
class DataTest:
    """One test of one model, with its arguments resolved and validated."""

    model: Model
    kind: str
    name: str
    severity: str
    scope: str
    args: Mapping[str, Any]
    # Why the test blocks or only warns, from the schema file's `why:`; shown in the UI.
    why: str = ""

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.model.schema, self.model.name])

    @property
    def check_key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.asset_key, self.name)

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    @property
    def in_model_step(self) -> bool:
        """False for tests that read another model, which may be built after this one."""
        return self.kind != "relationships"

    @property
    def description(self) -> str:
        scope = ", whole table" if self.scope == "table" else ""
        text = f"{describe(self.kind, self.args)} ({self.severity}{scope})"
        return f"{text}. {self.why}" if self.why else text

    def spec(self) -> dg.AssetCheckSpec:
        """The check as Dagster declares it: blocking exactly when the severity is error."""
        return dg.AssetCheckSpec(
            name=self.name,
            asset=self.asset_key,
            description=self.description,
            blocking=self.blocking,
            additional_deps=[self.args["to_key"]] if self.kind == "relationships" else None,
            metadata={"kind": self.kind, "severity": self.severity, "scope": self.scope, "why": self.why},
        )


# ------------------------------------------------------------------ reading the schema files


def model_tests(model: Model, models: Registry) -> list[DataTest]:
    """The model's tests from its schema file, checked against its columns."""
    tests = [_resolve(model, dict(raw), models) for raw in model.tests]
    names = [test.name for test in tests]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"{model.qualified_name}: tests named twice: {', '.join(duplicated)} (set name:)")
    return tests


@cache
def all_tests() -> tuple[DataTest, ...]:
    """Every test of every model of the project's registry."""
    models = registry()
    return tuple(test for model in models.models.values() for test in model_tests(model, models))


def _resolve(model: Model, raw: dict[str, Any], models: Registry) -> DataTest:
    where = f"{model.qualified_name}: test {raw}"
    kind = raw.pop("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    severity = raw.pop("severity", "error")
    scope = raw.pop("scope", "window")
    name = raw.pop("name", None)
    why = " ".join(str(raw.pop("why", "")).split())
    if severity not in SEVERITIES or scope not in SCOPES:
        raise ValueError(f"{where}: severity must be error or warn, scope window or table")
    if kind == "unique" and "column" in raw and "columns" not in raw:
        raw["columns"] = [raw.pop("column")]  # a column's unique test
    missing = [arg for arg in REQUIRED_ARGS[kind] if arg not in raw]
    if missing:
        raise ValueError(f"{where}: {kind} needs {', '.join(missing)}")
    args = _defaults(kind, model, raw, models, where)
    if kind == "accepted_values" and not (isinstance(args["values"], list) and args["values"]):
        raise ValueError(f"{where}: values must be a non-empty list")
    if kind == "accepted_range" and args.get("min_value") is None and args.get("max_value") is None:
        raise ValueError(f"{where}: accepted_range needs min_value, max_value or both")
    if kind == "sample_ratio" and not (
        isinstance(args["expected"], dict) and all(weight > 0 for weight in args["expected"].values())
    ):
        raise ValueError(f"{where}: expected maps each variant to its positive share")
    # A test reading an upstream model's rows (`of`) names that model's columns.
    columns_of = models[args["of"]] if "of" in args else model
    for column in _columns(args):
        if validate_identifier(column) not in columns_of.columns:
            raise ValueError(f"{where}: {columns_of.qualified_name} has no column {column!r}")
    if name is None:
        # e.g. not_null_user_id, unique_user_id_datestamp_item_id, relationships_user_id_dim_user
        named = ("column",) if kind == "sample_ratio" else _NAME_ARGS
        parts = [kind, *_columns(args, named)] + ([args["to"]] if kind == "relationships" else [])
        name = "_".join(parts)
    return DataTest(model, kind, validate_identifier(name[:63]), severity, scope, args, why)


def _defaults(kind: str, model: Model, raw: dict[str, Any], models: Registry, where: str) -> dict[str, Any]:
    args = {**DEFAULT_ARGS.get(kind, {}), **raw}
    if kind in check_stats.EVALUATORS:
        args.setdefault("day_column", model.partition_column)
    if kind == "relationships":
        parent = models[args["to"]]
        if args["field"] not in parent.columns:
            raise ValueError(f"{where}: {parent.qualified_name} has no column {args['field']!r}")
        validate_identifier(args["field"])
        args.update(to_relation=parent.qualified_name, to_key=dg.AssetKey([parent.schema, parent.name]))
        if args.get("same_day"):
            args.update(
                day_column=model.partition_column,
                to_day_column=validate_identifier(parent.partition_column or ""),
            )
    if kind == "no_conflicting_versions":
        source = models[args["of"]]
        if source not in models.upstream(model):
            raise ValueError(f"{where}: {model.name} does not read {source.name}")
        # The window's predicate names the model's partition column and is applied to the
        # upstream rows, which must be partitioned the same way.
        if source.partition_column != model.partition_column:
            raise ValueError(f"{where}: {source.name} is not partitioned by {model.partition_column}")
        args.update(
            key=_as_list(args["key"]),
            columns=_as_list(args["columns"]),
            of_relation=(
                f"(\n{models.render(source).text})" if source.materialization == "ephemeral" else source.qualified_name
            ),
        )
    return args


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _columns(args: Mapping[str, Any], names: tuple[str, ...] = _COLUMN_ARGS) -> list[str]:
    """The model's own columns that the given arguments name, in argument order."""
    columns: list[str] = []
    for name in names:
        value = args.get(name)
        if value:
            columns.extend(value if isinstance(value, list) else [value])
    return columns


# ------------------------------------------------------------------ evaluating


def evaluate_test(session: Session, test: DataTest, first_day: date, end_day: date) -> dg.AssetCheckResult:
    """Run one test on the window [first_day, end_day) (or the whole table) and report it."""
    whole_table = test.scope == "table" or not test.model.partition_column
    target = Target(
        relation=test.model.qualified_name,
        predicate="1 = 1" if whole_table else window_filter(test.model.partition_column),
        params={"window_start": first_day, "window_end": end_day},
    )
    if test.kind in check_stats.EVALUATORS:
        outcome = check_stats.EVALUATORS[test.kind](session, test.args, target)
    else:
        outcome = evaluate_rows(session, test.kind, test.args, target)
    return _result(test, outcome, "whole table" if whole_table else window_text(first_day, end_day))


def evaluate_model_tests(
    engine: Engine,
    model: Model,
    first_day: date,
    end_day: date,
    selected: set[dg.AssetCheckKey] | None = None,
) -> list[dg.AssetCheckResult]:
    """The results of the model's in-step tests that the run selected."""
    tests = [
        test
        for test in all_tests()
        if test.model.name == model.name
        and test.in_model_step
        and (selected is None or test.check_key in selected)
    ]
    if not tests:
        return []
    # One session for all of them: opening a DuckDB file costs more than most tests.
    with engine.transaction() as session:
        return [evaluate_test(session, test, first_day, end_day) for test in tests]


def in_step_check_specs(model: Model) -> list[dg.AssetCheckSpec]:
    """The check specs the model's asset declares and evaluates in its own step."""
    return [test.spec() for test in all_tests() if test.model.name == model.name and test.in_model_step]


def _result(test: DataTest, outcome: Outcome, scope_text: str) -> dg.AssetCheckResult:
    passed = outcome.failing_rows == 0
    metadata: dict[str, Any] = {
        "failing_rows": dg.MetadataValue.int(outcome.failing_rows),
        "sample": dg.MetadataValue.md(
            markdown_table(outcome.columns, outcome.sample) if outcome.sample else "(no failing rows)"
        ),
        "scope": dg.MetadataValue.text(scope_text),
        # With its values written in, the query can be pasted into a SQL client as is.
        "query": dg.MetadataValue.md(f"```sql\n{render_literals(outcome.sql, outcome.params)}\n```"),
        "severity": dg.MetadataValue.text(test.severity),
    }
    for key, value in outcome.details.items():
        metadata[key] = dg.MetadataValue.md(value) if key == "by_day" else value
    verdict = "passed" if passed else f"{outcome.failing_rows} failing row(s)"
    description = f"{verdict} in {scope_text}: {describe(test.kind, test.args)}"
    if not passed and test.why:
        description += f". {test.why}"  # a failure says whether it stopped anything, and why
    return dg.AssetCheckResult(
        check_name=test.name,
        asset_key=test.asset_key,
        passed=passed,
        severity=SEVERITIES[test.severity],
        description=description,
        metadata=metadata,
    )


# ------------------------------------------------------------------ checks with a step of their own


def build_standalone_checks() -> list[dg.AssetChecksDefinition]:
    """An @asset_check per test that reads another model: it runs once both are built."""
    return [_standalone_check(test) for test in all_tests() if not test.in_model_step]


def _standalone_check(test: DataTest) -> dg.AssetChecksDefinition:
    spec = test.spec()

    @dg.asset_check(
        asset=spec.asset_key,
        name=spec.name,
        description=spec.description,
        blocking=spec.blocking,
        additional_deps=spec.additional_deps,
        metadata=spec.metadata,
    )
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        this = test
        if context.has_partition_key or context.has_partition_key_range:
            first_day, end_day = window_days(context.partition_time_window)
        else:
            # Launched on its own, outside a partitioned run: test every row there is.
            this = dataclasses.replace(test, scope="table")
            first_day, end_day = date.min, date.max
        with warehouse.engine().transaction() as session:
            return evaluate_test(session, this, first_day, end_day)

    return _check
