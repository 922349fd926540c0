"""Raw landing loads on the Spark engine: Spark reads the landing files itself.

The contract is raw_load's (elt_assets.landing.raw_load), with the same error texts where
Spark can say the same: a file's columns must be exactly the raw table's (matched by
name, in any order), every value must cast to its column's type, VARCHAR(n) values must
fit, events must be on their file's day, and only when all of that holds is the raw
table's window replaced. A failed load leaves the window's previous rows as they were.

What runs where:
- in this process, only each file's header: the first line of a CSV file (Python's csv
  module), the footer of a Parquet file (an in-memory DuckDB's `describe`);
- in Spark, every row: files with the same format and header are read by one Spark read,
  CSV as text in the file's own column order (RFC 4180 quoting, malformed rows fail),
  Parquet by name with each value cast to text, so both are checked the same way;
- the rows read are cached in Spark, checked there in one query (per file: rows, the
  first bad value of each column, the first event off its day), and the window is then
  replaced from that cache with `OverwriteWindow`, cast to the table's types.

The server must see the landing files at their local paths: it runs on this machine (S3
files are read from the local copies the landing zone downloads).

Spark round trips of a load that passes: 8, plus one per day of the window left without
files. Three of them do the work: the check query (which reads the files into the cache),
OverwriteWindow's read of the staged and existing days, and its overwrite; the others are
bookkeeping of a few milliseconds each (persist, create and drop the staged view,
sending OverwriteWindow's read, unpersist). A refused file costs the persist, the check and
the unpersist, or nothing when its header is wrong.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from urllib.parse import unquote

from elt_assets.engines.base import (
    Column,
    WarehouseError,
    first_line,
    validate_identifier,
)
from elt_assets.landing import raw_load
from elt_assets.landing.raw_load import (
    csv_header,
    csv_line_of_row,
    csv_structure_problem,
    shown_value,
)
from elt_assets.landing.zone import LandingError, LandingFile, refuse_unloadable

BOOKKEEPING_COLUMNS = ("partition_date", "source_file")
PARTITION_COLUMN = "partition_date"
# Tables whose rows are events of their file's day (as raw_load checks them).
EVENT_TABLES = {"user_event": "datestamp"}

# RFC 4180 CSV as DuckDB reads it: doubled quotes inside quotes (Spark's default escape
# is a backslash), quoted newlines, no inference, a malformed row fails the read.
CSV_OPTIONS = {
    "header": "true",
    "sep": ",",
    "quote": '"',
    "escape": '"',
    "mode": "FAILFAST",
    "multiLine": "true",
    "inferSchema": "false",
    "encoding": "UTF-8",
}
# The characters Hadoop's path glob expands; a landing file's name is literal.
_GLOB_CHARACTERS = re.compile(r"([\[\]{}*?\\])")
_DECIMAL = re.compile(r"^DECIMAL\(\d+,\s*\d+\)$")
_TYPE_NAMES = {
    "INT": "integer",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "TINYINT": "tinyint",
    "DOUBLE": "double",
    "FLOAT": "float",
    "REAL": "float",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_LTZ": "timestamp",
    "TIMESTAMP_NTZ": "timestamp",
}
_TEXT_TYPES = ("STRING", "VARCHAR", "CHAR")
_INTEGER_NAMES = ("integer", "bigint", "smallint", "tinyint")


@dataclass(frozen=True)
class TextColumn:
    """A raw column as landing files carry it: text that must cast to `spark_type`.

    `type_name` is the type as error messages say it (DuckDB's names, as raw_load says
    them); text columns have none and are checked only against `max_length`.
    """

    name: str
    spark_type: str
    type_name: str | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class FileGroup:
    """Files read by one Spark read: one format and one header (Parquet: and types)."""

    format: str
    header: tuple[str, ...]
    files: tuple[LandingFile, ...]
    # Parquet: each column's type, in header order (DuckDB's names); CSV: none.
    types: tuple[str, ...] = ()


def load_landing_files(
    session,
    model,
    table_columns: list[Column],
    files: list[LandingFile],
    first_day: date,
    end_day: date,
) -> int:
    """Replace `model`'s window [first_day, end_day) with the files' rows, read by Spark.

    `session` is a SparkSession_ (elt_assets.engines.spark); `model` has `name`, `schema`
    and `qualified_name`; `table_columns` are the raw table's columns as
    SparkEngine.table_columns reports them. Every file is checked before anything is
    written: raises LandingError naming the file (and line, and value) at the first
    problem, and the window keeps its previous rows. Returns the number of rows loaded.
    With no files, the window's days are emptied.
    """
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    columns = text_columns(table_columns)
    refuse_unloadable(files)
    _check_paths(model, table_columns, files, first_day, end_day)
    groups = group_files(model, [column.name for column in columns], files)
    spark = session.spark
    staged = validate_identifier(f"_landing_{model.name}_{uuid.uuid4().hex[:8]}"[:63])
    with _cached(_landed_rows(spark, columns, groups, files)) as rows:
        loaded = check_rows(model, columns, files, rows) if files else 0
        rows.select(*_typed(columns)).createOrReplaceTempView(staged)
        try:
            window = {"window_start": first_day, "window_end": end_day}
            engine = session.engine
            for statement in engine.window_writes(model.qualified_name, PARTITION_COLUMN, staged, window):
                statement.run(engine, session)
        finally:
            spark.catalog.dropTempView(staged)
    return loaded


# ---------------------------------------------------------------- the table's columns


def text_columns(table_columns: list[Column]) -> list[TextColumn]:
    """The raw table's columns that landing files carry (all but the bookkeeping ones)."""
    return [
        _text_column(column)
        for column in table_columns
        if column.name not in BOOKKEEPING_COLUMNS
    ]


