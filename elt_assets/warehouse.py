"""The warehouse connection: one SQLAlchemy engine over DuckDB or PostgreSQL.

Connections are opened inside steps only and closed when the step's transaction ends,
because DuckDB allows a single writing process per file.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DUCKDB_LOCK_MESSAGE = "Could not set lock on file"


class WarehouseError(RuntimeError):
    """A warehouse operation failed; the message says which and where."""


def validate_identifier(name: str) -> str:
    """Return name if it is a plain lower-case SQL identifier, else raise."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a valid identifier (lower-case letters, digits, _)")
    return name


def qualified(schema: str, table: str) -> str:
    """schema.table, both validated, safe to place in SQL text."""
    return f"{validate_identifier(schema)}.{validate_identifier(table)}"


def duckdb_config() -> dict[str, str]:
    """DuckDB settings for every connection: a memory cap, beyond which DuckDB spills to disk.

    Insertion order is not kept: no model depends on the physical order of rows, and
    keeping it makes large inserts hold more in memory.
    """
    return {
        "memory_limit": os.environ.get("ELT_DUCKDB_MEMORY_LIMIT", "1GB"),
        "preserve_insertion_order": "false",
    }


def postgres_options() -> str:
    """PostgreSQL session settings for every connection (libpq's `options`).

    work_mem is the memory one sort or hash may use before it spills to disk; the server's
    default (4MB) suits many small queries, not an ELT session aggregating millions of
    rows. ELT_POSTGRES_WORK_MEM, default 256MB.
    """
    work_mem = os.environ.get("ELT_POSTGRES_WORK_MEM", "256MB").strip()
    if not re.fullmatch(r"[0-9]+(kB|MB|GB)", work_mem):
        raise ValueError(f"ELT_POSTGRES_WORK_MEM={work_mem!r} is not a size such as 64MB or 1GB")
    return f"-c work_mem={work_mem}"


@dataclass
class Warehouse:
    """A SQLAlchemy URL and the engine built from it on first use."""

    url: str
    lock_timeout_seconds: float = 600.0
    _engine: Engine | None = field(default=None, init=False, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            url = sa.make_url(self.url)
            connect_args = {}
            if url.get_backend_name() == "duckdb":
                if url.database not in (None, "", ":memory:"):
                    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
                connect_args = {"config": duckdb_config()}
            elif url.get_backend_name() == "postgresql":
                connect_args = {"options": postgres_options()}
            self._engine = sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
        return self._engine

    @property
    def dialect(self) -> str:
        """'duckdb' or 'postgresql'."""
        return sa.make_url(self.url).get_backend_name()

    @property
    def display_url(self) -> str:
        """The URL with any password masked: safe for logs and metadata."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        connection = self._connect()
        try:
            with connection.begin():
                yield connection
        finally:
            connection.close()

    def _connect(self) -> Connection:
        # Another process (a run, a sensor, a notebook) may hold DuckDB's file lock for a
        # moment; wait for it rather than failing the run.
        deadline = time.monotonic() + self.lock_timeout_seconds
        pause = 0.1
        while True:
            try:
                return self.engine.connect()
            except sa.exc.DBAPIError as error:
                if _DUCKDB_LOCK_MESSAGE in str(error) and time.monotonic() < deadline:
                    time.sleep(pause)
                    pause = min(pause * 2, 2.0)
                    continue
                raise WarehouseError(
                    f"cannot connect to the warehouse {self.display_url}: {first_line(error)}"
                ) from error

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@dataclass(frozen=True)
class Column:
    """A column as information_schema describes it."""

    name: str
    data_type: str
    max_length: int | None = None


def table_exists(connection: Connection, schema: str, table: str) -> bool:
    return bool(table_columns(connection, schema, table))


def table_columns(connection: Connection, schema: str, table: str) -> list[Column]:
    """The columns of schema.table in table order (none if it does not exist)."""
    # information_schema reads the same on DuckDB and PostgreSQL, where SQLAlchemy's
    # reflection does not.
    rows = connection.execute(
        sa.text(
            "select column_name, data_type, character_maximum_length "
            "from information_schema.columns "
            "where table_schema = :schema and table_name = :table "
            "order by ordinal_position"
        ),
        {"schema": schema, "table": table},
    )
    return [Column(name, data_type.upper(), length) for name, data_type, length in rows]


def ensure_schema(connection: Connection, schema: str) -> None:
    connection.execute(sa.text(f"create schema if not exists {validate_identifier(schema)}"))


def first_line(error: BaseException | str) -> str:
    """The first line of an error (the driver's own error for SQLAlchemy's), for messages."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def ensure_partition_index(connection: Connection, schema: str, table: str, column: str) -> None:
    """On PostgreSQL, index the partition column so replacing a day reads only that day.

    DuckDB needs none: its per-row-group min/max statistics already skip other days.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(partition_index_sql(schema, table, column)))


def refresh_statistics(connection: Connection, schema: str, table: str) -> None:
    """On PostgreSQL, sample the table's rows again after a write.

    Autovacuum analyzes a table some time after it changes; a model that reads the table
    in the same run would otherwise be planned on the statistics of an empty table, and
    PostgreSQL then picks nested loops over millions of rows. DuckDB keeps its statistics
    up to date as it writes.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"analyze {qualified(schema, table)}"))


def partition_index_sql(schema: str, table: str, column: str) -> str:
    """The PostgreSQL statement that indexes a table's partition column."""
    name = validate_identifier(f"{table}_{column}_idx"[:63])
    return f"create index if not exists {name} on {qualified(schema, table)} ({validate_identifier(column)})"
