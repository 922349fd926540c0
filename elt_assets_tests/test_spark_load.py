"""Raw loads on Spark read the landing files in Spark, checked like every engine's loads.

Needs a Spark Connect server (ELT_TEST_SPARK_URL=sc://host:port, on this machine: it reads
the test's files at their local paths); skipped without one, or failed when
ELT_REQUIRE_SPARK=1. The raw tables live in a database of their own,
`spark_load_test_<pid>`, dropped at the end, so the module can share a server with
test_spark_engine.py (which drops raw_data, staging, core and analytics).

One module-scoped setup creates the tables and loads a good window once; the refusals then
reuse it: each bad load must fail before anything is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from elt_assets.landing.zone import LandingError, LocalLandingZone
from elt_assets.models.registry import registry
from elt_assets.settings import SQL_DIR

SPARK_URL = os.environ.get("ELT_TEST_SPARK_URL")
REQUIRE_SPARK = os.environ.get("ELT_REQUIRE_SPARK") == "1"
pytestmark = pytest.mark.skipif(
    not SPARK_URL and not REQUIRE_SPARK,
    reason="set ELT_TEST_SPARK_URL=sc://host:port to run",
)

SCHEMA = f"spark_load_test_{os.getpid()}"
EVENT_HEADER = "user_id,datestamp,item_id,clicked,purchased,paidamount"
DAY1, DAY2, DAY3 = date(2023, 6, 1), date(2023, 6, 2), date(2023, 6, 3)


class Warehouse:
    """The test's Spark engine, session and raw tables (user_event, user_metadata)."""

    def __init__(self, engine, session, landing: Path):
        self.engine, self.session, self.landing = engine, session, landing
        self.zone = LocalLandingZone(landing)
        self.models = {
            name: dataclasses.replace(registry()[name], schema=SCHEMA)
            for name in ("user_event", "user_metadata")
        }

    def create_tables(self) -> None:
        self.session.spark.sql(f"drop database if exists {SCHEMA} cascade")
        for name, model in self.models.items():
            ddl = (SQL_DIR / "raw_data" / f"{name}.sql").read_text(encoding="utf-8")
            ddl = ddl.replace("raw_data.", f"{SCHEMA}.").strip()
            for step in self.engine.create_schema(SCHEMA) + self.engine.declare_table(
                model, ddl
            ):
                step.run(self.engine, self.session)

    def load(self, table: str, first: date, end: date, files=None) -> int:
        """Load the window with the zone's files of its days (or the files given)."""
        from elt_assets.engines.spark_load import load_landing_files

        model = self.models[table]
        if files is None:
            files = [
                f
                for day in _days(first, end)
                for f in self.zone.files_for_day(table, day)
            ]
        columns = self.engine.table_columns(self.session, SCHEMA, table)
        return load_landing_files(self.session, model, columns, files, first, end)

    def rows(self, table: str, day: date | None = None) -> list[dict]:
        """The table's rows (of one day), as dicts, sorted."""
        where = f" where partition_date = date '{day}'" if day else ""
        found = self.session.spark.sql(
            f"select * from {SCHEMA}.{table}{where}"
        ).collect()
        return sorted(
            (row.asDict() for row in found),
            key=lambda row: sorted(map(str, row.values())),
        )


