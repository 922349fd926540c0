"""The SQL a materialization would run for a window, written out instead of run.

Like `dbt compile`, this renders each model for a window and writes the statements its
materialization executes (schema, delete of the window and insert, view, snapshot
bookkeeping), with the window's bind parameters written as literals, so the text runs
unchanged in the warehouse. What the materialization does depends on the warehouse's
state (does the table exist, do its columns match), so compiling reads the catalog,
and nothing else.

The statements mirror elt_assets.materialize; a test runs both and compares the
statements that write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from elt_assets import raw_load
from elt_assets.landing import LandingError
from elt_assets.lineage import output_columns
from elt_assets.materialize import check_window
from elt_assets.metadata import window_filter, window_text
from elt_assets.models import Model, Registry
from elt_assets.warehouse import (
    Warehouse,
    WarehouseError,
    partition_index_sql,
    table_columns,
    validate_identifier,
)

# Statements are rendered by SQLAlchemy's generic dialect: it finds bind parameters
# exactly as execution does, and (unlike the psycopg dialects) leaves `%` alone.
_DIALECT = sa.engine.default.DefaultDialect()


def sql_literal(value: Any) -> str:
    """A value as a SQL literal that DuckDB and PostgreSQL read as the bound value would be."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, date):
        # A typed literal, so that expressions see a date, as with a bound date.
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__} {value!r}")


class _Literal(sa.types.UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "literal"

    def literal_processor(self, dialect: sa.engine.Dialect):
        return sql_literal


def render_literals(text: str, params: dict[str, Any]) -> str:
    """The SQL text with every bind parameter replaced by its value as a literal."""
    clause = sa.text(text)
    names = set(clause.compile(dialect=_DIALECT).params)
    missing = names - params.keys()
    if missing:
        raise ValueError(f"no value for bind parameter(s) {', '.join(sorted(missing))}")
    clause = clause.bindparams(*(sa.bindparam(name, params[name], type_=_Literal()) for name in names))
    return str(clause.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))


@dataclass(frozen=True)
class Statement:
    """One statement of a materialization: its text with bind names, and their values."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)

    def rendered(self) -> str:
        return render_literals(self.text, self.params)


@dataclass
class CompiledModel:
    """A model's statements for a window, and notes (comments) about what they do."""

    model: Model
    first_day: date
    end_day: date
    statements: list[Statement]
    notes: list[str]

    def text(self, warehouse_label: str) -> str:
        """The statements as one script: a header, then one transaction, as the run does it."""
        header = [
            f"-- {self.model.qualified_name} ({self.model.materialization}) "
            f"for {window_text(self.first_day, self.end_day)}",
            f"-- compiled against {warehouse_label}",
            *(f"-- {note}" for note in self.notes),
        ]
        if not self.statements:
            return "\n".join(header) + "\n"
        body = "\n\n".join(_terminated(statement.rendered()) for statement in self.statements)
        return "\n".join(header) + f"\nbegin;\n\n{body}\n\ncommit;\n"


def _terminated(text: str) -> str:
    """The statement and its semicolon, on a line of its own if the last line is a comment."""
    text = text.strip()
    return text + ("\n;" if "--" in text.splitlines()[-1] else ";")