def _text_column(column: Column) -> TextColumn:
    name = validate_identifier(column.name)
    data_type = column.data_type.upper()
    if data_type in _TEXT_TYPES:
        return TextColumn(name, "STRING", None, column.max_length)
    if data_type in _TYPE_NAMES:
        return TextColumn(name, data_type, _TYPE_NAMES[data_type])
    if _DECIMAL.match(data_type):
        return TextColumn(name, data_type, data_type.lower().replace(" ", ""))
    raise TypeError(
        f"raw column {column.name} has type {column.data_type}, which landing files cannot carry"
    )


def _check_paths(
    model, table_columns: list[Column], files: list[LandingFile], first_day, end_day
) -> None:
    """Refuse files of days outside the window, and paths source_file cannot hold."""
    limit = next((c.max_length for c in table_columns if c.name == "source_file"), None)
    for landing_file in files:
        if not first_day <= landing_file.day < end_day:
            raise LandingError(
                f"landing file {landing_file.path} is for {landing_file.day}, outside the "
                f"window [{first_day}, {end_day}) of {model.qualified_name}"
            )
        if limit is not None and len(landing_file.path) > limit:
            raise LandingError(
                f"landing file {landing_file.path}: its path is longer than {limit} "
                f"characters ({model.qualified_name}.source_file)"
            )
    local_paths = [_absolute(f) for f in files]
    if len(set(local_paths)) != len(local_paths):
        raise ValueError(f"a landing file is given twice: {', '.join(local_paths)}")


# ---------------------------------------------------------------- headers (this process)


def group_files(model, names: list[str], files: list[LandingFile]) -> list[FileGroup]:
    """The files grouped by format and header, in the order first seen; every header
    checked against the table's columns (empty files and mismatches refused)."""
    groups: dict[tuple, list[LandingFile]] = {}
    with _parquet_reader() as describe:
        for landing_file in files:
            if landing_file.size == 0:
                raise LandingError(
                    f"landing file {landing_file.path} is empty (0 bytes)"
                )
            if landing_file.format == "csv":
                header, types = _csv_header(landing_file), ()
            else:
                header, types = describe(landing_file)
            check_header(model, names, landing_file, header)
            groups.setdefault((landing_file.format, header, types), []).append(
                landing_file
            )
    return [
        FileGroup(file_format, header, tuple(group), types)
        for (file_format, header, types), group in groups.items()
    ]


