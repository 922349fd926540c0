"""What DuckDB and PostgreSQL share: a SQLAlchemy engine, transactions, information_schema."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from elt_assets.engines.base import Column, Engine, Result, WarehouseError, first_line
from elt_assets.secrets import masked_url


class SqlSession:
    """A SQLAlchemy connection inside a transaction, read through `execute`."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def execute(self, sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None) -> Result:
        return self.connection.execute(sa.text(sql), params)


class SqlEngine(Engine):
    """An engine reached through SQLAlchemy; connections are opened per unit of work and
    closed at its end (DuckDB allows one writing process per file)."""

    def __init__(self, url: str, lock_timeout_seconds: float = 600.0):
        super().__init__(url, lock_timeout_seconds)
        self._engine: sa.Engine | None = None

    @property
    def display_url(self) -> str:
        return masked_url(self.url)

    def connect_args(self) -> dict[str, Any]:
        return {}

    @property
    def sqlalchemy_engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(sa.make_url(self.url), poolclass=NullPool, connect_args=self.connect_args())
        return self._engine

    def connect(self) -> Connection:
        try:
            return self.sqlalchemy_engine.connect()
        except sa.exc.DBAPIError as error:
            raise WarehouseError(f"cannot connect to the warehouse {self.display_url}: {first_line(error)}") from error

    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[SqlSession]:
        connection = self.connect()
        try:
            transaction = connection.begin()
            try:
                yield SqlSession(connection)
            except BaseException:
                transaction.rollback()
                raise
            if read_only:
                transaction.rollback()
            else:
                transaction.commit()
        finally:
            connection.close()

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def table_columns(self, session: SqlSession, schema: str, table: str) -> list[Column]:
        # information_schema reads the same on DuckDB and PostgreSQL, where SQLAlchemy's
        # reflection does not.
        rows = session.execute(
            "select column_name, data_type, character_maximum_length "
            "from information_schema.columns "
            "where table_schema = :schema and table_name = :table "
            "order by ordinal_position",
            {"schema": schema, "table": table},
        )
        return [Column(name, data_type.upper(), length) for name, data_type, length in rows]