def _days(first: date, end: date) -> list[date]:
    return [first + dt.timedelta(days=n) for n in range((end - first).days)]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_parquet(path: Path, select: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as connection:
        connection.execute(f"copy ({select}) to '{path}' (format parquet)")
    return path


def event(
    user_id, day: date, hour: int, item_id, clicked=0, purchased=0, paidamount=0
) -> dict:
    return {
        "user_id": user_id,
        "datestamp": dt.datetime(day.year, day.month, day.day, hour),
        "item_id": item_id,
        "clicked": clicked,
        "purchased": purchased,
        "paidamount": paidamount,
    }


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    if not SPARK_URL:
        pytest.fail("ELT_REQUIRE_SPARK=1 but ELT_TEST_SPARK_URL is not set")
    from elt_assets.engines.spark import SparkEngine

    engine = SparkEngine(SPARK_URL)
    # A space in the landing root: Spark reports file URIs percent-encoded.
    landing = tmp_path_factory.mktemp("spark load") / "landing zone"
    with engine.transaction() as session:
        found = Warehouse(engine, session, landing)
        found.create_tables()
        try:
            yield found
        finally:
            session.spark.sql(f"drop database if exists {SCHEMA} cascade")
    engine.dispose()


@pytest.fixture(scope="module")
def loaded(warehouse):
    """A good window of three days, loaded once: CSV and Parquet, columns in other orders,
    names with a space and with glob characters (next to files the globs would match)."""
    events = warehouse.landing / "user_event"
    write(
        events / "2023-06-01" / "part 1.csv",
        "paidamount,clicked,user_id,purchased,item_id,datestamp\n"
        '5,1,1,1,107,2023-06-01 08:00:00\n0,0,"2",0,,2023-06-01T09:30:00\n',
    )
    write_parquet(
        events / "2023-06-01" / "part-2.parquet",
        "select 3 as item_id, timestamp '2023-06-01 10:00:00' as datestamp, 30 as user_id, "
        "0 as clicked, 0 as purchased, 0 as paidamount",
    )
    write(
        events / "2023-06-02.csv",
        f"{EVENT_HEADER}\n4,2023-06-02,41,0,0,0\n4,2023-06-02 12:00,42,1,0,0\n",
    )
    write(
        events / "2023-06-03" / "part[1].csv",
        f"{EVENT_HEADER}\n51,2023-06-03,1,0,0,0\n",
    )
    write(
        events / "2023-06-03" / "part?.csv", f"{EVENT_HEADER}\n52,2023-06-03,2,0,0,0\n"
    )
    day3 = warehouse.zone.files_for_day("user_event", DAY3)
    # Decoys the unescaped globs would match: on disk, never given to the load.
    write(
        events / "2023-06-03" / "part1.csv", f"{EVENT_HEADER}\n91,2023-06-03,9,0,0,0\n"
    )
    write(
        events / "2023-06-03" / "partX.csv", f"{EVENT_HEADER}\n92,2023-06-03,9,0,0,0\n"
    )
    files = [
        *warehouse.zone.files_for_day("user_event", DAY1),
        *warehouse.zone.files_for_day("user_event", DAY2),
        *day3,
    ]
    count = warehouse.load("user_event", DAY1, date(2023, 6, 4), files)

    metadata = warehouse.landing / "user_metadata"
    write(
        metadata / "2023-06-01.csv",
        'user_id,age,gender,updated_at\n1,"18-24","F ""quoted""",2023-06-01 10:00\n',
    )
    warehouse.load("user_metadata", DAY1, DAY2)
    return count


def test_good_files_land_by_name_with_their_path_and_day(warehouse, loaded):
    events = warehouse.landing / "user_event"
    assert loaded == 7
    rows = warehouse.rows("user_event")
    by_source = {}
    for row in rows:
        by_source.setdefault(row["source_file"], []).append(row)
    assert set(by_source) == {
        str(events / "2023-06-01" / "part 1.csv"),
        str(events / "2023-06-01" / "part-2.parquet"),
        str(events / "2023-06-02.csv"),
        str(events / "2023-06-03" / "part[1].csv"),
        str(events / "2023-06-03" / "part?.csv"),
    }
    first = sorted(
        by_source[str(events / "2023-06-01" / "part 1.csv")],
        key=lambda row: row["user_id"],
    )
    assert [{k: v for k, v in row.items() if k != "source_file"} for row in first] == [
        {
            **event(1, DAY1, 8, 107, clicked=1, purchased=1, paidamount=5),
            "partition_date": DAY1,
        },
        {
            **event(2, DAY1, 9, None),
            "datestamp": dt.datetime(2023, 6, 1, 9, 30),
            "partition_date": DAY1,
        },
    ]
    (parquet,) = by_source[str(events / "2023-06-01" / "part-2.parquet")]
    assert {k: v for k, v in parquet.items() if k != "source_file"} == {
        **event(30, DAY1, 10, 3),
        "partition_date": DAY1,
    }
    assert [
        row["partition_date"] for row in by_source[str(events / "2023-06-02.csv")]
    ] == [DAY2, DAY2]
    # Each glob-named file was read once, and the files its glob would match never.
    assert sorted(row["user_id"] for row in rows if row["partition_date"] == DAY3) == [
        51,
        52,
    ]
    (person,) = warehouse.rows("user_metadata")
    assert (person["age"], person["gender"]) == ("18-24", 'F "quoted"')


def _event_day(warehouse, text: str) -> Path:
    """Day 2 of user_event in the landing zone becomes one CSV file holding `text`."""
    return write(warehouse.landing / "user_event" / "2023-06-02.csv", text)


BAD_EVENT_FILES = {
    "fraction in an integer column": (
        f"{EVENT_HEADER}\n4,2023-06-02,41,0,0,0\n4,2023-06-02,42,0,0,23.7\n",
        [
            "2023-06-02.csv, line 3: paidamount value '23.7' is not a valid integer",
            f"({SCHEMA}.user_event.paidamount)",
        ],
    ),
    "unparseable datestamp": (
        f"{EVENT_HEADER}\n4,2023-13-45,41,0,0,0\n",
        [
            "2023-06-02.csv, line 2: datestamp value '2023-13-45' is not a valid timestamp"
        ],
    ),
    "event off the file's day": (
        f"{EVENT_HEADER}\n4,2023-06-02,41,0,0,0\n4,2023-06-02,41,0,0,0\n4,2023-06-03 01:00,41,0,0,0\n",
        [
            "2023-06-02.csv, line 4: datestamp '2023-06-03 01:00' is not on the file's day 2023-06-02"
        ],
    ),
    "empty file": ("", ["2023-06-02.csv is empty (0 bytes)"]),
    "header only": (f"{EVENT_HEADER}\n", ["2023-06-02.csv has a header but no rows"]),
    "ragged row": (
        f"{EVENT_HEADER}\n4,2023-06-02,41,0,0,0\n4,2023-06-02,41,0,0,0,1,2\n",
        ["cannot read landing file ", "/user_event/2023-06-02.csv:"],
    ),
    "missing column": (
        "user_id,datestamp,item_id,clicked,purchased\n4,2023-06-02,41,0,0\n",
        ["2023-06-02.csv does not match", "missing column(s) paidamount"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_EVENT_FILES))
def test_a_bad_event_file_is_refused_and_the_day_keeps_its_rows(
    warehouse, loaded, case
):
    before = warehouse.rows("user_event", DAY2)
    assert len(before) == 2  # the good load's rows of the day
    text, expected = BAD_EVENT_FILES[case]
    _event_day(warehouse, text)
    with pytest.raises(LandingError) as raised:
        warehouse.load("user_event", DAY2, DAY3)
    for fragment in expected:
        assert fragment in str(raised.value)
    assert "\tat " not in str(raised.value)  # no JVM stack trace
    assert warehouse.rows("user_event", DAY2) == before


def test_a_bad_value_in_a_later_file_names_that_file(warehouse, loaded):
    before = warehouse.rows("user_event", DAY2)
    assert len(before) == 2
    events = warehouse.landing / "user_event"
    _event_day(warehouse, f"{EVENT_HEADER}\n4,2023-06-02,41,0,0,0\n")
    write_parquet(
        events / "2023-06-02" / "part-1.parquet",
        "select * from (values ('4', '2023-06-02', 1, 0, 0, 0), ('x7', '2023-06-02', 2, 0, 0, 0)) "
        "as t (user_id, datestamp, item_id, clicked, purchased, paidamount)",
    )
    try:
        with pytest.raises(
            LandingError,
            match=r"part-1\.parquet, row 2: user_id value 'x7' is not a valid integer",
        ):
            warehouse.load("user_event", DAY2, DAY3)
    finally:
        (events / "2023-06-02" / "part-1.parquet").unlink()
    assert warehouse.rows("user_event", DAY2) == before


def test_a_too_long_varchar_is_refused(warehouse, loaded):
    before = warehouse.rows("user_metadata", DAY1)
    assert len(before) == 1
    write(
        warehouse.landing / "user_metadata" / "2023-06-01.csv",
        "updated_at,age,user_id,gender\n2023-06-01,a,1,F\n2023-06-01,12345678901234567,2,M\n",
    )
    with pytest.raises(LandingError) as raised:
        warehouse.load("user_metadata", DAY1, DAY2)
    assert (
        "2023-06-01.csv, line 3: age value '12345678901234567' is longer than 16 characters "
        f"({SCHEMA}.user_metadata.age)"
    ) in str(raised.value)
    assert warehouse.rows("user_metadata", DAY1) == before


def test_a_window_without_files_is_emptied(warehouse, loaded):
    # Runs last among the user_metadata tests: it empties that table's window.
    assert warehouse.load("user_metadata", DAY1, DAY2, files=[]) == 0
    assert warehouse.rows("user_metadata") == []
