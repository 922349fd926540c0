"""Loading one window of landing files into a raw table: check everything, then replace.

Files are read by DuckDB (CSV and Parquet natively) straight into the raw table's types,
every value is checked, and only then is the window replaced, in the same transaction, so
a bad file leaves the old rows as they were. Each engine decides where that DuckDB is
(elt_assets.engines): on the DuckDB warehouse it is the warehouse itself; PostgreSQL
loads what an in-memory DuckDB checked.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from elt_assets.engines.base import Column, Session, first_line, validate_identifier, window_filter
from elt_assets.landing.zone import LandingError, LandingFile, LandingZone, landing_files_for_day
from elt_assets.partitions import days_in

BOOKKEEPING_COLUMNS = ("partition_date", "source_file")
STAGE_TABLE = "_landing_rows"
TEXT_TABLE = "_landing_text"
FILES_TABLE = "_landing_files"
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


def load_landing_files(
    reader: Session,
    target: str,
    table: str,
    columns: list[LandingColumn],
    files: list[LandingFile],
    first_day: date,
    end_day: date,
) -> int:
    """Append the typed rows of every file to `target` on a DuckDB connection, checked.

    `target` has the raw table's columns and holds no other rows of the window. The
    files are parsed straight into their column types (DuckDB's bulk path), in one scan
    per format and column order, so a range of days is read like a single table; when a
    scan fails or a check fails, the files are read again one at a time as text to say
    which file, line and value is wrong. Raises LandingError on the first problem;
    returns the number of rows loaded.
    """
    names = [column.name for column in columns]
    groups: dict[tuple[str, tuple[str, ...]], list[LandingFile]] = {}
    for landing_file in files:
        header = _check_file_shape(reader, table, names, landing_file)
        groups.setdefault((landing_file.format, header), []).append(landing_file)
    if not files:
        return 0
    reader.execute(f"create or replace temp table {FILES_TABLE} (local_path varchar, path varchar, day date)")
    reader.execute(
        f"insert into {FILES_TABLE} (local_path, path, day) values (:local_path, :path, :day)",
        [{"local_path": str(f.local_path), "path": f.path, "day": f.day} for f in files],
    )
    try:
        for (file_format, header), group in groups.items():
            try:
                reader.execute(
                    _typed_insert_sql(target, columns, file_format, header),
                    {"local_paths": [str(f.local_path) for f in group]},
                )
            except sa.exc.DBAPIError as error:
                for landing_file in group:
                    diagnose_file(table, columns, landing_file)  # raises at the first bad file
                paths = ", ".join(f.path for f in group)
                raise LandingError(f"cannot read landing files {paths}: {first_line(error)}") from error
    finally:
        reader.execute(f"drop table if exists {FILES_TABLE}")
    return _check_loaded_rows(reader, target, table, columns, files, first_day, end_day)


def _typed_insert_sql(target: str, columns: list[LandingColumn], file_format: str, header: tuple[str, ...]) -> str:
    names = ", ".join(column.name for column in columns)
    if file_format == "csv":
        # Types are given in the files' own column order: DuckDB names CSV columns by
        # position when they are given, so a reordered file still lands by name.
        cast_types = {column.name: column.cast_type for column in columns}
        types = ", ".join(f"'{name}': '{cast_types[name]}'" for name in header)
        scan = (
            "read_csv(:local_paths, header = true, delim = ',', quote = '\"', strict_mode = true, "
            f"filename = true, columns = {{{types}}})"
        )
        selected = ", ".join(f"scanned.{column.name}" for column in columns)
    else:
        scan = "read_parquet(:local_paths, filename = true)"
        selected = ", ".join(f"cast(scanned.{column.name} as {column.cast_type})" for column in columns)
    return (
        f"insert into {target} ({names}, partition_date, source_file) "
        f"select {selected}, landed.day, landed.path from {scan} as scanned "
        f"inner join {FILES_TABLE} as landed on landed.local_path = scanned.filename"
    )


def _check_file_shape(
    reader: Session, table: str, names: list[str], landing_file: LandingFile
) -> tuple[str, ...]:
    """Refuse empty files and files whose columns are not exactly the raw table's.

    Returns the file's column names in the file's order.
    """
    if landing_file.size == 0:
        raise LandingError(f"landing file {landing_file.path} is empty (0 bytes)")
    if landing_file.format == "csv":
        with open(landing_file.local_path, newline="", encoding="utf-8", errors="replace") as handle:
            found = [name.strip() for name in next(csv.reader(handle), [])]
    else:
        try:
            described = reader.execute(
                "select column_name from (describe select * from read_parquet(:path))",
                {"path": landing_file.local_path},
            )
            found = [row[0] for row in described]
        except sa.exc.DBAPIError as error:
            raise LandingError(f"cannot read landing file {landing_file.path}: {first_line(error)}") from error
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
    repeated = sorted({name for name in found if found.count(name) > 1})
    if repeated:
        raise LandingError(
            f"landing file {landing_file.path} does not match raw_data.{table}: "
            f"column(s) {', '.join(repeated)} appear more than once"
        )
    return tuple(found)


def _check_loaded_rows(
    reader: Session,
    target: str,
    table: str,
    columns: list[LandingColumn],
    files: list[LandingFile],
    first_day: date,
    end_day: date,
) -> int:
    """Checks the typed parse cannot make: rows per file, text lengths, the event's day."""
    window = {"window_start": first_day, "window_end": end_day}
    in_window = window_filter("partition_date")
    counts = dict(
        reader.execute(
            f"select source_file, count(*) from {target} where {in_window} group by source_file",
            window,
        ).all()
    )
    for landing_file in files:
        if not counts.get(landing_file.path):
            raise LandingError(
                f"landing file {landing_file.path} has a header but no rows; "
                "leave the file out when there is nothing to land"
            )
    problems = [
        f"length({column.name}) > {int(column.max_length)}"
        for column in columns
        if column.max_length is not None
    ]
    if table == "user_event":
        problems.append("datestamp is not null and cast(datestamp as date) <> partition_date")
    if problems:
        suspect = reader.execute(
            f"select source_file from {target} where {in_window} and ({' or '.join(problems)}) limit 1",
            window,
        ).scalar()
        if suspect is not None:
            landing_file = next(file for file in files if file.path == suspect)
            diagnose_file(table, columns, landing_file)
            raise LandingError(f"landing file {suspect} holds a value the raw table cannot take")
    return sum(counts.values())


def diagnose_file(table: str, columns: list[LandingColumn], landing_file: LandingFile) -> None:
    """Read one file as text, line by line in order, and raise at its first bad value.

    It runs in its own in-memory DuckDB: the load's transaction may already be aborted.
    """
    from elt_assets.engines.duckdb import DuckDBEngine

    with DuckDBEngine("duckdb:///:memory:").transaction() as reader:
        # Line numbers come from the order rows are read in, so keep that order here.
        reader.execute("set preserve_insertion_order = true")
        _diagnose(reader, table, columns, landing_file)


def _diagnose(reader: Session, table: str, columns: list[LandingColumn], landing_file: LandingFile) -> None:
    if landing_file.format == "csv":
        scan = (
            "read_csv(:path, header = true, delim = ',', quote = '\"', "
            "all_varchar = true, strict_mode = true)"
        )
    else:
        scan = "read_parquet(:path)"
    try:
        reader.execute(f"create or replace temp table _landing_file as select * from {scan}", {
            "path": landing_file.local_path
        })
    except sa.exc.DBAPIError as error:
        raise LandingError(f"cannot read landing file {landing_file.path}: {first_line(error)}") from error
    selected = ", ".join(f"cast({column.name} as varchar) as {column.name}" for column in columns)
    # Line numbers count the header as line 1; DuckDB keeps a file's rows in order here.
    reader.execute(
        
            f"create or replace temp table {TEXT_TABLE} as "
            f"select {selected}, cast(:day as date) as partition_date, "
            "cast(:path as varchar) as source_file, row_number() over () + 1 as source_line "
            "from _landing_file"
        ,
        {"day": landing_file.day, "path": landing_file.path},
    )
    try:
        for column in columns:
            _check_column(reader, table, column)
        if table == "user_event":
            _check_event_days(reader)
    finally:
        reader.execute(f"drop table if exists {TEXT_TABLE}")
        reader.execute("drop table if exists _landing_file")


def _check_column(reader: Session, table: str, column: LandingColumn) -> None:
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
        
            f"select source_file, source_line, {name} from {TEXT_TABLE} "
            f"where {name} is not null and {condition} "
            "order by source_file, source_line limit 1"
        
    ).first()
    if bad is not None:
        raise LandingError(
            f"landing file {bad[0]}, line {bad[1]}: {column.name} value {bad[2]!r} {problem} "
            f"(raw_data.{table}.{column.name})"
        )


def _check_event_days(reader: Session) -> None:
    bad = reader.execute(
        
            f"select source_file, source_line, datestamp, partition_date from {TEXT_TABLE} "
            "where datestamp is not null "
            "and cast(cast(datestamp as timestamp) as date) <> partition_date "
            "order by source_file, source_line limit 1"
        
    ).first()
    if bad is not None:
        raise LandingError(
            f"landing file {bad[0]}, line {bad[1]}: datestamp {bad[2]!r} is not on the "
            f"file's day {bad[3]}"
        )


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

