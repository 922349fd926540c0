"""Loading one window of landing files into a raw table: check everything, then replace.

Files are read by DuckDB (CSV and Parquet natively) into a staging table of text
columns, every value is checked against the raw table's column types, and only then is
the window replaced, in the same transaction, so a bad file leaves the old rows as they
were. On the DuckDB warehouse this all happens in the warehouse itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from elt_assets.landing import LandingError, LandingFile, LandingZone, landing_files_for_day
from elt_assets.models import Model
from elt_assets.partitions import days_in
from elt_assets.warehouse import Column, qualified, validate_identifier

BOOKKEEPING_COLUMNS = ("partition_date", "source_file")
STAGE_TABLE = "_landing_rows"
# A day without a file of these tables is an error; other tables land change sets.
TABLES_REQUIRED_EVERY_DAY = ("user_event",)


@dataclass(frozen=True)
class LandingColumn:
    """A column landing files must carry, with the DuckDB type its text must cast to."""

    name: str
    cast_type: str
    max_length: int | None = None


def landing_columns(table_columns: list[Column]) -> list[LandingColumn]:
    """The raw table's columns that landing files carry (all but the bookkeeping ones)."""
    return [_landing_column(column) for column in table_columns if column.name not in BOOKKEEPING_COLUMNS]


def files_for_window(root: str | LandingZone, table: str, first_day: date, end_day: date) -> list[LandingFile]:
    """Every ready landing file of the window; raises if a required day has none."""
    files: list[LandingFile] = []
    for day in days_in(first_day, end_day):
        found = landing_files_for_day(root, table, day)
        if not found and table in TABLES_REQUIRED_EVERY_DAY:
            raise LandingError(
                f"no events landed for {day}: expected {root}/{table}/{day}.csv "
                f"or part files in {root}/{table}/{day}/"
            )
        files.extend(found)
    return files


def stage_landing_files(
    reader: Connection, table: str, columns: list[LandingColumn], files: list[LandingFile]
) -> int:
    """Read the files into a temporary text table on a DuckDB connection and check them.

    Returns the number of rows staged. Raises LandingError naming the file, the line and
    the value on the first problem found.
    """
    reader.execute(sa.text(f"drop table if exists {STAGE_TABLE}"))
    names = [column.name for column in columns]
    column_list = ", ".join(f"{name} varchar" for name in names)
    reader.execute(
        sa.text(
            f"create temp table {STAGE_TABLE} ({column_list}, partition_date date, "
            "source_file varchar, source_line bigint)"
        )
    )
    total = 0
    for landing_file in files:
        total += _stage_one_file(reader, table, names, landing_file)
    for column in columns:
        _check_column(reader, table, column)
    if table == "user_event":
        _check_event_days(reader)
    return total


def _stage_one_file(reader: Connection, table: str, names: list[str], landing_file: LandingFile) -> int:
    if landing_file.size == 0:
        raise LandingError(f"landing file {landing_file.path} is empty (0 bytes)")
    if landing_file.format == "csv":
        scan = (
            "read_csv(:path, header = true, delim = ',', quote = '\"', "
            "all_varchar = true, strict_mode = true)"
        )
    else:
        scan = "read_parquet(:path)"
    params = {"path": landing_file.local_path}
    try:
        reader.execute(sa.text(f"create or replace temp table _landing_file as select * from {scan}"), params)
    except sa.exc.DBAPIError as error:
        raise LandingError(
            f"cannot read landing file {landing_file.path}: {_first_line(error)}"
        ) from error
    found = [row[0] for row in reader.execute(sa.text("select column_name from (describe _landing_file)"))]
    missing = [name for name in names if name not in found]
    extra = [name for name in found if name not in names]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected column(s) {', '.join(extra)}")
        raise LandingError(
            f"landing file {landing_file.path} does not match raw_data.{table}: "
            f"{'; '.join(problems)} (expected exactly: {', '.join(names)})"
        )
    selected = ", ".join(f"cast({name} as varchar)" for name in names)
    # Line numbers count the header as line 1; DuckDB keeps a file's rows in order.
    reader.execute(
        sa.text(
            f"insert into {STAGE_TABLE} "
            f"select {selected}, :day, :path, row_number() over () + 1 from _landing_file"
        ),
        {"day": landing_file.day, "path": landing_file.path},
    )
    rows = reader.execute(sa.text("select count(*) from _landing_file")).scalar_one()
    reader.execute(sa.text("drop table _landing_file"))
    if rows == 0:
        raise LandingError(
            f"landing file {landing_file.path} has a header but no rows; "
            "leave the file out when there is nothing to land"
        )
    return rows


