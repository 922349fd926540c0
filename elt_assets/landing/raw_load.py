"""Loading one window of landing files into a raw table: check everything, then replace.

Files are read by DuckDB (CSV and Parquet natively), every value is checked against the
raw table's contract (one contract on every engine, see docs/landing-zone.md), and only
then is the window replaced, in the same transaction, so a bad file leaves the old rows
as they were. Each engine decides where that DuckDB is (elt_assets.engines): on the DuckDB
warehouse it is the warehouse itself; PostgreSQL loads what an in-memory DuckDB checked;
Spark reads the files itself (elt_assets.engines.spark_load) and uses this module's
wording and CSV diagnosis.

The contract: a value lands only if the raw column holds it exactly. Integers are written
as integers (`23.7`, `1e3`, `0x10` are refused, never rounded); a Parquet float or decimal
goes into an integer column only when it is whole; text fits its VARCHAR(n), the length
declared in the raw table's DDL (DuckDB itself does not enforce it).
"""

from __future__ import annotations

import csv
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date

import sqlalchemy as sa

from elt_assets import settings
from elt_assets.engines.base import Column, Session, first_line, validate_identifier, window_filter
from elt_assets.landing.zone import (
    LandingError,
    LandingFile,
    LandingZone,
    landing_files_for_day,
    refuse_unloadable,
    table_relative_name,
)
from elt_assets.partitions import days_in

