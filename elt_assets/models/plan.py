"""One plan per model and window: the statements its materialization executes, in order.

A run executes the plan in one unit of work (one transaction where the engine has them);
`elt-assets compile` prints the same plan. What a materialization does depends on the
warehouse's catalog (does the table exist, do its columns match the model's), so a plan
is built against a session, which it only reads.

- view: (re)create the view; the window only scopes the reported counts.
- ephemeral: nothing is built; downstream models inline the SQL as a CTE.
- table / incremental / snapshot: replace the window's rows with the model's rows for the
  window. On a change of columns a table is rebuilt (its other partitions must be re-run),
  while an incremental or snapshot model fails, like dbt's on_schema_change='fail'.
- snapshot: as table, then valid_to/is_current are recomputed over the whole history of
  every key the window touched (SCD Type 2).
- landing: the raw table's DDL, then the engine's bulk load of the window's files.
- python: the model's own code writes it (the readout); its plan is empty.

Every window written is logged in meta.build_log, in the same unit of work, for the
build-order rule of depends-on-past models (elt_assets.models.build_log).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from elt_assets.engines.base import Engine, LoadFiles, Session, Statement, WarehouseError
from elt_assets.models.build_log import log_statements
from elt_assets.models.registry import Model, Registry
from elt_assets.settings import start_date

if TYPE_CHECKING:
    from elt_assets.landing.zone import LandingFile

Step = Statement | LoadFiles


@dataclass
class Plan:
    """A model's steps for the window [first_day, end_day), and notes on what they do."""

    model: Model
    first_day: date
    end_day: date
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    creates_table: bool = False

    def execute(self, engine: Engine, session: Session) -> int:
        """Run every step in order; returns the rows a landing load brought in (else 0)."""
        loaded = 0
        for step in self.steps:
            result = step.run(engine, session)
            if isinstance(step, LoadFiles):
                loaded = result
        return loaded

    def script(self, engine: Engine) -> str:
        """The plan as one script: a header, then the steps, as one transaction where the
        engine runs them in one."""
        model = self.model
        header = [
            f"-- {model.qualified_name} ({model.materialization}) for [{self.first_day}, {self.end_day})",
            f"-- compiled against {engine.display_url}",
            *(f"-- {note}" for note in self.notes),
        ]
        if not self.steps:
            return "\n".join(header) + "\n"
        body = "\n\n".join(_terminated(step.script(engine)) for step in self.steps)
        if not engine.transactional:
            return "\n".join(header) + f"\n\n{body}\n"
        return "\n".join(header) + f"\nbegin;\n\n{body}\n\ncommit;\n"


def _terminated(text: str) -> str:
    """The statement and its semicolon (none after a comment-only step), on a line of its
    own if the last line is a comment."""
    text = text.strip()
    if all(line.startswith("--") for line in text.splitlines()):
        return text
    return text + ("\n;" if "--" in text.splitlines()[-1] else ";")


def check_window(model: Model, first_day: date, end_day: date) -> None:
    """Refuse windows that are empty or start before the first partition."""
    if end_day <= first_day:
        raise ValueError(f"{model.qualified_name}: empty window {first_day}..{end_day}")
    if first_day < start_date():
        raise ValueError(
            f"{model.qualified_name}: partition {first_day} is before the first partition "
            f"{start_date()} (ELT_START_DATE)"
        )


def plan_model(
    engine: Engine,
    session: Session,
    registry: Registry,
    model: Model,
    first_day: date,
    end_day: date,
    files: list[LandingFile] | None = None,
) -> Plan:
    """What the model's materialization executes for [first_day, end_day), given the
    catalog the session sees. `files` are a landing model's files for the window."""
    check_window(model, first_day, end_day)
    window = {"window_start": first_day, "window_end": end_day}
    plan = Plan(model, first_day, end_day, steps=list(engine.create_schema(model.schema)))
    if model.materialization == "landing":
        plan.steps += engine.declare_table(model, model.sql_path.read_text(encoding="utf-8").strip())
        plan.steps.append(LoadFiles(model, tuple(files or ()), first_day, end_day))
        plan.steps += engine.after_create(model) + engine.after_write(model)
        plan.steps += log_statements(engine, model, first_day, end_day)
        return plan
    if model.materialization == "ephemeral":
        plan.notes.append("ephemeral: nothing is built; models that ref() it inline its SQL as a CTE")
        return plan
    if model.materialization == "python":
        plan.notes.append("python: its rows are computed by the model's code from its SQL and queries")
        return plan
    sql = registry.render(model).text
    if model.materialization == "view":
        plan.steps += engine.create_view(model, sql)
        return plan

    existing = [column.name for column in engine.table_columns(session, model.schema, model.name)]
    if existing:
        columns = engine.query_columns(session, sql, window)
        if columns != existing:
            if model.materialization != "table":
                raise WarehouseError(
                    f"{model.qualified_name}: the model's columns ({', '.join(columns)}) differ from the "
                    f"table's ({', '.join(existing)}); a {model.materialization} model does not change its "
                    "schema on its own: drop the table and backfill every partition"
                )
            plan.steps += engine.drop_table(model)
            plan.notes.append("the model's columns changed: the table is rebuilt (re-run its other partitions)")
            existing = []
    if not existing:
        plan.creates_table = True
        plan.steps += engine.create_table(model, sql, window) + engine.after_create(model)
    if model.materialization == "snapshot":
        plan.steps += engine.touched_keys(model, window)
    plan.steps += engine.replace_window(model, sql, window)
    if model.materialization == "snapshot":
        plan.steps += engine.close_versions(model, window)
    plan.steps += engine.after_write(model)
    plan.steps += log_statements(engine, model, first_day, end_day)
    return plan
