"""The landing contract, the same on every engine: which files of a day are loaded, which
values a raw column takes, and what a refused load says and leaves.

Each case writes a few hand-made files into a fresh landing zone and loads them the way a
raw asset does (`run_model`: the files of the window, the plan, one transaction). Cases
run on DuckDB and PostgreSQL; those marked for Spark run there too when
ELT_TEST_SPARK_URL names a Spark Connect server on this machine (raw tables in a database
of their own, `landing_contract_<pid>`, dropped at the end).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from elt_assets.engines import WarehouseError, engine_for_url
from elt_assets.landing import raw_load
from elt_assets.landing.zone import LandingError
from elt_assets.models.registry import registry
from elt_assets.models.run import run_model
from elt_assets.settings import SQL_DIR
from elt_assets_tests.support import failure_message, rows, run_elt

DAY = date(2023, 6, 1)
EVENT_HEADER = "user_id,datestamp,item_id,clicked,purchased,paidamount"
METADATA_HEADER = "user_id,age,gender,updated_at"
SPARK_URL = os.environ.get("ELT_TEST_SPARK_URL")
SPARK_SCHEMA = f"landing_contract_{os.getpid()}"
RAW_TABLES = ("user_event", "user_variant", "user_metadata")


def events(*users: int, day: date = DAY, paidamount: str = "0") -> str:
    """A user_event file: one impression per user, at 10:00 of the day."""
    lines = [f"{user},{day} 10:00:00,{100 + user},0,0,{paidamount}" for user in users]
    return "\n".join([EVENT_HEADER, *lines]) + "\n"


# ---------------------------------------------------------------- the warehouses


class SqlWarehouse:
    """DuckDB or PostgreSQL, loaded through run_model as the raw assets load."""

    def __init__(self, url: str):
        self.url = url
        self.name = "duckdb" if url.startswith("duckdb") else "postgres"

    def relation(self, table: str) -> str:
        return f"raw_data.{table}"

    def load(self, landing: Path, table: str, first: date = DAY, days: int = 1) -> int:
        engine = engine_for_url(self.url)
        try:
            model = registry()[table]
            run = run_model(engine, registry(), model, first, first + timedelta(days=days), str(landing))
            return int(run.metadata["landed_rows"].value)
        finally:
            engine.dispose()

    def rows(self, table: str) -> list[tuple]:
        try:
            return rows(self.url, self.relation(table))
        except Exception:  # the table is created by the first load
            return []


class SparkWarehouse:
    """Spark: the window's files as run_model lists them, loaded by spark_load."""

    name = "spark"

    def __init__(self, engine, session):
        self.engine, self.session = engine, session
        self.models = {table: dataclasses.replace(registry()[table], schema=SPARK_SCHEMA) for table in RAW_TABLES}

    def relation(self, table: str) -> str:
        return f"{SPARK_SCHEMA}.{table}"

    def reset(self) -> None:
        self.session.spark.sql(f"drop database if exists {SPARK_SCHEMA} cascade")
        for table, model in self.models.items():
            ddl = (SQL_DIR / "raw_data" / f"{table}.sql").read_text(encoding="utf-8")
            ddl = ddl.replace("raw_data.", f"{SPARK_SCHEMA}.").strip()
            for step in self.engine.create_schema(SPARK_SCHEMA) + self.engine.declare_table(model, ddl):
                step.run(self.engine, self.session)

    def load(self, landing: Path, table: str, first: date = DAY, days: int = 1) -> int:
        from elt_assets.engines.spark_load import load_landing_files

        end = first + timedelta(days=days)
        files = raw_load.files_for_window(str(landing), table, first, end)
        columns = self.engine.table_columns(self.session, SPARK_SCHEMA, table)
        return load_landing_files(self.session, self.models[table], columns, files, first, end)

    def rows(self, table: str) -> list[tuple]:
        """Every row, columns in the DDL's order (Spark moves partition columns last)."""
        names = [column.name for column in self.engine.table_columns(self.session, SPARK_SCHEMA, table)]
        found = self.session.spark.sql(f"select {', '.join(names)} from {self.relation(table)}").collect()
        return sorted((tuple(row) for row in found), key=repr)