def compile_model(
    connection: Connection | None,
    models: Registry,
    model: Model,
    first_day: date,
    end_day: date,
    landing_root: str | None = None,
    dialect: str = "duckdb",
) -> CompiledModel:
    """What the model's materialization would execute for [first_day, end_day), given the
    warehouse's current catalog (connection None: an empty warehouse)."""
    check_window(model, first_day, end_day)
    window = {"window_start": first_day, "window_end": end_day}
    compiled = CompiledModel(model, first_day, end_day, [], [])
    schema_statement = Statement(f"create schema if not exists {validate_identifier(model.schema)}")
    if model.materialization == "landing":
        compiled.statements = [schema_statement, Statement(model.sql_path.read_text(encoding="utf-8").strip())]
        compiled.notes = _landing_notes(model, first_day, end_day, landing_root)
        return compiled
    if model.materialization == "ephemeral":
        compiled.statements = [schema_statement]
        compiled.notes = ["ephemeral: nothing is built; models that ref() it inline its SQL as a CTE"]
        return compiled
    sql = models.render(model).text
    target = model.qualified_name
    if model.materialization == "view":
        compiled.statements = [schema_statement, Statement(f"create or replace view {target} as\n{sql}")]
        return compiled

    statements = [schema_statement]
    existing = [column.name for column in table_columns(connection, model.schema, model.name)] if connection else []
    columns = output_columns(model, models)
    if existing and existing != columns:
        if model.materialization != "table":
            raise WarehouseError(
                f"{target}: the model's columns ({', '.join(columns)}) differ from the table's "
                f"({', '.join(existing)}); a {model.materialization} run would fail"
            )
        statements.append(Statement(f"drop table {target}"))
        compiled.notes.append("the model's columns changed: the table is rebuilt (re-run its other partitions)")
    if existing != columns:
        statements.append(
            Statement(f"create table {target} as select * from (\n{sql}\n) as model_rows where 1 = 0", window)
        )
        if dialect == "postgresql":
            statements.append(Statement(partition_index_sql(model.schema, model.name, model.partition_column)))
    predicate = window_filter(model.partition_column)
    column_list = ", ".join(columns)
    if model.materialization == "snapshot":
        key = validate_identifier(model.unique_key)
        statements += [
            Statement("drop table if exists _touched_keys"),
            Statement(f"create temp table _touched_keys as select distinct {key} from {target} where {predicate}", window),
        ]
    statements += [
        Statement(f"delete from {target} where {predicate}", window),
        Statement(f"insert into {target} ({column_list}) select {column_list} from (\n{sql}\n) as model_rows", window),
    ]
    if model.materialization == "snapshot":
        statements += _close_versions(model, window)
    if dialect == "postgresql":
        statements.append(Statement(f"analyze {target}"))
    compiled.statements = statements
    return compiled


def _close_versions(model: Model, window: dict[str, date]) -> list[Statement]:
    target = model.qualified_name
    key = validate_identifier(model.unique_key)
    return [
        Statement(f"insert into _touched_keys select distinct {key} from {target} where {window_filter(model.partition_column)}", window),
        Statement(
            f"update {target}\nset\n    valid_to = versions.next_valid_from,\n"
            f"    is_current = versions.next_valid_from is null\nfrom (\n    select\n        {key},\n"
            f"        valid_from,\n        lead(valid_from) over (partition by {key} order by valid_from) as next_valid_from\n"
            f"    from {target}\n    where {key} in (select {key} from _touched_keys)\n) as versions\n"
            f"where {target}.{key} = versions.{key}\n    and {target}.valid_from = versions.valid_from"
        ),
        Statement("drop table _touched_keys"),
    ]


def _landing_notes(model: Model, first_day: date, end_day: date, landing_root: str | None) -> list[str]:
    notes = [
        "rows come from the landing files, read and checked by the landing loader, then the",
        "window's rows are replaced in one transaction; only the table's DDL is SQL",
    ]
    if landing_root is None:
        return notes
    try:
        files = raw_load.files_for_window(landing_root, model.name, first_day, end_day)
    except LandingError as error:
        return notes + [f"the load would fail: {error}"]
    return notes + [f"landing file: {landing_file.path}" for landing_file in files]


def models_in_build_order(models: Registry, names: list[str] | None = None) -> list[Model]:
    """The named models (default: all), each after the models it reads."""
    wanted = {models[_model_name(name)].name for name in names} if names else set(models.models)
    ordered: list[Model] = []
    seen: set[str] = set()

    def visit(model: Model) -> None:
        if model.name in seen:
            return
        seen.add(model.name)
        for upstream in models.upstream(model):
            visit(upstream)
        if model.name in wanted:
            ordered.append(model)

    for model in models.models.values():
        visit(model)
    return ordered


def _model_name(name: str) -> str:
    """`fact_user_event` or `core.fact_user_event`."""
    return name.split(".", 1)[1] if "." in name else name


def compile_models(
    warehouse_url: str,
    models: Registry,
    names: list[str] | None,
    first_day: date,
    end_day: date,
    landing_root: str | None = None,
) -> list[tuple[Model, str]]:
    """Each selected model's compiled script, in build order, against the warehouse's catalog."""
    warehouse = Warehouse(warehouse_url)
    label = warehouse.display_url
    selected = models_in_build_order(models, names)
    url = sa.make_url(warehouse_url)
    if warehouse.dialect == "duckdb" and url.database not in (None, "", ":memory:") and not Path(url.database).exists():
        # No warehouse file yet: every table is still to be created. Do not create the file.
        return [
            (model, compile_model(None, models, model, first_day, end_day, landing_root, warehouse.dialect).text(label))
            for model in selected
        ]
    try:
        with warehouse.transaction() as connection:
            return [
                (
                    model,
                    compile_model(
                        connection, models, model, first_day, end_day, landing_root, warehouse.dialect
                    ).text(label),
                )
                for model in selected
            ]
    finally:
        warehouse.dispose()