def _csv_header(landing_file: LandingFile) -> tuple[str, ...]:
    """The column names on a CSV file's first line, as raw_load reads them (a UTF-8
    byte order mark before them accepted)."""
    return tuple(csv_header(landing_file))


@contextmanager
def _parquet_reader() -> Iterator:
    """A function giving a Parquet file's column names and types from its footer (an
    in-memory DuckDB, opened at the first Parquet file)."""
    connection = None

    def describe(landing_file: LandingFile) -> tuple[tuple[str, ...], tuple[str, ...]]:
        nonlocal connection
        import duckdb

        connection = connection or duckdb.connect()
        try:
            described = connection.execute(
                "select column_name, column_type from (describe select * from read_parquet(?))",
                [str(landing_file.local_path)],
            ).fetchall()
        except duckdb.Error as error:
            raise LandingError(
                f"cannot read landing file {landing_file.path}: {first_line(error)}"
            ) from error
        return tuple(row[0] for row in described), tuple(row[1] for row in described)

    try:
        yield describe
    finally:
        if connection is not None:
            connection.close()


def check_header(
    model, names: list[str], landing_file: LandingFile, header: tuple[str, ...]
) -> None:
    """Refuse a file whose columns are not exactly the table's (raw_load's texts)."""
    raw_load.check_header(model.qualified_name, names, landing_file, list(header))


# ---------------------------------------------------------------- reading (Spark)


def _landed_rows(spark, columns: list[TextColumn], groups: list[FileGroup], files):
    """Every file's rows as text, in the table's column order, with the landing file's
    index, path and day, and each row's position (`_row`) in its read.

    Lazy: nothing is read until the rows are used.
    """
    from pyspark.sql import functions as F

    reads = [_read_group(spark, columns, group) for group in groups]
    if not reads:
        return spark.range(0).select(
            *[F.lit(None).cast("string").alias(c.name) for c in columns],
            F.lit(None).cast("string").alias("_uri"),
            F.lit(None).cast("bigint").alias("_row"),
            F.lit(None).cast("int").alias("_file_index"),
            F.lit(None).cast("string").alias("_path"),
            F.lit(None).cast("date").alias("_day"),
        )
    rows = reads[0]
    for read in reads[1:]:
        rows = rows.unionByName(read)
    landed = spark.range(1).select(
        F.inline(
            F.array(
                *[
                    F.struct(
                        F.lit(_absolute(landing_file)).alias("_local"),
                        F.lit(index).alias("_file_index"),
                        F.lit(landing_file.path).alias("_path"),
                        F.lit(landing_file.day).alias("_day"),
                    )
                    for index, landing_file in enumerate(files)
                ]
            )
        )
    )
    # A left join: a row whose file Spark names in a way not mapped back stays, and the
    # check says so, rather than vanishing.
    return rows.join(
        F.broadcast(landed), F.col("_uri") == F.col("_local"), "left"
    ).drop("_local")


