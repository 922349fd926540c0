"""PostgreSQL, the server warehouse: indexed partition columns, fresh statistics, COPY loads,
and DDL that concurrent first runs can share."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from elt_assets import settings
from elt_assets.engines.base import Statement, qualified, validate_identifier, window_filter
from elt_assets.engines.sql import SqlEngine, SqlSession

# The key of the transaction-level advisory lock under which schemas, tables and views are
# created (see ddl_lock_if_missing). Any fixed number would do: this one is "eltddl" in ASCII.
DDL_LOCK_KEY = 0x656C7464646C


class PostgresEngine(SqlEngine):
    """A PostgreSQL database through psycopg2. Use the psycopg2 driver: a model's table is
    created with CREATE TABLE ... AS, which PostgreSQL cannot run with server-side bound
    parameters (psycopg 3's default)."""

    name = "postgresql"
    kind = "postgres"
    load_description = (
        "read and check the files in an in-memory DuckDB, then delete the window and COPY the rows "
        "FROM STDIN, in one transaction"
    )

    def connect_args(self) -> dict[str, Any]:
        # work_mem is what one sort or hash may use before it spills to disk; the server's
        # default (4MB) suits many small queries, not an ELT session aggregating millions of rows.
        return {"options": f"-c work_mem={settings.postgres_work_mem()}"}

    def create_schema(self, schema: str) -> list[Statement]:
        schema = validate_identifier(schema)
        return [ddl_lock_if_missing(f"to_regnamespace('{schema}')"), *super().create_schema(schema)]

    def declare_table(self, model, ddl: str) -> list[Statement]:
        return [ddl_lock_if_missing(f"to_regclass('{model.qualified_name}')"), *super().declare_table(model, ddl)]

    def create_table(self, model, sql: str, window) -> list[Statement]:
        """The table, created `if not exists`: a run that found no table when it planned may,
        once it holds the DDL lock, find the one that a concurrent run has just committed."""
        return [
            ddl_lock_if_missing(f"to_regclass('{model.qualified_name}')"),
            Statement(
                f"create table if not exists {model.qualified_name} as select * from (\n{sql}\n) as model_rows "
                "where 1 = 0",
                window,
            ),
        ]

    def create_view(self, model, sql: str) -> list[Statement]:
        # Replacing an existing view locks it, so concurrent replacements take turns; only
        # a view that does not exist yet can be created twice at once.
        return [ddl_lock_if_missing(f"to_regclass('{model.qualified_name}')"), *super().create_view(model, sql)]

    def after_create(self, model) -> list[Statement]:
        """An index on the partition column, so that replacing or reading a day reads only that day.

        Landing and python models ask for it on every run (their table is declared with
        `create table if not exists`), so it is created only when the catalog lacks it.
        """
        return [Statement(partition_index_sql(model.schema, model.name, model.partition_column))]

    def after_write(self, model) -> list[Statement]:
        # Autovacuum analyzes a table some time after it changes; a model that reads the
        # table in the same run would otherwise be planned on an empty table's statistics,
        # and PostgreSQL then picks nested loops over millions of rows.
        return [Statement(f"analyze {model.qualified_name}")]

    def load_landing_files(self, session: SqlSession, model, files, first_day: date, end_day: date) -> int:
        """Refuse a window whose landing files vanished, load and check the files in an
        in-memory DuckDB, then delete the window and COPY.

        The delete and the COPY share the warehouse transaction, so a failure at any point
        leaves the window's previous rows.
        """
        from elt_assets.engines.duckdb import DuckDBEngine
        from elt_assets.landing.raw_load import (
            BOOKKEEPING_COLUMNS,
            STAGE_TABLE,
            load_landing_files,
            window_columns,
        )

        columns, path_length = window_columns(self, session, model, files, first_day, end_day)
        with DuckDBEngine("duckdb:///:memory:").transaction() as reader:
            definitions = ", ".join(f"{column.name} {column.cast_type}" for column in columns)
            reader.execute(f"create temp table {STAGE_TABLE} ({definitions}, partition_date date, source_file varchar)")
            loaded = load_landing_files(
                reader,
                STAGE_TABLE,
                model.name,
                columns,
                files,
                first_day,
                end_day,
                path_length=path_length,
            )
            session.execute(
                f"delete from {model.qualified_name} where {window_filter('partition_date')}",
                {"window_start": first_day, "window_end": end_day},
            )
            with tempfile.TemporaryDirectory(prefix="elt-copy-") as folder:
                export = Path(folder) / "rows.csv"
                # The path is our own temporary file, not user input; COPY takes no parameters.
                literal = str(export).replace("'", "''")
                reader.execute(f"copy {STAGE_TABLE} to '{literal}' (format csv, header true)")
                names = ", ".join([column.name for column in columns] + list(BOOKKEEPING_COLUMNS))
                cursor = session.connection.connection.dbapi_connection.cursor()
                try:
                    with export.open("r", encoding="utf-8") as rows:
                        cursor.copy_expert(
                            f"copy {model.qualified_name} ({names}) from stdin with (format csv, header true)", rows
                        )
                finally:
                    cursor.close()
        return loaded


def partition_index_sql(schema: str, table: str, column: str) -> str:
    """The statement that indexes a table's partition column, and does nothing when the
    index exists.

    `create index if not exists` takes a SHARE lock on the table even when the index is
    there, and SHARE conflicts with the ROW EXCLUSIVE lock of another run's delete and
    COPY: two runs loading different days, each holding its rows and waiting for the
    other's, deadlock. A catalog lookup first takes no lock on the table, so runs against
    an indexed table never run DDL. (Two first runs of a table that exists without its
    index may still meet once; a table this project creates gets the index in the same
    transaction.)
    """
    index = validate_identifier(f"{table}_{column}_idx"[:63])
    create = f"create index if not exists {index} on {qualified(schema, table)} ({validate_identifier(column)})"
    # An index lives in its table's schema; to_regclass is null when no such relation exists.
    return (
        "do $$\nbegin\n"
        f"    if to_regclass('{qualified(schema, index)}') is null then\n"
        f"        {create};\n"
        "    end if;\nend\n$$"
    )


def ddl_lock_if_missing(lookup: str) -> Statement:
    """Take the DDL lock, until the transaction ends, if `lookup` (a `to_regclass` or
    `to_regnamespace` call) finds nothing.

    `create ... if not exists` only sees committed objects: two transactions that find a
    schema, table or view missing and create it at once both insert its catalog row, and
    the second fails with a unique violation on pg_namespace or pg_type, which two first
    runs of different days on an empty warehouse do. Under the lock the second waits for
    the first to commit, and its `if not exists` then finds the object. The lock is taken
    only when something is missing, so runs against a built warehouse never wait for it;
    concurrent first runs take turns, each holding it until it commits.
    """
    return Statement(
        "do $$\nbegin\n"
        f"    if {lookup} is null then\n"
        f"        perform pg_advisory_xact_lock({DDL_LOCK_KEY});\n"
        "    end if;\nend\n$$"
    )
