"""The seam between the models and a warehouse engine.

Everything that differs between engines lives behind `Engine`: connecting, reading the
catalog, the statements that create a model's table and replace a window of it, what
follows a write (indexes, statistics), and the bulk load of landing files. The plan of a
model (elt_assets.models.plan) asks the engine for these pieces; running the plan and
printing it (`elt-assets compile`) then share one list of statements.

A `Session` is what a step talks to the warehouse through: `execute(sql, params)`
returns a result with SQLAlchemy's reading methods (`all`, `one`, `first`, `scalar`,
`scalar_one`, `keys`). SQL text uses `:name` bind parameters on every engine.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from elt_assets.landing.zone import LandingFile
    from elt_assets.models.registry import Model

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message says which and where."""


class StatementError(WarehouseError):
    """A statement failed in the warehouse (for engines whose driver is not SQLAlchemy's)."""


def validate_identifier(name: str) -> str:
    """Return name if it is a plain lower-case SQL identifier, else raise."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a valid identifier (lower-case letters, digits, _)")
    return name


def qualified(schema: str, table: str) -> str:
    """schema.table, both validated, safe to place in SQL text."""
    return f"{validate_identifier(schema)}.{validate_identifier(table)}"


def window_filter(column: str) -> str:
    """The half-open window predicate on a column, with bound parameters."""
    column = validate_identifier(column)
    return f"{column} >= :window_start and {column} < :window_end"


def first_line(error: BaseException | str) -> str:
    """The first line of an error (the driver's own error for SQLAlchemy's), for messages."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class Column:
    """A column as the catalog describes it."""

    name: str
    data_type: str
    max_length: int | None = None


class Result(Protocol):
    def all(self) -> Sequence[Any]: ...
    def one(self) -> Any: ...
    def first(self) -> Any: ...
    def scalar(self) -> Any: ...
    def scalar_one(self) -> Any: ...
    def keys(self) -> Sequence[str]: ...


class Session(Protocol):
    """A connection inside the step's unit of work."""

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Result: ...


@dataclass(frozen=True)
class Statement:
    """One statement of a plan: SQL with `:name` bind parameters, and their values."""

    text: str
    params: Mapping[str, Any] | None = None

    def run(self, engine: Engine, session: Session) -> None:
        session.execute(self.text, dict(self.params) if self.params else None)

    def script(self, engine: Engine) -> str:
        """The statement as the engine would run it, values written in as literals."""
        from elt_assets.models.sql_text import render_literals

        return engine.dialect_sql(render_literals(self.text, dict(self.params or {})))


@dataclass(frozen=True)
class LoadFiles:
    """A plan step that is no SQL text: the engine's bulk load of a window's landing files."""

    model: Model
    files: tuple[LandingFile, ...]
    first_day: date
    end_day: date

    def run(self, engine: Engine, session: Session) -> int:
        return engine.load_landing_files(session, self.model, list(self.files), self.first_day, self.end_day)

    def script(self, engine: Engine) -> str:
        lines = [
            f"-- {engine.name}: {engine.load_description}",
            f"-- then check every value against {self.model.qualified_name}'s types; a bad value fails the load",
        ]
        lines += [f"--   {landing_file.path}" for landing_file in self.files] or ["--   (no files)"]
        return "\n".join(lines)