def _read_group(spark, columns: list[TextColumn], group: FileGroup):
    """One Spark read of a group's files: every column as text, by name."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    paths = [spark_path(landing_file) for landing_file in group.files]
    if group.format == "csv":
        schema = StructType([StructField(name, StringType()) for name in group.header])
        frame = spark.read.schema(schema).options(**CSV_OPTIONS).csv(paths)
        # An empty field is NULL, quoted or not, as DuckDB reads it.
        text = [F.nullif(F.col(c.name), F.lit("")).alias(c.name) for c in columns]
        # Each file is one task (multiLine), so its rows are numbered in order.
        row = F.monotonically_increasing_id()
    else:
        frame = spark.read.parquet(*paths)
        types = dict(zip(group.header, group.types))
        text = [_parquet_text(c, types.get(c.name, "")).alias(c.name) for c in columns]
        row = F.col("_metadata.row_index")
    return frame.select(
        *text,
        _normalised_uri(F.col("_metadata.file_path")).alias("_uri"),
        row.alias("_row"),
    )


def _parquet_text(column: TextColumn, file_type: str):
    """A Parquet value as text. A whole float or decimal bound for an integer column is
    written as an integer (1.0 as `1`), so it casts, as on DuckDB; one with a fraction
    keeps it (`1.4`) and is refused by the cast."""
    from pyspark.sql import functions as F

    value = F.col(column.name)
    fractional = file_type.upper() in ("FLOAT", "DOUBLE") or file_type.upper().startswith("DECIMAL")
    if column.type_name not in _INTEGER_NAMES or not fractional:
        return value.cast("string")
    whole = value.try_cast("decimal(38,0)")
    return F.when(whole.isNotNull() & (whole == value), whole.cast("string")).otherwise(value.cast("string"))


def spark_path(landing_file: LandingFile) -> str:
    """The file's absolute local path with Hadoop's glob characters escaped: Spark reads
    exactly this file (the server resolves relative paths against its own folder)."""
    return _GLOB_CHARACTERS.sub(r"\\\1", _absolute(landing_file))


def _absolute(landing_file: LandingFile) -> str:
    return os.path.abspath(str(landing_file.local_path))


def _normalised_uri(uri):
    """Spark's `file:` URI of a row's file as a plain local path: percent-decoded ('+'
    is a plus, not a space) and without the scheme."""
    from pyspark.sql import functions as F

    decoded = F.try_url_decode(F.replace(uri, F.lit("+"), F.lit("%2B")))
    return F.regexp_replace(decoded, F.lit("^file:/*"), F.lit("/"))


@contextmanager
def _cached(rows) -> Iterator:
    """The rows persisted in Spark for the block: checked and loaded from one read."""
    rows = rows.persist()
    try:
        yield rows
    finally:
        rows.unpersist()


# ---------------------------------------------------------------- checks (Spark)


def check_rows(model, columns: list[TextColumn], files: list[LandingFile], rows) -> int:
    """Check every row in one Spark query; raise LandingError at the first problem of the
    first bad file (files in the given order; a file's columns in table order, then its
    events' days). Returns the number of rows."""
    from pyspark.errors import PySparkException

    try:
        found = rows.groupBy("_file_index").agg(*_file_checks(model, columns)).collect()
    except PySparkException as error:
        raise read_error(error, files) from error
    by_file = {row["_file_index"]: row.asDict() for row in found}
    if None in by_file:
        raise WarehouseError(
            f"Spark read {by_file[None]['_uri']!r}, which is none of the landing files "
            f"given: {', '.join(f.path for f in files)}"
        )
    for index, landing_file in enumerate(files):
        _raise_first_problem(model, columns, landing_file, by_file.get(index))
    return sum(row["rows"] for row in found)


def _file_checks(model, columns: list[TextColumn]) -> list:
    """Per file: its rows, its first row's position, and for each check the first bad
    row (position and value), NULL when there is none."""
    from pyspark.sql import functions as F

    checks = [
        F.count(F.lit(1)).alias("rows"),
        F.min("_row").alias("first_row"),
        F.min("_uri").alias("_uri"),
    ]
    for column in columns:
        value = F.col(column.name)
        if column.type_name is not None:
            bad = value.isNotNull() & value.try_cast(column.spark_type).isNull()
        elif column.max_length is not None:
            bad = F.length(value) > F.lit(int(column.max_length))
        else:
            continue
        checks.append(_first_where(bad, value).alias(f"bad_{column.name}"))
    datestamp = _event_column(model, columns)
    if datestamp is not None:
        stamp = F.col(datestamp).try_cast("timestamp")
        off_day = stamp.isNotNull() & (stamp.cast("date") != F.col("_day"))
        checks.append(_first_where(off_day, F.col(datestamp)).alias("off_day"))
    return checks


def _first_where(condition, value):
    from pyspark.sql import functions as F

    return F.min(
        F.when(condition, F.struct(F.col("_row").alias("row"), value.alias("value")))
    )


def _event_column(model, columns: list[TextColumn]) -> str | None:
    name = EVENT_TABLES.get(model.name)
    return name if name in {column.name for column in columns} else None


def _raise_first_problem(
    model, columns: list[TextColumn], landing_file: LandingFile, row: dict | None
) -> None:
    if row is None:
        raise LandingError(
            f"landing file {landing_file.path} has a header but no rows; "
            "leave the file out when there is nothing to land"
        )
    for column in columns:
        bad = row.get(f"bad_{column.name}")
        if bad is None:
            continue
        if column.type_name is not None:
            problem = f"is not a valid {column.type_name}"
        else:
            problem = f"is longer than {column.max_length} characters"
        raise LandingError(
            f"{_where(landing_file, row, bad)}: {column.name} value {shown_value(bad['value'])} "
            f"{problem} ({model.qualified_name}.{column.name})"
        )
    off_day = row.get("off_day")
    if off_day is not None:
        raise LandingError(
            f"{_where(landing_file, row, off_day)}: datestamp {shown_value(off_day['value'])} is not "
            f"on the file's day {landing_file.day}"
        )


def _where(landing_file: LandingFile, row: dict, bad) -> str:
    """`landing file PATH, line N` (CSV: the line the row starts on, the header is line
    1) or `, row N` (Parquet), as raw_load says it."""
    if landing_file.format == "csv":
        line = csv_line_of_row(str(landing_file.local_path), bad["row"] - row["first_row"] + 1)
        return f"landing file {landing_file.path}, line {line}"
    return f"landing file {landing_file.path}, row {bad['row'] + 1}"


# ---------------------------------------------------------------- read failures


def read_error(error: Exception, files: list[LandingFile]) -> Exception:
    """Spark's failure to read the files as one line naming the file(s): a LandingError
    when Spark reported an error of its own (a malformed row, a missing or unreadable
    file), else a WarehouseError (e.g. the server could not be reached)."""
    reason = spark_reason(error)
    condition = getattr(error, "getCondition", None) or getattr(
        error, "getErrorClass", None
    )
    if condition is None or not condition():
        return WarehouseError(f"cannot read the landing files in Spark: {reason}")
    named = files_named_in(error, files) or files
    # A malformed CSV row: its line, found as raw_load finds it (Spark's text quotes
    # the row, and says only which file).
    for landing_file in named:
        if landing_file.format == "csv" and (problem := csv_structure_problem(str(landing_file.local_path))):
            return LandingError(f"cannot read landing file {landing_file.path}: line {problem[0]} {problem[1]}")
    noun = "landing file" if len(named) == 1 else "landing files"
    return LandingError(
        f"cannot read {noun} {', '.join(f.path for f in named)}: {reason}"
    )


def spark_reason(error: Exception) -> str:
    """The first line of Spark's message, and its root cause's when there is one (a
    FAILFAST read says only which file on its first line): no JVM stack trace."""
    text = str(error)
    reason = _without_sqlstate(first_line(error))
    causes = [line for line in text.splitlines() if line.startswith("Caused by: ")]
    if causes:
        cause = causes[-1][len("Caused by: ") :]
        cause = _without_sqlstate(cause.split(": ", 1)[-1])
        if cause and cause not in reason:
            reason = f"{reason} (caused by: {cause})"
    return reason


def _without_sqlstate(line: str) -> str:
    return re.sub(r"\s*SQLSTATE: \w+\s*$", "", line).strip()


def files_named_in(error: Exception, files: list[LandingFile]) -> list[LandingFile]:
    """The files Spark's error names (as a path, a `file:` URI, or an escaped glob):
    on its first line and in its parameters, else anywhere in its text."""
    parameters = getattr(error, "getMessageParameters", lambda: None)() or {}
    for text in (
        "\n".join([first_line(error), *map(str, parameters.values())]),
        str(error),
    ):
        readings = (
            text,
            unquote(text.replace("+", "%2B")),
            re.sub(r"\\(.)", r"\1", text),
        )
        named = [f for f in files if any(_absolute(f) in r for r in readings)]
        if named:
            return named
    return []


# ---------------------------------------------------------------- the staged rows


def _typed(columns: list[TextColumn]) -> list:
    """The checked text cast to the table's types, in the table's order, then the
    bookkeeping columns. VARCHAR(n) stays a string: the table checks its length."""
    from pyspark.sql import functions as F

    typed = [F.col(c.name).cast(c.spark_type).alias(c.name) for c in columns]
    return [
        *typed,
        F.col("_day").alias(PARTITION_COLUMN),
        F.col("_path").alias("source_file"),
    ]