BOOKKEEPING_COLUMNS = ("partition_date", "source_file")
STAGE_TABLE = "_landing_rows"
TEXT_TABLE = "_landing_text"
FILES_TABLE = "_landing_files"
# A day without a file of these tables is an error; other tables land change sets.
TABLES_REQUIRED_EVERY_DAY = ("user_event",)
# The setting that lets a load replace rows whose landing files are gone (see
# refuse_vanished_files). Read here, at the one place that needs it.
ALLOW_VANISHED_FILES_ENV = "ELT_ALLOW_VANISHED_FILES"
# DuckDB's CSV reader refuses longer rows; given explicitly so the diagnosis agrees.
MAX_ROW_BYTES = 2_000_000
# Characters DuckDB's readers expand as a glob in a path.
GLOB_CHARACTERS = frozenset("[]{}*?")
# CSV as RFC 4180 has it. Nothing is sniffed: DuckDB's sniffer may take a ragged row
# for the header and skip the lines above it. Values are read as text, and cast by the
# contract's SQL.
_CSV_OPTIONS = (
    "header = true, delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
    f"auto_detect = false, max_line_size = {MAX_ROW_BYTES}"
)
_INTEGER_TYPES = ("SMALLINT", "INTEGER", "BIGINT")
# An integer as text: digits, a sign, spaces around. No fraction, exponent, hex or `_`.
_INTEGER_TEXT = r"[ \t]*[+-]?[0-9]+[ \t]*"
_SHOWN_CHARACTERS = 60
# The bytes of a "plain" CSV file's rows (digits_only_csv), read in chunks of this size.
_PLAIN_CSV_BYTES = b"0123456789+-:,\" \t\r\n"
_PLAIN_CHUNK_BYTES = 1 << 24
# `name varchar(n)`, `name character varying(n)` or `name char(n)` in a create table statement.
_LENGTH_DECLARATION = re.compile(
    r"\b([A-Za-z_][A-Za-z0-9_]*)\s+(?:varchar|character\s+varying|char|character)\s*\(\s*(\d+)\s*\)",
    re.IGNORECASE,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LandingColumn:
    """A column landing files must carry, with the DuckDB type its values must cast to."""

    name: str
    cast_type: str
    max_length: int | None = None


def landing_columns(table_columns: list[Column], ddl: str | None = None) -> list[LandingColumn]:
    """The raw table's columns that landing files carry (all but the bookkeeping ones).

    VARCHAR lengths come from the catalog, else from the table's DDL: DuckDB's catalog
    keeps no length, and the contract is the same on every engine.
    """
    declared = declared_lengths(ddl) if ddl else {}
    return [
        _landing_column(column, declared.get(column.name))
        for column in table_columns
        if column.name not in BOOKKEEPING_COLUMNS
    ]


def declared_lengths(ddl: str) -> dict[str, int]:
    """The VARCHAR(n) lengths a `create table` statement declares, by column.

    The raw tables' DDL is ours and plain (one column per line, as in sql/raw_data/), so
    a pattern reads it: parsing it with sqlglot cost every raw load about 0.4 s of import.
    """
    return {name.lower(): int(length) for name, length in _LENGTH_DECLARATION.findall(ddl)}


def files_for_window(root: str | LandingZone, table: str, first_day: date, end_day: date) -> list[LandingFile]:
    """Every landing file of the window; raises if a file of it cannot be loaded (an
    unknown format, a link out of the root) or a required day has none."""
    files: list[LandingFile] = []
    for day in days_in(first_day, end_day):
        found = landing_files_for_day(root, table, day)
        refuse_unloadable(found)
        if not found and table in TABLES_REQUIRED_EVERY_DAY:
            raise LandingError(
                f"no events landed for {day}: expected {root}/{table}/{day}.csv "
                f"or part files in {root}/{table}/{day}/"
            )
        files.extend(found)
    return files


def refuse_vanished_files(
    session: Session, target: str, table: str, files: list[LandingFile], first_day: date, end_day: date
) -> None:
    """Refuse to replace days of `target` holding rows of landing files that are gone.

    Replacing a window deletes its rows first: a change-set file archived after its load
    would silently take its day's rows (and the dimensions built from them) with it.
    Files are compared by their name in the table's folder, so a landing root that moved
    keeps its files. ELT_ALLOW_VANISHED_FILES=1 replaces the days with the files found now.
    """
    window = {"window_start": first_day, "window_end": end_day}
    stored = session.execute(
        f"select distinct partition_date, source_file from {target} where {window_filter('partition_date')}",
        window,
    ).all()
    found: dict[date, set[str]] = {}
    for landing_file in files:
        found.setdefault(landing_file.day, set()).add(landing_file.name)
    vanished: dict[date, list[str]] = {}
    for day, source_file in stored:
        if table_relative_name(source_file, table) not in found.get(day, set()):
            vanished.setdefault(day, []).append(source_file)
    if not vanished:
        return
    days = "; ".join(
        f"{day}: rows of {', '.join(sorted(paths))} (found now: "
        f"{', '.join(sorted(f.path for f in files if f.day == day)) or 'no file'})"
        for day, paths in sorted(vanished.items())
    )
    if allow_vanished_files():
        log.warning("%s: replacing rows of vanished landing files (%s=1): %s", target, ALLOW_VANISHED_FILES_ENV, days)
        return
    raise LandingError(
        f"{target} keeps rows of landing files that are no longer in the landing zone, which "
        f"reloading would delete: {days}. Put the files back to keep those rows; if they were "
        f"removed, renamed or merged into other files on purpose, run again with "
        f"{ALLOW_VANISHED_FILES_ENV}=1 to replace those days with the files found now"
    )


def window_columns(
    engine, session: Session, model, files: list[LandingFile], first_day: date, end_day: date
) -> tuple[list[LandingColumn], int | None]:
    """The raw table's landing columns and the longest source_file path it takes, once the
    window's earlier files are known to be all still there (refuse_vanished_files): how
    the SQL engines' loads begin."""
    ddl = model.sql_path.read_text(encoding="utf-8")
    columns = landing_columns(engine.table_columns(session, model.schema, model.name), ddl)
    refuse_vanished_files(session, model.qualified_name, model.name, files, first_day, end_day)
    return columns, declared_lengths(ddl).get("source_file")


def allow_vanished_files() -> bool:
    """Whether ELT_ALLOW_VANISHED_FILES is set (1, true or yes)."""
    return settings.allow_vanished_files()


def load_landing_files(
    reader: Session,
    target: str,
    table: str,
    columns: list[LandingColumn],
    files: list[LandingFile],
    first_day: date,
    end_day: date,
    path_length: int | None = None,
) -> int:
    """Append the checked rows of every file to `target` on a DuckDB connection.

    `target` has the raw table's columns and holds no other rows of the window. The
    files are read in one scan per format and header (Parquet: and column types), so a
    range of days is read like a single table, and every value is cast by the contract's
    SQL there; only when a scan or a check fails are the files read again, one at a time,
    to say which file, line and value is wrong. Raises LandingError on the first problem
    (and runs no statement after a failed one: the transaction is aborted then); returns
    the number of rows loaded.
    """
    refuse_unloadable(files)
    for landing_file in files:
        if path_length is not None and len(landing_file.path) > path_length:
            raise LandingError(
                f"landing file {landing_file.path}: its path is longer than {path_length} "
                f"characters (raw_data.{table}.source_file)"
            )
    if not files:
        return 0
    with _readable(files) as files:
        groups: dict[tuple[str, tuple[tuple[str, str], ...], bool], list[LandingFile]] = {}
        for landing_file in files:
            header = _check_file_shape(reader, table, columns, landing_file)
            plain = landing_file.format == "csv" and digits_only_csv(landing_file.local_path)
            groups.setdefault((landing_file.format, header, plain), []).append(landing_file)
        reader.execute(f"create or replace temp table {FILES_TABLE} (local_path varchar, path varchar, day date)")
        reader.execute(
            f"insert into {FILES_TABLE} (local_path, path, day) values (:local_path, :path, :day)",
            [{"local_path": str(f.local_path), "path": f.path, "day": f.day} for f in files],
        )
        for (file_format, header, plain), group in groups.items():
            try:
                reader.execute(
                    _checked_insert_sql(target, columns, file_format, header, plain),
                    {"local_paths": [str(f.local_path) for f in group]},
                )
            except sa.exc.DBAPIError as error:
                for landing_file in group:
                    diagnose_file(table, columns, landing_file)  # raises at the first bad file
                paths = ", ".join(f.path for f in group)
                raise LandingError(f"cannot read landing files {paths}: {first_line(error)}") from error
        reader.execute(f"drop table {FILES_TABLE}")
        return _check_loaded_rows(reader, target, table, columns, files, first_day, end_day)


@contextmanager
def _readable(files: list[LandingFile]) -> Iterator[list[LandingFile]]:
    """The files, each readable by exactly its own name.

    DuckDB expands glob characters in a path (`part?.csv` also reads `part1.csv`) and
    has no setting to turn that off; a file whose path has them is read through a link
    with a plain name. `path` stays the landed name, for source_file and messages.
    """
    globbed = [f for f in files if GLOB_CHARACTERS & set(str(f.local_path)) or str(f.local_path).startswith("~")]
    if not globbed:
        yield files
        return
    with tempfile.TemporaryDirectory(prefix="elt-landing-links-") as folder:
        links = {}
        for index, landing_file in enumerate(globbed):
            link = os.path.join(folder, f"file-{index}.{landing_file.format}")
            os.symlink(os.path.abspath(landing_file.local_path), link)
            links[landing_file.path] = link
        yield [replace(f, local_copy=links[f.path]) if f.path in links else f for f in files]


def _checked_insert_sql(
    target: str,
    columns: list[LandingColumn],
    file_format: str,
    header: tuple[tuple[str, str], ...],
    plain: bool = False,
) -> str:
    """The insert of a group of files' rows, each value cast and checked by the contract.
    In `plain` files (see digits_only_csv) DuckDB's reader parses the integer columns
    itself, exactly (about a fifth faster than reading text and casting it), so their
    values need no text test; the rest stay text."""
    names = ", ".join(column.name for column in columns)
    source_types = dict(header)
    if plain:
        integers = {column.name: column.cast_type for column in columns if column.cast_type in _INTEGER_TYPES}
        source_types = {name: integers.get(name, kind) for name, kind in header}
    if file_format == "csv":
        scan = f"read_csv(:local_paths, {_CSV_OPTIONS}, filename = true, columns = {_csv_columns(source_types)})"
    else:
        scan = "read_parquet(:local_paths, filename = true)"
    selected = ", ".join(
        _checked_value_sql(column, source_types[column.name], f"scanned.{column.name}") for column in columns
    )
    return (
        f"insert into {target} ({names}, partition_date, source_file) "
        f"select {selected}, landed.day, landed.path from {scan} as scanned "
        f"inner join {FILES_TABLE} as landed on landed.local_path = scanned.filename"
    )


def _csv_columns(types: Mapping[str, str]) -> str:
    """Every column with the type it is read as, named in the file's own order: DuckDB
    names CSV columns by position when they are given, so a reordered file still lands by
    name."""
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in types.items()) + "}"