def _check_column(reader: Connection, table: str, column: LandingColumn) -> None:
    name = validate_identifier(column.name)
    if column.max_length is not None:
        condition = f"length({name}) > {int(column.max_length)}"
        problem = f"is longer than {column.max_length} characters"
    elif column.cast_type == "VARCHAR":
        return
    else:
        condition = f"try_cast({name} as {column.cast_type}) is null"
        problem = f"is not a valid {column.cast_type.lower()}"
    bad = reader.execute(
        sa.text(
            f"select source_file, source_line, {name} from {STAGE_TABLE} "
            f"where {name} is not null and {condition} "
            "order by source_file, source_line limit 1"
        )
    ).first()
    if bad is not None:
        raise LandingError(
            f"landing file {bad[0]}, line {bad[1]}: {column.name} value {bad[2]!r} {problem} "
            f"(raw_data.{table}.{column.name})"
        )


def _check_event_days(reader: Connection) -> None:
    bad = reader.execute(
        sa.text(
            f"select source_file, source_line, datestamp, partition_date from {STAGE_TABLE} "
            "where datestamp is not null "
            "and cast(cast(datestamp as timestamp) as date) <> partition_date "
            "order by source_file, source_line limit 1"
        )
    ).first()
    if bad is not None:
        raise LandingError(
            f"landing file {bad[0]}, line {bad[1]}: datestamp {bad[2]!r} is not on the "
            f"file's day {bad[3]}"
        )


def cast_staged_rows_sql(columns: list[LandingColumn]) -> str:
    """SELECT over the staging table that yields the raw table's typed columns."""
    casts = ", ".join(
        f"cast({validate_identifier(column.name)} as {column.cast_type}) as {column.name}"
        for column in columns
    )
    return f"select {casts}, partition_date, source_file from {STAGE_TABLE}"


def replace_raw_window(
    connection: Connection, model: Model, columns: list[LandingColumn], first_day: date, end_day: date
) -> None:
    """Delete the window of the raw table and insert the staged rows (same connection)."""
    target = qualified(model.schema, model.name)
    column_names = ", ".join([column.name for column in columns] + list(BOOKKEEPING_COLUMNS))
    window = {"window_start": first_day, "window_end": end_day}
    connection.execute(
        sa.text(f"delete from {target} where partition_date >= :window_start and partition_date < :window_end"),
        window,
    )
    connection.execute(sa.text(f"insert into {target} ({column_names}) {cast_staged_rows_sql(columns)}"))


_CAST_TYPES = {
    "INTEGER": "INTEGER",
    "BIGINT": "BIGINT",
    "SMALLINT": "SMALLINT",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP",
    "BOOLEAN": "BOOLEAN",
    "DOUBLE": "DOUBLE",
    "DOUBLE PRECISION": "DOUBLE",
    "VARCHAR": "VARCHAR",
    "CHARACTER VARYING": "VARCHAR",
    "TEXT": "VARCHAR",
}


def _landing_column(column: Column) -> LandingColumn:
    cast_type = _CAST_TYPES.get(column.data_type)
    if cast_type is None:
        raise TypeError(f"raw column {column.name} has type {column.data_type}, which landing files cannot carry")
    return LandingColumn(column.name, cast_type, column.max_length if cast_type == "VARCHAR" else None)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
