"""Spark over Spark Connect (`sc://host:port`): parquet tables in the server's catalog,
partitioned by the model's partition column. The Dagster process holds no JVM.

What differs from the SQL engines:
- no transactions: a plan's statements run one by one, each visible once it returns
  (see `after_failure`, and docs/spark.md for what a failed run leaves);
- no UPDATE/DELETE on parquet: a window is replaced with a dynamic INSERT OVERWRITE of its
  partitions, and the window's days the model no longer has rows for are dropped;
  a snapshot's valid_to/is_current are recomputed by overwriting the partitions that
  hold a touched key's versions;
- Spark moves partition columns to the end of a table: the model's column order is kept
  as the table property `elt.columns`, and `table_columns` reports that order;
- the project's SQL is PostgreSQL-flavoured; sqlglot renders it as Spark SQL;
- landing files are read by Spark itself (elt_assets.engines.spark_load).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import sqlglot

from elt_assets.engines.base import (
    Column,
    Engine,
    Statement,
    StatementError,
    WarehouseError,
    first_line,
    qualified,
    validate_identifier,
    window_filter,
)

COLUMN_ORDER_PROPERTY = "elt.columns"
ROWS_VIEW = "_python_rows"

_VARCHAR = re.compile(r"^(?:VARCHAR|CHAR)\((\d+)\)$")


# ---------------------------------------------------------------- the session


class SparkResult:
    """A DataFrame read like a SQLAlchemy result; collected at the first read."""

    def __init__(self, frame, text: str = ""):
        self._frame = frame
        self._text = text
        self._rows: list[Any] | None = None

    def _all_rows(self) -> list[Any]:
        if self._rows is None:
            from pyspark.errors import PySparkException

            try:
                self._rows = list(self._frame.collect())
            except PySparkException as error:
                raise _statement_error(error, self._text) from error
        return self._rows

    def all(self) -> list[Any]:
        return list(self._all_rows())

    def __iter__(self):
        return iter(self._all_rows())

    def first(self) -> Any:
        rows = self._all_rows()
        return rows[0] if rows else None

    def one(self) -> Any:
        rows = self._all_rows()
        if len(rows) != 1:
            raise WarehouseError(f"expected one row, got {len(rows)}")
        return rows[0]

    def scalar(self) -> Any:
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def keys(self) -> list[str]:
        return list(self._frame.columns)


class SparkSession_:
    """What a plan step talks to Spark through: `:name` markers bound by Spark itself."""

    def __init__(self, engine: SparkEngine, spark):
        self.engine = engine
        self.spark = spark

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        native: bool = False,
    ) -> SparkResult:
        """Run the project's SQL (translated), or with native=True Spark SQL as it is."""
        text = sql if native else self.engine.dialect_sql(sql)
        if isinstance(params, Sequence) and not isinstance(params, Mapping):
            result = SparkResult(self.spark.createDataFrame([], "n int"))
            for one in params:
                result = self._run(text, one)
            return result
        return self._run(text, params)

    def _run(self, text: str, params: Mapping[str, Any] | None) -> SparkResult:
        from pyspark.errors import PySparkException

        try:
            frame = self.spark.sql(text, args=dict(params)) if params else self.spark.sql(text)
        except PySparkException as error:
            raise _statement_error(error, text) from error
        return SparkResult(frame, text)


def _statement_error(error: Exception, text: str) -> StatementError:
    """Spark's error as one line, with the statement's first line: no JVM stack trace."""
    statement = " ".join(text.split())[:160]
    return StatementError(f"{first_line(error)} (in: {statement})")


class SparkStatement(Statement):
    """A statement written in Spark SQL already: run and printed without translation."""

    def run(self, engine: Engine, session) -> None:
        session.execute(
            self.text, dict(self.params) if self.params else None, native=True
        )

    def script(self, engine: Engine) -> str:
        from elt_assets.models.sql_text import render_literals

        return render_literals(self.text, dict(self.params or {}))


# ---------------------------------------------------------------- the engine


