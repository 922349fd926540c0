"""Bad landing files fail with a message naming the file, line or day, and change nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from elt_assets.models.run import check_window
from elt_assets.models.registry import registry
from elt_assets_tests.support import failure_message, run_elt, warehouse_digest

DAY = "2023-06-05"
HEADER = "user_id,datestamp,item_id,clicked,purchased,paidamount"


@pytest.fixture
def built(landing, warehouse_url):
    run_elt(landing, warehouse_url, "2023-06-01", "2023-06-07")
    return landing, warehouse_url, warehouse_digest(warehouse_url)


def _event_file(landing: Path) -> Path:
    return landing / "user_event" / f"{DAY}.csv"


def _rewrite_line(path: Path, line_number: int, transform) -> None:
    lines = path.read_text().splitlines()
    lines[line_number - 1] = transform(lines[line_number - 1])
    path.write_text("\n".join(lines) + "\n")


def _fails(landing, url, expected: list[str], first=DAY, last=None) -> str:
    result = run_elt(landing, url, first, last, raise_on_error=False)
    assert not result.success
    message = failure_message(result)
    for fragment in expected:
        assert fragment in message, message
    # The diagnosis is the error raised, not a failure of a statement run after it.
    assert "Current transaction is aborted" not in message, message
    return message


def _drop_column(line: str, index: int) -> str:
    fields = line.split(",")
    del fields[index]
    return ",".join(fields)


CASES = {
    "missing column": (
        lambda path: path.write_text(
            "\n".join(_drop_column(line, 5) for line in path.read_text().splitlines()) + "\n"
        ),
        ["missing column(s) paidamount", f"user_event/{DAY}.csv"],
    ),
    "extra column": (
        lambda path: path.write_text(
            "\n".join(line + ",x" for line in path.read_text().splitlines()) + "\n"
        ),
        ["unexpected column(s) x", f"user_event/{DAY}.csv"],
    ),
    "non-integer user_id": (
        lambda path: _rewrite_line(path, 1500, lambda line: "abc" + line[line.index(","):]),
        [f"user_event/{DAY}.csv, line 1500", "user_id value 'abc' is not a valid integer"],
    ),
    "unparseable datestamp": (
        lambda path: _rewrite_line(path, 3, lambda line: line.replace(DAY, "2023-13-45")),
        [f"user_event/{DAY}.csv, line 3", "datestamp value '2023-13-45' is not a valid timestamp"],
    ),
    "row outside the file's day": (
        lambda path: _rewrite_line(path, 4, lambda line: line.replace(DAY, "2023-06-06")),
        [f"user_event/{DAY}.csv, line 4", "is not on the file's day 2023-06-05"],
    ),
    "empty file": (
        lambda path: path.write_bytes(b""),
        [f"user_event/{DAY}.csv is empty"],
    ),
    "header only": (
        lambda path: path.write_text(HEADER + "\n"),
        [f"user_event/{DAY}.csv has a header but no rows"],
    ),
    "no events for the day": (
        lambda path: path.unlink(),
        [f"no events landed for {DAY}"],
    ),
    "repeated column": (
        lambda path: path.write_text(
            "\n".join(line + "," + line.split(",")[0] for line in path.read_text().splitlines()) + "\n"
        ),
        ["column(s) user_id appear more than once", f"user_event/{DAY}.csv"],
    ),
    "ragged row": (
        lambda path: _rewrite_line(path, 5, lambda line: line + ",1,2"),
        ["cannot read landing file", f"user_event/{DAY}.csv: line 5 has 8 fields where the header has 6"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_event_file_fails_clearly_and_keeps_the_old_partition(built, case):
    landing, url, before = built
    corrupt, expected = CASES[case]
    corrupt(_event_file(landing))
    _fails(landing, url, expected)
    assert warehouse_digest(url) == before


def test_a_file_with_its_columns_in_another_order_lands_by_name(built):
    # Two integer flags swapped would parse either way: only the header can tell them apart.
    landing, url, before = built
    path = _event_file(landing)
    order = [3, 0, 5, 4, 1, 2]  # clicked, user_id, paidamount, purchased, datestamp, item_id
    lines = path.read_text().splitlines()
    path.write_text("\n".join(",".join(line.split(",")[index] for index in order) for line in lines) + "\n")
    run_elt(landing, url, DAY)
    assert warehouse_digest(url) == before


def test_a_bad_day_inside_a_range_writes_no_day_of_it(built):
    landing, url, before = built
    _rewrite_line(_event_file(landing), 2, lambda line: "x" + line)
    _fails(landing, url, [f"user_event/{DAY}.csv, line 2"], first="2023-06-03", last="2023-06-07")
    assert warehouse_digest(url) == before


def test_bad_change_set_value_is_reported(built):
    landing, url, before = built
    path = landing / "user_metadata" / "2023-06-01.csv"
    _rewrite_line(path, 2, lambda line: line.rsplit(",", 1)[0] + ",yesterday")
    _fails(landing, url, ["user_metadata/2023-06-01.csv, line 2", "updated_at value 'yesterday'"], first="2023-06-01")
    assert warehouse_digest(url) == before


def test_partition_before_the_start_date_is_refused(landing, warehouse_url):
    with pytest.raises(Exception, match="2023-05-31"):
        run_elt(landing, warehouse_url, "2023-05-31")
    model = registry()["fact_user_event"]
    with pytest.raises(ValueError, match="before the first partition 2023-06-01"):
        check_window(model, date(2023, 5, 31), date(2023, 6, 1))
