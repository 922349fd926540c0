"""PostgreSQL helpers for the benchmark: its databases, the psql client, and the comparison.

The benchmark gets an admin URL (a SQLAlchemy URL of a database it may connect to and
create databases from, e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/postgres) and
makes its own databases next to that one, named from a fixed pattern. Passwords never
leave this module in printed form: `mask` renders a URL with its password hidden, and
psql gets the password through PGPASSWORD, not on its command line.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

# A database name the benchmark makes: lower-case letters, digits and underscores only,
# so it needs no quoting, though it is quoted anyway.
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Where run.py puts the floor database's URL for floor_postgres.py.
FLOOR_URL_VARIABLE = "BENCH_FLOOR_URL"

# The analytics table's columns, in the lecture's order: what the comparison reads.
ANALYTICS_COLUMNS = (
    "variant_id",
    "user_id",
    "datestamp",
    "age",
    "gender",
    "num_of_items",
    "num_of_clicks",
    "num_of_purchases",
    "revenue",
)


def admin_url(text: str) -> URL:
    """The admin URL as a SQLAlchemy URL, refusing anything that is not PostgreSQL."""
    url = sa.make_url(text)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"--postgres-url must be a PostgreSQL URL, not {mask(url)}")
    return url


def mask(url: URL | str) -> str:
    """The URL as text with any password replaced by ***: safe to print."""
    return sa.make_url(url).render_as_string(hide_password=True)


def database_name(role: str, days: int) -> str:
    """The name of one of the benchmark's databases, e.g. elt_bench_wh_30 or elt_bench_floor_30."""
    return validate_database_name(f"elt_bench_{role}_{days}")


def validate_database_name(name: str) -> str:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(f"not a database name the benchmark makes: {name!r}")
    return name


def quote_identifier(name: str) -> str:
    """An identifier in double quotes, for the statements that cannot take it as a parameter."""
    return '"' + name.replace('"', '""') + '"'


def database_url(admin: URL, name: str) -> URL:
    """The admin URL pointed at another database on the same server."""
    return admin.set(database=validate_database_name(name))


def full_url_text(url: URL) -> str:
    """The URL as text with its password: only for a child process's environment, never to print."""
    return url.render_as_string(hide_password=False)


def _admin_engine(admin: URL) -> sa.Engine:
    return sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def drop_database(admin: URL, name: str) -> None:
    """Drop a database if it exists, first ending any session still connected to it."""
    name = validate_database_name(name)
    engine = _admin_engine(admin)
    try:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = :name and pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(sa.text(f"drop database if exists {quote_identifier(name)}"))
    finally:
        engine.dispose()


def create_fresh_database(admin: URL, name: str) -> URL:
    """Drop the database if it is left from an earlier run, create it empty, return its URL."""
    drop_database(admin, name)
    engine = _admin_engine(admin)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f"create database {quote_identifier(validate_database_name(name))}"))
    finally:
        engine.dispose()
    return database_url(admin, name)


def server_version(admin: URL) -> str:
    """The server's version, e.g. '15.18 (Debian 15.18-0+deb12u1)'."""
    engine = _admin_engine(admin)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text("show server_version")).scalar_one()
    finally:
        engine.dispose()


# --- psql -------------------------------------------------------------------------------


def psql_path() -> str:
    """Where the psql client is, or a clear error if it is not installed."""
    found = shutil.which("psql")
    if found is None:
        raise SystemExit(
            "the PostgreSQL floor needs the psql client, and there is no psql on PATH "
            "(on Debian: apt-get install postgresql-client)"
        )
    return found


def _conninfo_value(value: str) -> str:
    """A value for a libpq keyword=value string: single-quoted, with ' and \\ escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_conninfo(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy URL, without its password (see psql_env)."""
    parts = {
        "host": url.host,
        "port": str(url.port) if url.port else None,
        "user": url.username,
        "dbname": url.database,
    }
    for key, value in url.query.items():
        # Options such as sslmode pass through; a repeated option keeps its last value.
        parts[key] = value if isinstance(value, str) else value[-1]
    return " ".join(f"{key}={_conninfo_value(value)}" for key, value in parts.items() if value)


def psql_env(url: URL, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for psql: the given one (or ours) plus the URL's password, if any."""
    env = dict(os.environ if base is None else base)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def psql_quote_path(path: str) -> str:
    """A file name as the single-quoted argument of psql's \\copy ... from '...'.

    In \\copy's file name a quote is doubled and a backslash is taken as it is, so a
    name with a backslash or a line break is refused rather than guessed at.
    """
    if "\\" in path or "\n" in path or "\r" in path:
        raise ValueError(f"a file name psql's \\copy cannot take safely: {path!r}")
    return "'" + path.replace("'", "''") + "'"


# --- comparison ---------------------------------------------------------------------------


@dataclass
class Comparison:
    """How two copies of a table compare as multisets of rows."""

    rows_left: int
    rows_right: int
    only_left: int  # rows (counted with repeats) the left has more of than the right
    only_right: int

    @property
    def equal(self) -> bool:
        return self.only_left == 0 and self.only_right == 0


def normalise(value: object) -> object:
    """One value in a form that compares equal across drivers' types.

    A whole-number Decimal (sum() of integers is numeric in PostgreSQL) becomes an int,
    another Decimal a float; an aware timestamp becomes a naive one in UTC.
    """
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def read_rows(url: URL, table: str, columns: tuple[str, ...] = ANALYTICS_COLUMNS) -> Counter:
    """The rows of schema.table as a multiset of normalised tuples."""
    schema, name = table.split(".")
    select = "select {} from {}.{}".format(
        ", ".join(quote_identifier(column) for column in columns),
        quote_identifier(schema),
        quote_identifier(name),
    )
    engine = sa.create_engine(url, poolclass=NullPool)
    rows: Counter = Counter()
    try:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=50_000).execute(sa.text(select))
            for row in result:
                rows[tuple(normalise(value) for value in row)] += 1
    finally:
        engine.dispose()
    return rows


def compare_tables(left: URL, right: URL, table: str) -> Comparison:
    """Compare the same table in two databases, row for row, as multisets."""
    left_rows, right_rows = read_rows(left, table), read_rows(right, table)
    return Comparison(
        rows_left=sum(left_rows.values()),
        rows_right=sum(right_rows.values()),
        only_left=sum((left_rows - right_rows).values()),
        only_right=sum((right_rows - left_rows).values()),
    )