class SparkEngine(Engine):
    name = "spark"
    kind = "spark"
    transactional = False
    # Spark Connect sessions take concurrent queries; a round trip costs more than a query.
    concurrent_queries = 4
    metrics_by_window = True
    after_failure = (
        "Spark has no transactions: statements that finished before the failure stay; "
        "re-run the same partitions to repair them"
    )
    load_description = (
        "read the files in Spark as text, check every value's cast, then INSERT OVERWRITE the "
        "window's partitions and drop the window's days without files"
    )

    def __init__(self, url: str, lock_timeout_seconds: float = 600.0):
        from elt_assets import settings

        super().__init__(url, lock_timeout_seconds)
        # parquet: plain files, no DELETE/MERGE. delta, iceberg: tables with transactions,
        # written with DELETE + INSERT and MERGE (their jars must be on the cluster).
        self.table_format = settings.spark_table_format()
        self._spark = None
        self._lock = threading.Lock()

    @property
    def display_url(self) -> str:
        # sc://host:port/;token=... : mask any parameter after the path.
        return re.sub(r";(token|password)=[^;]*", r";\1=***", self.url)

    @property
    def spark(self):
        with self._lock:
            if self._spark is None:
                logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
                from pyspark.sql import SparkSession

                try:
                    self._spark = SparkSession.builder.remote(self.url).getOrCreate()
                except Exception as error:
                    raise WarehouseError(
                        f"cannot connect to the warehouse {self.display_url}: {first_line(error)}"
                    ) from error
            return self._spark

    @contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[SparkSession_]:
        # No transactions: every statement is visible when it returns. read_only is a
        # promise of the caller (compile only reads the catalog).
        yield SparkSession_(self, self.spark)

    def dispose(self) -> None:
        # The Connect session is kept for the process: creating one costs ~0.6 s, and
        # temp views of a run live in it.
        pass

    # ---------------------------------------------------------------- the catalog

    def table_columns(
        self, session: SparkSession_, schema: str, table: str
    ) -> list[Column]:
        name = qualified(schema, table)
        if not session.spark.catalog.tableExists(name):
            return []
        columns = []
        for row in session.spark.sql(f"describe table {name}").collect():
            if not row[0] or row[0].startswith("#"):
                break
            data_type = row[1].upper()
            match = _VARCHAR.match(data_type)
            columns.append(
                Column(row[0], "VARCHAR", int(match.group(1)))
                if match
                else Column(row[0], data_type)
            )
        properties = dict(session.spark.sql(f"show tblproperties {name}").collect())
        order = properties.get(COLUMN_ORDER_PROPERTY)
        if order:
            position = {column: index for index, column in enumerate(order.split(","))}
            columns.sort(key=lambda column: position.get(column.name, len(position)))
        return columns

    def query_columns(
        self, session: SparkSession_, sql: str, params: Mapping[str, Any]
    ) -> list[str]:
        # The schema is resolved by the analyzer; nothing runs over the data.
        return list(session.execute(sql, params).keys())

    # ---------------------------------------------------------------- a plan's pieces

    def dialect_sql(self, text: str) -> str:
        return _spark_sql(text)

    def create_schema(self, schema: str) -> list[Statement]:
        return [
            SparkStatement(
                f"create database if not exists {validate_identifier(schema)}"
            )
        ]

    def create_table(
        self, model, sql: str, window: Mapping[str, date]
    ) -> list[Statement]:
        partition = validate_identifier(model.partition_column)
        return [
            SparkStatement(
                f"create table {model.qualified_name} using {self.table_format} partitioned by ({partition}) as\n"
                f"select * from (\n{self.dialect_sql(sql)}\n) as model_rows where 1 = 0",
                window,
            ),
            RecordColumnOrder(model.qualified_name, sql, dict(window)),
        ]

    def declare_table(self, model, ddl: str) -> list[Statement]:
        partition = validate_identifier(model.partition_column)
        parsed = sqlglot.parse_one(ddl, read="postgres")
        columns = [column.name for column in parsed.this.expressions]
        order = ",".join(validate_identifier(column) for column in columns)
        return [
            SparkStatement(
                f"{self.dialect_sql(ddl)} USING {self.table_format} PARTITIONED BY ({partition}) "
                f"TBLPROPERTIES ('{COLUMN_ORDER_PROPERTY}' = '{order}')"
            )
        ]

    def replace_window_rows(self, session, model, rows, window) -> None:
        target = model.qualified_name
        schema = session.spark.table(target).schema
        frame = session.spark.createDataFrame(
            [tuple(row.get(field.name) for field in schema.fields) for row in rows],
            schema,
        )
        frame.createOrReplaceTempView(ROWS_VIEW)
        try:
            for statement in self.window_writes(target, model.partition_column, ROWS_VIEW, window):
                statement.run(self, session)
        finally:
            session.spark.sql(f"drop view if exists {ROWS_VIEW}")

    def day_previews(self, session, model, first_day, end_day, limit):
        # One query for the window: a round trip costs more than the ranking.
        columns = [column.name for column in self.table_columns(session, model.schema, model.name)]
        partition = validate_identifier(model.partition_column)
        ordered = ", ".join(columns[:3])
        result = session.execute(
            f"select {', '.join(columns)}, _preview_day from (\n"
            f"    select *, cast({partition} as date) as _preview_day,\n"
            f"        row_number() over (partition by cast({partition} as date) order by {ordered}) as _preview_rank\n"
            f"    from {model.qualified_name} where {window_filter(partition)}\n"
            f") as ranked where _preview_rank <= {int(limit)} order by _preview_day, {ordered}",
            {"window_start": first_day, "window_end": end_day},
            native=True,
        )
        by_day: dict[date, list[tuple]] = {}
        for row in result.all():
            by_day.setdefault(row[-1], []).append(tuple(row)[:-1])
        return columns, by_day

    def drop_table(self, model) -> list[Statement]:
        return [SparkStatement(f"drop table {model.qualified_name}")]

    def replace_window(
        self, model, sql: str, window: Mapping[str, date]
    ) -> list[Statement]:
        # The model's rows are computed once and cached: the overwrite reads them twice.
        # The view is named by the model (steps of one process share a session) and
        # replaced if a stopped run left it behind.
        view = _window_view(model)
        return [
            SparkStatement(f"drop view if exists {view}"),
            SparkStatement(
                f"cache table {view} as select * from (\n{self.dialect_sql(sql)}\n) as model_rows",
                window,
            ),
            *self.window_writes(model.qualified_name, model.partition_column, view, window),
            SparkStatement(f"drop view if exists {view}"),  # also drops its cache
        ]

    def window_writes(self, target: str, partition: str, source: str, window: Mapping[str, date]) -> list[Statement]:
        """Replace the window of `target` with the rows of the view `source`."""
        partition = validate_identifier(partition)
        window = {"window_start": window["window_start"], "window_end": window["window_end"]}
        if self.table_format == "parquet":
            return [OverwriteWindow(target, partition, source, window)]
        return [
            SparkStatement(f"delete from {target} where {window_filter(partition)}", window),
            SparkStatement(f"insert into {target} by name select * from {source}"),
        ]

    def touched_keys(self, model, window: Mapping[str, date]) -> list[Statement]:
        # A real table, not a cached view: a cache is re-read after the overwrite.
        key = validate_identifier(model.unique_key)
        keys = _touched_table(model)
        # Kept if a run fails before close_versions: the next run then also recomputes
        # the keys the failed run touched.
        return [
            SparkStatement(
                f"create table if not exists {keys} using {self.table_format} as "
                f"select {key} from {model.qualified_name} where 1 = 0"
            ),
            SparkStatement(
                f"insert into {keys} select distinct {key} from {model.qualified_name} "
                f"where {window_filter(model.partition_column)}",
                window,
            ),
        ]

    def close_versions(self, model, window: Mapping[str, date]) -> list[Statement]:
        """Overwrite every partition holding a version of a touched key, with valid_to and
        is_current of the touched keys recomputed over their whole history (one statement:
        dynamic INSERT OVERWRITE may read the table it writes)."""
        target = model.qualified_name
        key = validate_identifier(model.unique_key)
        partition = validate_identifier(model.partition_column)
        keys = _touched_table(model)
        collect = SparkStatement(
            f"insert into {keys} select distinct {key} from {target} where {window_filter(partition)}",
            window,
        )
        if self.table_format != "parquet":
            return [
                collect,
                SparkStatement(
                    f"merge into {target} as versions\nusing (\n"
                    f"    select {key}, valid_from,\n"
                    f"        lead(valid_from) over (partition by {key} order by valid_from) as next_valid_from\n"
                    f"    from {target}\n    where {key} in (select {key} from {keys})\n) as history\n"
                    f"on history.{key} = versions.{key} and history.valid_from = versions.valid_from\n"
                    "when matched then update set\n    valid_to = history.next_valid_from,\n"
                    "    is_current = history.next_valid_from is null"
                ),
                SparkStatement(f"drop table if exists {keys}"),
            ]
        return [
            collect,
            SparkStatement(
                f"insert overwrite table {target} partition ({partition}) by name\n"
                "with history as (\n"
                f"    select {key}, valid_from,\n"
                f"        lead(valid_from) over (partition by {key} order by valid_from) as next_valid_from\n"
                f"    from {target}\n    where {key} in (select {key} from {keys})\n),\n"
                "affected as (\n"
                f"    select distinct {partition} from {target} where {key} in (select {key} from {keys})\n"
                ")\n"
                f"select\n    versions.* except (valid_to, is_current),\n"
                f"    case when history.{key} is null then versions.valid_to else history.next_valid_from end as valid_to,\n"
                f"    case when history.{key} is null then versions.is_current else history.next_valid_from is null end"
                " as is_current\n"
                f"from {target} as versions\n"
                f"left join history\n    on history.{key} = versions.{key} and history.valid_from = versions.valid_from\n"
                f"where versions.{partition} in (select {partition} from affected)"
            ),
            SparkStatement(f"drop table if exists {keys}"),
        ]

    # ---------------------------------------------------------------- raw loads

    def load_landing_files(self, session: SparkSession_, model, files, first_day: date, end_day: date) -> int:
        from elt_assets.engines import spark_load
        from elt_assets.landing.raw_load import refuse_vanished_files

        refuse_vanished_files(session, model.qualified_name, model.name, files, first_day, end_day)
        table_columns = self.table_columns(session, model.schema, model.name)
        return spark_load.load_landing_files(session, model, table_columns, files, first_day, end_day)


