"""Which landing files are ready, and where a day's files are found."""

from datetime import date

from elt_assets.landing import is_ready, landing_days, landing_files_for_day


def test_temporary_hidden_and_marker_files_are_not_ready():
    assert is_ready("2023-06-01.csv")
    assert is_ready("part-0001.parquet")
    assert not is_ready(".part-0001.csv.tmp")
    assert not is_ready("part-0001.csv.tmp")
    assert not is_ready("_SUCCESS")


def test_a_day_is_its_single_file_and_its_part_folder(tmp_path):
    table = tmp_path / "user_event"
    (table / "2023-06-02").mkdir(parents=True)
    (table / "2023-06-02.csv").write_text("x")
    (table / "2023-06-02" / "part-b.csv").write_text("x")
    (table / "2023-06-02" / "part-a.parquet").write_text("x")
    (table / "2023-06-02" / ".part-c.csv.tmp").write_text("x")
    (table / "2023-06-02" / "notes.txt").write_text("x")
    found = [file.path for file in landing_files_for_day(tmp_path, "user_event", date(2023, 6, 2))]
    assert found == [
        str(table / "2023-06-02.csv"),
        str(table / "2023-06-02" / "part-a.parquet"),
        str(table / "2023-06-02" / "part-b.csv"),
    ]
    assert landing_files_for_day(tmp_path, "user_event", date(2023, 6, 3)) == []


def test_landing_days_lists_files_and_folders(tmp_path):
    table = tmp_path / "user_variant"
    (table / "2023-06-03").mkdir(parents=True)
    (table / "2023-06-01.csv").write_text("x")
    (table / "readme.md").write_text("x")
    assert landing_days(tmp_path, "user_variant") == [date(2023, 6, 1), date(2023, 6, 3)]
    assert landing_days(tmp_path, "user_event") == []