@pytest.fixture(scope="module")
def spark_warehouse():
    if not SPARK_URL:
        pytest.skip("set ELT_TEST_SPARK_URL=sc://host:port to run the Spark cases")
    from elt_assets.engines.spark import SparkEngine

    engine = SparkEngine(SPARK_URL)
    with engine.transaction() as session:
        warehouse = SparkWarehouse(engine, session)
        try:
            yield warehouse
        finally:
            session.spark.sql(f"drop database if exists {SPARK_SCHEMA} cascade")
    engine.dispose()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request):
    """DuckDB, then PostgreSQL."""
    return SqlWarehouse(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(params=["duckdb", "postgres", "spark"])
def any_warehouse(request):
    """DuckDB, PostgreSQL, then Spark (skipped without a server)."""
    if request.param == "spark":
        spark = request.getfixturevalue("spark_warehouse")
        spark.reset()
        return spark
    return SqlWarehouse(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def landing(tmp_path):
    """An empty landing zone (the tests write what they need)."""
    root = tmp_path / "landing"
    root.mkdir()
    return root


def write(landing: Path, name: str, text: str | bytes) -> Path:
    path = landing / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_parquet(landing: Path, name: str, select: str) -> Path:
    path = landing / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as connection:
        connection.execute(f"copy ({select}) to '{path}' (format parquet)")
    return path


def refused(warehouse, landing: Path, table: str, fragments: list[str], first: date = DAY) -> str:
    """Load, expect a LandingError holding every fragment, and the table as it was."""
    before = warehouse.rows(table)
    with pytest.raises(LandingError) as raised:
        warehouse.load(landing, table, first)
    message = str(raised.value)
    for fragment in fragments:
        assert fragment in message, message
    # The diagnosis is the error raised, not a failure of a statement run after it.
    cause = raised.value.__cause__ or raised.value.__context__
    while cause is not None:
        assert not isinstance(cause, (LandingError, WarehouseError)), f"{type(cause).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    assert "aborted" not in message
    assert warehouse.rows(table) == before
    return message


def user_ids(warehouse, table: str = "user_event") -> list[tuple[int, str]]:
    """(user_id, the source file's name) of every row, sorted."""
    found = warehouse.rows(table)
    return sorted((row[0], Path(row[-1]).name) for row in found)


# ---------------------------------------------------------------- which files are loaded


def test_part_files_named_with_glob_characters_are_read_once_each(any_warehouse, landing):
    write(landing, "user_event/2023-06-01/part1.csv", events(1))
    write(landing, "user_event/2023-06-01/part?.csv", events(2))
    write(landing, "user_event/2023-06-01/part[1].csv", events(3))
    write(landing, "user_event/2023-06-01/part*.csv", events(4))
    assert any_warehouse.load(landing, "user_event") == 4
    assert user_ids(any_warehouse) == [(1, "part1.csv"), (2, "part?.csv"), (3, "part[1].csv"), (4, "part*.csv")]
    # A bad value in such a file is found in that file, not in the files its glob matches.
    write(landing, "user_event/2023-06-01/part[1].csv", events(3, paidamount="x"))
    refused(any_warehouse, landing, "user_event", ["2023-06-01/part[1].csv, line 2: paidamount value 'x'"])


def test_suffixes_are_read_in_any_case(any_warehouse, landing):
    write(landing, "user_event/2023-06-01/part-1.CSV", events(1))
    write_parquet(
        landing,
        "user_event/2023-06-01/part-2.Parquet",
        "select 2 as user_id, timestamp '2023-06-01 11:00:00' as datestamp, 5 as item_id, "
        "0 as clicked, 0 as purchased, 0 as paidamount",
    )
    assert any_warehouse.load(landing, "user_event") == 2
    assert user_ids(any_warehouse) == [(1, "part-1.CSV"), (2, "part-2.Parquet")]


def test_a_file_of_another_format_fails_the_day_naming_it(any_warehouse, landing):
    write(landing, "user_event/2023-06-01/part-1.csv", events(1))
    # Markers, hidden and in-progress files are skipped, as the naming rule says.
    write(landing, "user_event/2023-06-01/_SUCCESS", "")
    write(landing, "user_event/2023-06-01/.part-2.csv", events(2))
    write(landing, "user_event/2023-06-01/part-3.csv.tmp", events(3))
    assert any_warehouse.load(landing, "user_event") == 1
    write(landing, "user_event/2023-06-01/part-4.json", '{"user_id": 4}\n')
    refused(
        any_warehouse,
        landing,
        "user_event",
        ["landing file ", "user_event/2023-06-01/part-4.json is neither CSV nor Parquet", "rename it"],
    )


def test_a_link_out_of_the_landing_root_is_refused_unread(any_warehouse, landing, tmp_path):
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:secret-first-line\n")
    write(landing, "user_event/2023-06-01/part-1.csv", events(1))
    (landing / "user_event" / "2023-06-01" / "part-2.csv").symlink_to(secret)
    message = refused(
        any_warehouse,
        landing,
        "user_event",
        ["2023-06-01/part-2.csv is a symbolic link to a file outside the landing root"],
    )
    assert "secret" not in message


def test_a_link_inside_the_landing_root_is_read(warehouse, landing):
    target = write(landing, "user_event/2023-05-31.csv", events(7, day=date(2023, 5, 31)))
    write(landing, "user_event/2023-06-01/part-1.csv", events(1))
    (landing / "user_event" / "2023-06-01" / "part-2.csv").symlink_to(target)
    # The linked file's events are of its own day: the link is read, and checked.
    refused(warehouse, landing, "user_event", ["2023-06-01/part-2.csv, line 2: datestamp", "not on the file's day"])


# ---------------------------------------------------------------- files that vanished


def test_an_archived_change_set_is_refused_until_allowed(warehouse, landing, monkeypatch):
    path = write(landing, "user_variant/2023-06-01.csv", "user_id,variant_id\n1,control\n2,test\n")
    write(landing, "user_variant/2023-06-02.csv", "user_id,variant_id\n3,test\n")
    assert warehouse.load(landing, "user_variant", days=2) == 3
    path.unlink()  # archived after its load
    message = refused(
        warehouse,
        landing,
        "user_variant",
        [
            "raw_data.user_variant keeps rows of landing files that are no longer in the landing zone",
            f"2023-06-01: rows of {path} (found now: no file)",
            "ELT_ALLOW_VANISHED_FILES=1",
        ],
    )
    assert "2023-06-02" not in message  # that day's file is still there
    monkeypatch.setenv("ELT_ALLOW_VANISHED_FILES", "1")
    assert warehouse.load(landing, "user_variant", days=2) == 1
    assert user_ids(warehouse, "user_variant") == [(3, "2023-06-02.csv")]


def test_part_files_merged_into_one_file_name_the_parts_and_the_file(warehouse, landing):
    write(landing, "user_variant/2023-06-01/part-0.csv", "user_id,variant_id\n1,control\n")
    write(landing, "user_variant/2023-06-01/part-1.csv", "user_id,variant_id\n2,test\n")
    assert warehouse.load(landing, "user_variant") == 2
    shutil.rmtree(landing / "user_variant" / "2023-06-01")
    merged = write(landing, "user_variant/2023-06-01.csv", "user_id,variant_id\n1,control\n2,test\n")
    parts = landing / "user_variant" / "2023-06-01"
    refused(
        warehouse,
        landing,
        "user_variant",
        [f"2023-06-01: rows of {parts / 'part-0.csv'}, {parts / 'part-1.csv'} (found now: {merged})"],
    )


def test_a_landing_root_moved_elsewhere_keeps_its_files(warehouse, landing, tmp_path):
    write(landing, "user_variant/2023-06-01.csv", "user_id,variant_id\n1,control\n")
    assert warehouse.load(landing, "user_variant") == 1
    moved = shutil.copytree(landing, tmp_path / "moved")
    assert warehouse.load(moved, "user_variant") == 1
    assert rows(warehouse.url, "raw_data.user_variant")[0][-1] == str(moved / "user_variant" / "2023-06-01.csv")


def test_an_archived_change_set_keeps_its_assignments_in_dim_user_variant(warehouse, landing, monkeypatch):
    for day in ("2023-06-01", "2023-06-02"):
        write(landing, f"user_event/{day}.csv", events(1, 2, day=date.fromisoformat(day)))
    path = write(landing, "user_variant/2023-06-02.csv", "user_id,variant_id\n1,control\n2,test\n")
    selection = "key:raw_data/user_variant or key:staging/src_user_variant or key:core/dim_user_variant"
    run_elt(landing, warehouse.url, "2023-06-01", "2023-06-02", selection=selection)
    assigned = rows(warehouse.url, "core.dim_user_variant")
    assert [row[:2] for row in assigned] == [(1, "control"), (2, "test")]
    path.unlink()
    result = run_elt(landing, warehouse.url, "2023-06-02", selection=selection, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    assert "LandingError: raw_data.user_variant keeps rows of landing files" in message
    assert "Current transaction is aborted" not in message
    assert rows(warehouse.url, "core.dim_user_variant") == assigned
    monkeypatch.setenv("ELT_ALLOW_VANISHED_FILES", "1")
    run_elt(landing, warehouse.url, "2023-06-02", selection=selection)
    assert rows(warehouse.url, "core.dim_user_variant") == []


# ---------------------------------------------------------------- which values a column takes


# "1-2" and "3000000000" leave the file digits only: its values skip the text test and the
# cast itself refuses them.
@pytest.mark.parametrize("value", ["23.7", "23.0", "1e3", "0x10", "1_000", "3000000000", "1-2"])
def test_an_integer_column_takes_integers_only(any_warehouse, landing, value):
    write(landing, "user_event/2023-06-01.csv", events(1))
    any_warehouse.load(landing, "user_event")
    write(landing, "user_event/2023-06-01.csv", events(1) + f"2,2023-06-01 11:00:00,5,1,1,{value}\n")
    refused(
        any_warehouse,
        landing,
        "user_event",
        [
            f"user_event/2023-06-01.csv, line 3: paidamount value '{value}' is not a valid integer "
            f"({any_warehouse.relation('user_event')}.paidamount)"
        ],
    )


def test_only_files_of_digits_and_separators_skip_the_integer_text_test(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(events(1, 2) + '3,"2023-06-01 12:00:00",+7,-0,1,\r\n')
    assert raw_load.digits_only_csv(plain)
    for value in ("23.7", "1e3", "0x10", "1_000", "0b11", "٣"):
        other = tmp_path / "other.csv"
        other.write_text(events(1) + f"2,2023-06-01 11:00:00,5,1,1,{value}\n", encoding="utf-8")
        assert not raw_load.digits_only_csv(other), value


def test_integers_may_carry_a_sign_and_spaces(any_warehouse, landing):
    write(landing, "user_event/2023-06-01.csv", f"{EVENT_HEADER}\n 7 ,2023-06-01 10:00:00,+5,0,0,-0\n")
    assert any_warehouse.load(landing, "user_event") == 1
    (row,) = any_warehouse.rows("user_event")
    assert (row[0], row[2], row[5]) == (7, 5, 0)


def test_a_parquet_double_lands_in_an_integer_column_only_when_whole(any_warehouse, landing):
    select = (
        "select * from (values ({first}, timestamp '2023-06-01 10:00:00', 5, 0, 0, 0), "
        "({second}, timestamp '2023-06-01 11:00:00', 6, 0, 0, 0)) "
        "as t (user_id, datestamp, item_id, clicked, purchased, paidamount)"
    )
    write_parquet(
        landing, "user_event/2023-06-01/part-0.parquet", select.format(first="1.0::double", second="2.0::double")
    )
    assert any_warehouse.load(landing, "user_event") == 2
    assert [row[0] for row in any_warehouse.rows("user_event")] == [1, 2]
    write_parquet(
        landing, "user_event/2023-06-01/part-0.parquet", select.format(first="1.0::double", second="1.4::double")
    )
    refused(
        any_warehouse,
        landing,
        "user_event",
        ["2023-06-01/part-0.parquet, row 2: user_id value '1.4' is not a valid integer"],
    )


def test_text_longer_than_its_varchar_is_refused(any_warehouse, landing):
    gender = "x" * 63
    write(landing, "user_metadata/2023-06-01.csv", f"{METADATA_HEADER}\n1,20,{gender},2023-06-01 08:00:00\n")
    message = refused(
        any_warehouse,
        landing,
        "user_metadata",
        [
            f"user_metadata/2023-06-01.csv, line 2: gender value '{'x' * 60}'... (63 characters) is longer "
            f"than 16 characters ({any_warehouse.relation('user_metadata')}.gender)"
        ],
    )
    assert gender not in message  # a long value is shown cut short
    write(landing, "user_metadata/2023-06-01.csv", f"{METADATA_HEADER}\n1,20,{'x' * 16},2023-06-01 08:00:00\n")
    assert any_warehouse.load(landing, "user_metadata") == 1


# ---------------------------------------------------------------- what a refusal says


def test_a_ragged_row_is_named_by_its_line(any_warehouse, landing):
    write(
        landing,
        "user_event/2023-06-01.csv",
        events(1, 2) + "3,2023-06-01 10:00:00,5,0,0,0,1,2\n" + events(4)[len(EVENT_HEADER) + 1 :],
    )
    refused(
        any_warehouse,
        landing,
        "user_event",
        ["cannot read landing file ", "user_event/2023-06-01.csv: line 4 has 8 fields where the header has 6"],
    )


def test_a_row_longer_than_the_reader_takes_is_named_by_its_line(warehouse, landing):
    long_row = f"3,2023-06-01 10:00:00,5,0,0,{'9' * raw_load.MAX_ROW_BYTES}\n"
    write(landing, "user_event/2023-06-01.csv", events(1) + "2,2023-06-01 10:00:00,5,0,0,0\n" + long_row)
    refused(
        warehouse,
        landing,
        "user_event",
        ["user_event/2023-06-01.csv: line 4 is 2000029 bytes long, more than the 2000000 bytes a row may have"],
    )


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (b'3,2023-06-01 10:00:00,5,0,0,"0"1\n', "line 4 is not valid CSV (',' expected after '\"')"),
        (b'3,2023-06-01 10:00:00,5,0,0,"0\n4,2023-06-01 10:00:00,5,0,0,0\n', "line 4 is not valid CSV (unexpected end"),
        (b"3,2023-06-01 10:00:00,5,0,0,\xff\n", "line 4 is not valid UTF-8"),
    ],
    ids=["text after a quote", "a quote never closed", "not UTF-8"],
)
def test_broken_csv_is_named_by_its_line(warehouse, landing, row, problem):
    write(landing, "user_event/2023-06-01.csv", events(1).encode() + b"2,2023-06-01 10:00:00,5,0,0,0\n" + row)
    refused(warehouse, landing, "user_event", [f"user_event/2023-06-01.csv: {problem}"])


def test_lines_count_quoted_line_breaks_and_blank_lines(any_warehouse, landing):
    write(
        landing,
        "user_metadata/2023-06-01.csv",
        f'{METADATA_HEADER}\n1,20,"F\nX",2023-06-01 08:00:00\n\n2,30,M,yesterday\n',
    )
    refused(
        any_warehouse,
        landing,
        "user_metadata",
        ["user_metadata/2023-06-01.csv, line 5: updated_at value 'yesterday' is not a valid timestamp"],
    )


def test_a_byte_order_mark_before_the_header_is_accepted(any_warehouse, landing):
    write(landing, "user_event/2023-06-01.csv", b"\xef\xbb\xbf" + events(1).encode())
    assert any_warehouse.load(landing, "user_event") == 1
    assert user_ids(any_warehouse) == [(1, "2023-06-01.csv")]


def test_an_invisible_character_in_the_header_is_shown(warehouse, landing):
    write(landing, "user_event/2023-06-01.csv", "\u200b" + events(1))
    refused(warehouse, landing, "user_event", ["unexpected column(s) '\\u200buser_id'", "missing column(s) user_id"])


def test_a_path_longer_than_source_file_takes_is_refused(warehouse, landing):
    # raw_data.*.source_file is varchar(1024): the path is checked like a value.
    long_root = landing / "/".join(["q" * 200] * 5)
    write(long_root, "user_variant/2023-06-01.csv", "user_id,variant_id\n1,control\n")
    refused(warehouse, long_root, "user_variant", ["its path is longer than 1024 characters"])