def _window_view(model) -> str:
    return validate_identifier(f"_window_{model.schema}_{model.name}"[:63])


def _touched_table(model) -> str:
    return qualified(model.schema, f"_touched_keys_{model.name}"[:63])


# ---------------------------------------------------------------- custom steps


class RecordColumnOrder(Statement):
    """Keep the query's column order as a table property (Spark moves partition columns
    last), so the plan's check of the model's columns against the table's compares like
    with like."""

    def __init__(self, target: str, sql: str, window: Mapping[str, Any]):
        object.__setattr__(self, "text", target)
        object.__setattr__(self, "params", {"sql": sql, **window})

    def _columns(self, engine: Engine, session) -> list[str]:
        params = dict(self.params)
        sql = params.pop("sql")
        return engine.query_columns(session, sql, params)

    def run(self, engine: Engine, session) -> None:
        columns = ",".join(self._columns(engine, session))
        session.execute(
            f"alter table {self.text} set tblproperties ('{COLUMN_ORDER_PROPERTY}' = '{columns}')",
            native=True,
        )

    def script(self, engine: Engine) -> str:
        return (
            f"-- {engine.name}: record the model's column order (partition columns move last)\n"
            f"alter table {self.text} set tblproperties ('{COLUMN_ORDER_PROPERTY}' = '<the query''s columns, comma-separated>')"
        )