def _checked_value_sql(column: LandingColumn, source_type: str, value: str) -> str:
    """The value cast to the column's type, or a failed statement when the contract
    refuses it (the diagnosis then says where)."""
    cast = f"cast({value} as {column.cast_type})"
    strict = _strict_sql(column, source_type, value)
    if strict is None:
        return cast
    return f"case when {value} is null or ({strict}) then {cast} else error('landing value refused') end"


def _valid_sql(column: LandingColumn, source_type: str, value: str) -> str:
    """True when a non-null value goes into the column exactly (the diagnosis' test)."""
    strict = _strict_sql(column, source_type, value)
    cast_ok = f"try_cast({value} as {column.cast_type}) is not null"
    return f"({strict}) and {cast_ok}" if strict else cast_ok


def _strict_sql(column: LandingColumn, source_type: str, value: str) -> str | None:
    """What a value must satisfy besides casting: DuckDB's casts round `23.7` and 1.4
    into integers and read `1e3`, `0x10` and `1_000` as numbers; its VARCHAR has no length."""
    if column.cast_type in _INTEGER_TYPES:
        if source_type == "VARCHAR":
            return f"regexp_full_match({value}, '{_INTEGER_TEXT}')"
        if source_type in ("FLOAT", "DOUBLE"):
            return f"isfinite({value}) and {value} = trunc({value})"
        if source_type.startswith("DECIMAL"):
            return f"{value} = trunc({value})"
        return None
    if column.max_length is not None:
        return f"length(cast({value} as varchar)) <= {int(column.max_length)}"
    return None