class Engine(ABC):
    """One kind of warehouse. Subclasses set `name`, `kind` and `load_description`."""

    name: str
    # The asset kind the UI shows for tables of this engine (Dagster has icons for these).
    kind: str
    load_description: str
    # Whether a plan runs as one transaction (its writes all or nothing).
    transactional: bool = True
    # How many read-only queries of one session may run at once (reports, not writes).
    concurrent_queries: int = 1
    # Whether a model's per-day metrics are asked for the whole window in one query
    # rather than one query per day. A day's query is cheaper on DuckDB and PostgreSQL
    # (a day's hash table stays small: 1.2-1.3 s for ten days of 1M events against 2.0-2.6 s
    # for one ten-day query); on Spark each query costs a job.
    metrics_by_window: bool = False
    # What a failed run leaves in the window, said in its error.
    after_failure: str = "the partition's previous rows are unchanged"

    def __init__(self, url: str, lock_timeout_seconds: float = 600.0):
        self.url = url
        # How long to wait for another process's lock on the warehouse, where engines lock.
        self.lock_timeout_seconds = lock_timeout_seconds

    @property
    @abstractmethod
    def display_url(self) -> str:
        """The URL with every secret masked: safe for logs, metadata and errors."""

    @abstractmethod
    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Session]:
        """A session inside one unit of work: committed on success (or, read_only, rolled
        back), rolled back on error."""

    def dispose(self) -> None:
        """Release pooled resources."""

    def exists(self) -> bool:
        """Whether the warehouse is there, found without creating it (a server: always)."""
        return True

    # ---------------------------------------------------------------- the catalog

    @abstractmethod
    def table_columns(self, session: Session, schema: str, table: str) -> list[Column]:
        """The columns of schema.table in table order (none if it does not exist)."""

    def query_columns(self, session: Session, sql: str, params: Mapping[str, Any]) -> list[str]:
        """The names of the columns a query returns, without running it over the data."""
        return list(session.execute(f"select * from (\n{sql}\n) as model_rows limit 0", params).keys())

    # ---------------------------------------------------------------- a plan's pieces

    def dialect_sql(self, text: str) -> str:
        """The project's SQL (PostgreSQL-flavoured, as in sql/) as this engine reads it."""
        return text

    def create_schema(self, schema: str) -> list[Statement]:
        return [Statement(f"create schema if not exists {validate_identifier(schema)}")]

    def create_table(self, model: Model, sql: str, window: Mapping[str, date]) -> list[Statement]:
        """Create the model's (empty) table with the columns and types its query returns."""
        return [
            Statement(
                f"create table {model.qualified_name} as select * from (\n{sql}\n) as model_rows where 1 = 0",
                window,
            )
        ]

    def declare_table(self, model: Model, ddl: str) -> list[Statement]:
        """Create a table whose columns are declared in a DDL file (`create table if not
        exists ...`, e.g. a raw table), partitioned by the model's partition column."""
        return [Statement(ddl)]

    def create_view(self, model: Model, sql: str) -> list[Statement]:
        """Create or replace the model's view."""
        return [Statement(f"create or replace view {model.qualified_name} as\n{sql}")]

    def drop_table(self, model: Model) -> list[Statement]:
        return [Statement(f"drop table {model.qualified_name}")]

    def replace_window(self, model: Model, sql: str, window: Mapping[str, date]) -> list[Statement]:
        """Replace the window's rows with the model's rows for the window."""
        target = model.qualified_name
        return [
            Statement(f"delete from {target} where {window_filter(model.partition_column)}", window),
            Statement(f"insert into {target} select * from (\n{sql}\n) as model_rows", window),
        ]

    def close_versions(self, model: Model, window: Mapping[str, date]) -> list[Statement]:
        """SCD Type 2: recompute valid_to/is_current of every key whose history the window
        touched (keys it held before the write, collected by `touched_keys`, and after)."""
        target = model.qualified_name
        key = validate_identifier(model.unique_key)
        return [
            Statement(
                f"insert into _touched_keys select distinct {key} from {target} "
                f"where {window_filter(model.partition_column)}",
                window,
            ),
            Statement(
                f"update {target}\nset\n    valid_to = versions.next_valid_from,\n"
                "    is_current = versions.next_valid_from is null\nfrom (\n    select\n"
                f"        {key},\n        valid_from,\n"
                f"        lead(valid_from) over (partition by {key} order by valid_from) as next_valid_from\n"
                f"    from {target}\n    where {key} in (select {key} from _touched_keys)\n) as versions\n"
                f"where {target}.{key} = versions.{key}\n    and {target}.valid_from = versions.valid_from"
            ),
            Statement("drop table _touched_keys"),
        ]

    def touched_keys(self, model: Model, window: Mapping[str, date]) -> list[Statement]:
        """Collect the keys the window holds before it is replaced (see close_versions)."""
        key = validate_identifier(model.unique_key)
        return [
            Statement("drop table if exists _touched_keys"),
            Statement(
                f"create temp table _touched_keys as select distinct {key} from {model.qualified_name} "
                f"where {window_filter(model.partition_column)}",
                window,
            ),
        ]

    def replace_window_rows(
        self, session: Session, model: Model, rows: Sequence[Mapping[str, Any]], window: Mapping[str, date]
    ) -> None:
        """Replace the window's rows with rows computed outside the warehouse (dicts keyed
        by column name, all with the same keys)."""
        target = model.qualified_name
        session.execute(f"delete from {target} where {window_filter(model.partition_column)}", dict(window))
        if rows:
            names = [validate_identifier(name) for name in rows[0]]
            placeholders = ", ".join(f":{name}" for name in names)
            session.execute(f"insert into {target} ({', '.join(names)}) values ({placeholders})", list(rows))

    def day_previews(
        self, session: Session, model: Model, first_day: date, end_day: date, limit: int
    ) -> tuple[list[str], dict[date, list[tuple[Any, ...]]]]:
        """The column names, and each day's first `limit` rows by the first three columns."""
        columns: list[str] = []
        by_day = {}
        day = first_day
        while day < end_day:
            result = session.execute(
                f"select * from {model.qualified_name} where {window_filter(model.partition_column)} "
                f"order by 1, 2, 3 limit {int(limit)}",
                {"window_start": day, "window_end": day + timedelta(days=1)},
            )
            columns = list(result.keys())
            by_day[day] = [tuple(row) for row in result.all()]
            day += timedelta(days=1)
        return columns, by_day

    def after_create(self, model: Model) -> list[Statement]:
        """What a new table needs besides its columns (e.g. an index on the partition column)."""
        return []

    def after_write(self, model: Model) -> list[Statement]:
        """What follows a write of the table (e.g. refreshing the planner's statistics)."""
        return []

    # ---------------------------------------------------------------- raw loads

    @abstractmethod
    def load_landing_files(
        self, session: Session, model: Model, files: list[LandingFile], first_day: date, end_day: date
    ) -> int:
        """Replace the raw table's window with the files' rows, every value checked first;
        returns the rows loaded. Raises LandingError naming the file, line and value."""