class OverwriteWindow(Statement):
    """INSERT OVERWRITE the partitions the staged rows have (dynamic mode: others stay),
    then drop the window's partitions the staged rows no longer have (an overwrite with
    no rows for a partition leaves it as it was). The staged view's partition values are
    read before the overwrite: a cached view is re-read once its source changes."""

    def __init__(
        self, target: str, partition: str, source: str, window: Mapping[str, Any]
    ):
        object.__setattr__(self, "text", target)
        object.__setattr__(
            self, "params", {"partition": partition, "source": source, **window}
        )

    @property
    def _overwrite_sql(self) -> str:
        return (
            f"insert overwrite table {self.text} partition ({self.params['partition']}) by name "
            f"select * from {self.params['source']}"
        )

    def run(self, engine: Engine, session) -> None:
        partition, source = self.params["partition"], self.params["source"]
        window = {
            "window_start": self.params["window_start"],
            "window_end": self.params["window_end"],
        }
        # One round trip for both: the staged days, and the target's days in the window.
        kept, existing = session.execute(
            f"select (select collect_set({partition}) from {source}), "
            f"(select collect_set({partition}) from {self.text} where {window_filter(partition)})",
            window,
            native=True,
        ).one()
        kept, existing = set(kept or ()), set(existing or ())
        if kept:
            session.execute(self._overwrite_sql, native=True)
        for value in sorted(existing - kept):
            session.execute(
                f"alter table {self.text} drop if exists partition ({partition} = {_literal(value)})",
                native=True,
            )

    def script(self, engine: Engine) -> str:
        partition = self.params["partition"]
        return (
            f"{self._overwrite_sql};\n"
            f"-- {engine.name}: then drop each partition of the window [{self.params['window_start']}, "
            f"{self.params['window_end']}) that {self.params['source']} has no rows for, found with\n"
            f"--   select distinct {partition} from {self.params['source']} (read before the overwrite), e.g.\n"
            f"-- alter table {self.text} drop if exists partition ({partition} = date '{self.params['window_start']}')"
        )


def _literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------- SQL text


@lru_cache(maxsize=512)
def _spark_sql(text: str) -> str:
    """The project's PostgreSQL-flavoured SQL as Spark reads it; `:name` markers are kept."""
    try:
        parsed = [expression for expression in sqlglot.parse(text, read="postgres") if expression is not None]
    except sqlglot.errors.ParseError as error:
        raise WarehouseError(f"cannot translate SQL for Spark: {first_line(error)}") from error
    if len(parsed) != 1:
        raise WarehouseError(f"expected one SQL statement, got {len(parsed)}")
    return parsed[0].sql(dialect="spark")