def digits_only_csv(path: str | os.PathLike) -> bool:
    """True when a CSV file's rows (after the header line) hold nothing but digits, signs,
    the date and time separators, blanks, commas, quotes and line ends.

    In such a file every integer field is plain decimal text, which DuckDB's cast takes
    exactly or refuses: the per-value test for `23.7`, `1e3`, `0x10` or `1_000` can be
    skipped. Checking the bytes here costs about 30 ms per million event rows, the test
    in SQL several times that.
    """
    with open(path, "rb") as handle:
        handle.readline()
        while chunk := handle.read(_PLAIN_CHUNK_BYTES):
            if chunk.translate(None, _PLAIN_CSV_BYTES):
                return False
    return True


def _check_file_shape(
    reader: Session, table: str, columns: list[LandingColumn], landing_file: LandingFile
) -> tuple[tuple[str, str], ...]:
    """Refuse empty files and files whose columns are not exactly the raw table's.

    Returns the file's columns in the file's order, with their types (CSV: text).
    """
    names = [column.name for column in columns]
    if landing_file.size == 0:
        raise LandingError(f"landing file {landing_file.path} is empty (0 bytes)")
    if landing_file.format == "csv":
        found = csv_header(landing_file)
        header = tuple((name, "VARCHAR") for name in found)
    else:
        try:
            described = reader.execute(
                "select column_name, column_type from (describe select * from read_parquet(:path))",
                {"path": landing_file.local_path},
            )
            header = tuple((row[0], row[1]) for row in described)
        except sa.exc.DBAPIError as error:
            raise LandingError(f"cannot read landing file {landing_file.path}: {first_line(error)}") from error
        found = [name for name, _ in header]
    check_header(f"raw_data.{table}", names, landing_file, found)
    return header


def csv_header(landing_file: LandingFile) -> list[str]:
    """The column names on a CSV file's first line. A UTF-8 byte order mark before it is
    accepted (spreadsheets write one), as DuckDB and Spark accept it."""
    try:
        with open(landing_file.local_path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            return [name.strip() for name in next(csv.reader(handle), [])]
    except (OSError, csv.Error) as error:
        raise LandingError(f"cannot read landing file {landing_file.path}: {first_line(error)}") from error


def check_header(relation: str, names: list[str], landing_file: LandingFile, found: list[str]) -> None:
    """Refuse a file whose columns are not exactly the table's, by name in any order."""
    missing = [name for name in names if name not in found]
    extra = [shown_name(name) for name in found if name not in names]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected column(s) {', '.join(extra)}")
        raise LandingError(
            f"landing file {landing_file.path} does not match {relation}: "
            f"{'; '.join(problems)} (expected exactly: {', '.join(names)})"
        )
    repeated = sorted({name for name in found if found.count(name) > 1})
    if repeated:
        raise LandingError(
            f"landing file {landing_file.path} does not match {relation}: "
            f"column(s) {', '.join(repeated)} appear more than once"
        )


def shown_name(name: str) -> str:
    """A column name as a message shows it: quoted when it has invisible characters, cut short."""
    if name.isprintable() and len(name) <= _SHOWN_CHARACTERS:
        return name
    return shown_value(name)


def shown_value(value: object) -> str:
    """A value as a message shows it: quoted, at most 60 characters of it."""
    text = str(value)
    if len(text) <= _SHOWN_CHARACTERS:
        return repr(text)
    return f"{text[:_SHOWN_CHARACTERS]!r}... ({len(text)} characters)"


def _check_loaded_rows(
    reader: Session,
    target: str,
    table: str,
    columns: list[LandingColumn],
    files: list[LandingFile],
    first_day: date,
    end_day: date,
) -> int:
    """Checks a row-by-row cast cannot make: rows per file, the event's day."""
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
    if table == "user_event":
        suspect = reader.execute(
            f"select source_file from {target} where {in_window} and datestamp is not null "
            "and cast(datestamp as date) <> partition_date limit 1",
            window,
        ).scalar()
        if suspect is not None:
            landing_file = next(file for file in files if file.path == suspect)
            diagnose_file(table, columns, landing_file)
            raise LandingError(f"landing file {suspect} holds a value the raw table cannot take")
    return sum(counts.values())


def diagnose_file(table: str, columns: list[LandingColumn], landing_file: LandingFile) -> None:
    """Read one file again, in order, and raise at its first bad row or value.

    It runs in its own in-memory DuckDB: the load's transaction may already be aborted.
    """
    from elt_assets.engines.duckdb import DuckDBEngine

    with DuckDBEngine("duckdb:///:memory:").transaction() as reader:
        # Row numbers come from the order rows are read in, so keep that order here.
        reader.execute("set preserve_insertion_order = true")
        _diagnose(reader, table, columns, landing_file)


def _diagnose(reader: Session, table: str, columns: list[LandingColumn], landing_file: LandingFile) -> None:
    if landing_file.format == "csv":
        header = tuple((name, "VARCHAR") for name in csv_header(landing_file))
        scan = f"read_csv(:path, {_CSV_OPTIONS}, columns = {_csv_columns(dict(header))})"
    else:
        scan = "read_parquet(:path)"
    try:
        reader.execute(f"create temp table _landing_file as select * from {scan}", {"path": landing_file.local_path})
    except sa.exc.DBAPIError as error:
        problem = csv_structure_problem(landing_file.local_path) if landing_file.format == "csv" else None
        reason = f"line {problem[0]} {problem[1]}" if problem else first_line(error)
        raise LandingError(f"cannot read landing file {landing_file.path}: {reason}") from error
    types = dict(reader.execute("select column_name, column_type from (describe _landing_file)").all())
    valid = ", ".join(
        f"{_valid_sql(column, types[column.name], validate_identifier(column.name))} as {column.name}_ok"
        for column in columns
    )
    reader.execute(
        f"create temp table {TEXT_TABLE} as select *, {valid}, row_number() over () as source_row from _landing_file"
    )
    for column in columns:
        bad = reader.execute(
            f"select source_row, cast({column.name} as varchar) from {TEXT_TABLE} "
            f"where {column.name} is not null and not coalesce({column.name}_ok, false) "
            "order by source_row limit 1"
        ).first()
        if bad is not None:
            problem = (
                f"is longer than {column.max_length} characters"
                if column.max_length is not None
                else f"is not a valid {column.cast_type.lower()}"
            )
            raise LandingError(
                f"{where_in_file(landing_file, bad[0])}: {column.name} value {shown_value(bad[1])} {problem} "
                f"(raw_data.{table}.{column.name})"
            )
    if table == "user_event":
        bad = reader.execute(
            f"select source_row, cast(datestamp as varchar) from {TEXT_TABLE} where datestamp is not null "
            "and cast(cast(datestamp as timestamp) as date) <> cast(:day as date) order by source_row limit 1",
            {"day": landing_file.day},
        ).first()
        if bad is not None:
            raise LandingError(
                f"{where_in_file(landing_file, bad[0])}: datestamp {shown_value(bad[1])} is not on the "
                f"file's day {landing_file.day}"
            )


def where_in_file(landing_file: LandingFile, row: int) -> str:
    """`landing file PATH, line N` for the CSV line the row starts on (the header is
    line 1), `landing file PATH, row N` for a Parquet row; `row` counts rows from 1."""
    if landing_file.format == "csv":
        return f"landing file {landing_file.path}, line {csv_line_of_row(landing_file.local_path, row)}"
    return f"landing file {landing_file.path}, row {row}"


def _csv_records(path: str) -> Iterator[tuple[int, int, list[str]]]:
    """Every record of a CSV file, the header first: the line it starts on, its size in
    bytes, its fields. Blank lines are skipped, as DuckDB skips them. A csv.Error or
    UnicodeDecodeError it raises carries `line`, the line its record starts on."""
    consumed = {"lines": 0, "bytes": 0}

    def lines() -> Iterator[str]:
        with open(path, "rb") as handle:
            for raw in handle:
                consumed["lines"] += 1
                consumed["bytes"] += len(raw)
                yield raw.decode("utf-8")

    limit = csv.field_size_limit()
    # Fields as long as DuckDB's rows; the limit is the process's, so it is put back.
    csv.field_size_limit(max(limit, MAX_ROW_BYTES * 4))
    start = (1, 0)
    try:
        for record in csv.reader(lines(), strict=True):
            line, size = start[0], consumed["bytes"] - start[1]
            start = (consumed["lines"] + 1, consumed["bytes"])
            if record:
                yield line, size, record
    except (csv.Error, UnicodeDecodeError) as error:
        error.line = start[0]  # type: ignore[attr-defined]
        raise
    finally:
        csv.field_size_limit(limit)


def csv_structure_problem(path: str) -> tuple[int, str] | None:
    """The first line of a CSV file that DuckDB's reader cannot take, and what is wrong
    with it: more or fewer fields than the header, longer than MAX_ROW_BYTES, broken
    quoting, bytes that are not UTF-8. Reads the file in Python: for diagnosis only."""
    width = None
    try:
        for line, size, record in _csv_records(path):
            if size > MAX_ROW_BYTES:
                return line, f"is {size} bytes long, more than the {MAX_ROW_BYTES} bytes a row may have"
            width = width or len(record)
            if len(record) != width:
                return line, f"has {len(record)} fields where the header has {width}"
    except UnicodeDecodeError as error:
        return error.line, "is not valid UTF-8"  # type: ignore[attr-defined]
    except csv.Error as error:
        return error.line, f"is not valid CSV ({error})"  # type: ignore[attr-defined]
    return None


def csv_line_of_row(path: str, row: int) -> int:
    """The line on which a CSV file's row starts (rows counted from 1 after the header):
    the row's number plus one, unless quoted fields span lines or blank lines precede it."""
    try:
        for index, (line, _, _) in enumerate(_csv_records(path)):
            if index == row:
                return line
    except (csv.Error, UnicodeDecodeError, OSError):
        pass
    return row + 1


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


def _landing_column(column: Column, declared_length: int | None = None) -> LandingColumn:
    cast_type = _CAST_TYPES.get(column.data_type)
    if cast_type is None:
        raise TypeError(f"raw column {column.name} has type {column.data_type}, which landing files cannot carry")
    max_length = (column.max_length or declared_length) if cast_type == "VARCHAR" else None
    return LandingColumn(column.name, cast_type, max_length)
