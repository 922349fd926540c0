"""Tests for the synthetic landing-file generator."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from elt_assets.landing.generator import (
    AGE_BUCKETS,
    COLUMNS,
    GENDERS,
    TABLES,
    LandingConflictError,
    generate_landing,
    landing_path,
    main,
)

START = date(2023, 6, 1)
DAYS = 14
ALL_DAYS = [START + timedelta(days=offset) for offset in range(DAYS)]
# The defaults' production quirks, for the default 400 users: 2% unassigned, 3% without metadata.
UNASSIGNED = 8
WITHOUT_METADATA = 12
QUIRKS_OFF = {"repeat_share": 0, "unassigned_user_share": 0, "no_metadata_share": 0}
KEY = ["user_id", "datestamp", "item_id"]


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"datestamp": "string", "updated_at": "string"})


def _stack(root: Path, table: str) -> pd.DataFrame:
    """All landing files of a table, with the file's day added as `file_day`."""
    frames = []
    for day in ALL_DAYS:
        path = landing_path(root, table, day)
        if path.exists():
            frames.append(_read(path).assign(file_day=day))
    return pd.concat(frames, ignore_index=True)


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("landing")
    summary = generate_landing(root)
    return root, summary


def test_layout_headers_and_summary(sample):
    root, summary = sample
    assert summary.first_day == START and summary.last_day == date(2023, 6, 14)
    assert summary.users == 400
    for day in ALL_DAYS:
        assert landing_path(root, "user_event", day) == root / "user_event" / f"{day.isoformat()}.csv"
        assert landing_path(root, "user_event", day).is_file()
    written = [p for p in root.rglob("*") if p.is_file()]
    assert len(written) == summary.files
    assert summary.files == summary.event_files + summary.variant_files + summary.metadata_files
    assert summary.event_files == DAYS
    assert not [p for p in written if p.name.startswith(".")], "temporary files left behind"
    for path in written:
        table = path.parent.name
        assert table in TABLES
        assert path.suffix == ".csv"
        date.fromisoformat(path.stem)
        lines = path.read_bytes().split(b"\n")
        assert lines[0].decode() == ",".join(COLUMNS[table])
        assert b'"' not in path.read_bytes()
    assert summary.event_rows == len(_stack(root, "user_event"))
    assert summary.variant_rows == len(_stack(root, "user_variant"))
    assert summary.metadata_rows == len(_stack(root, "user_metadata"))
    # Roughly the requested volume: a little less after deduplication, a few percent more
    # for the repeats and the unassigned users' impressions.
    assert 0.9 * 3000 * DAYS <= summary.event_rows <= 1.1 * 3000 * DAYS
    assert summary.unassigned_users == UNASSIGNED
    assert summary.users_without_metadata == WITHOUT_METADATA
    assert summary.repeated_impressions > 0
    described = summary.describe()
    for part in (
        f"{summary.repeated_impressions} repeated impressions",
        f"{UNASSIGNED} unassigned users",
        f"{WITHOUT_METADATA} without metadata",
    ):
        assert part in described


def test_same_seed_same_bytes_other_seed_differs(sample, tmp_path):
    root, _ = sample
    generate_landing(tmp_path / "again")
    assert _all_files(tmp_path / "again") == _all_files(root)
    generate_landing(tmp_path / "other", seed=8)
    other = _all_files(tmp_path / "other")
    assert other.get("user_event/2023-06-01.csv") != _all_files(root)["user_event/2023-06-01.csv"]


def test_event_rows_are_consistent(sample):
    root, _ = sample
    for day in ALL_DAYS:
        events = _read(landing_path(root, "user_event", day))
        # Sorted by user then item; a repeated impression sits right after its first showing.
        assert list(events.index) == list(events.sort_values(["user_id", "item_id"], kind="stable").index)
        stamped = events["datestamp"].dropna()
        assert (stamped == day.isoformat()).all()
        assert set(events["clicked"]) <= {0, 1} and set(events["purchased"]) <= {0, 1}
        assert (events.loc[events["purchased"] == 1, "clicked"] == 1).all()
        assert (events.loc[events["purchased"] == 1, "paidamount"] > 0).all()
        assert (events.loc[events["purchased"] == 0, "paidamount"] == 0).all()
        assert (events["paidamount"] >= 0).all()
        assert events["item_id"].between(1, 500).all()
        assert events["user_id"].between(1, 400 + UNASSIGNED).all()


def test_null_datestamps_exact_and_spread(sample):
    root, summary = sample
    events = _stack(root, "user_event")
    nulls = events[events["datestamp"].isna()]
    assert len(nulls) == 3 == summary.null_datestamp_rows
    assert nulls["file_day"].nunique() > 1
    # An empty field, not a quoted empty string or a placeholder word.
    raw = b"".join(landing_path(root, "user_event", day).read_bytes() for day in ALL_DAYS)
    assert raw.count(b",,") == 3


def test_late_users_have_no_events_before_assignment(sample):
    root, summary = sample
    variants = _stack(root, "user_variant")
    first_assignment = variants.groupby("user_id")["file_day"].min()
    assert len(first_assignment) == 400
    late = first_assignment[first_assignment > START]
    assert len(late) == summary.late_users == 40
    assert late.nunique() > 1, "late assignments should spread over several days"
    assert (first_assignment == START).sum() == 360

    events = _stack(root, "user_event")
    first_event = events.groupby("user_id")["file_day"].min()
    joined = pd.concat([first_assignment.rename("assigned"), first_event.rename("seen")], axis=1, join="inner")
    assert (joined["seen"] >= joined["assigned"]).all()
    # Late users show up in the events on their assignment day.
    assert (joined.loc[late.index, "seen"] == joined.loc[late.index, "assigned"]).all()

    metadata = _stack(root, "user_metadata")
    first_meta = metadata.sort_values("file_day").drop_duplicates("user_id").set_index("user_id")
    late_with_metadata = late[late.index.isin(first_meta.index)]
    assert len(late) - len(late_with_metadata) < len(late) / 2  # a few late users lack metadata
    for user_id, day in late_with_metadata.items():
        row = first_meta.loc[user_id]
        assert row["file_day"] == day
        assert row["updated_at"].startswith(day.isoformat())


def test_variant_split_and_reassignments(sample):
    root, summary = sample
    variants = _stack(root, "user_variant")
    assert set(variants["variant_id"]) == {"control", "test"}
    assert not variants.duplicated(["user_id", "file_day"]).any()
    first = variants.sort_values("file_day", kind="stable").drop_duplicates("user_id")
    assert 0.4 <= (first["variant_id"] == "test").mean() <= 0.6

    repeated = variants[variants.duplicated("user_id", keep=False)].sort_values(["user_id", "file_day"])
    assert repeated["user_id"].nunique() == 3 == summary.reassignments
    for _, rows in repeated.groupby("user_id"):
        assert len(rows) == 2
        original, conflicting = rows.iloc[0], rows.iloc[1]
        assert conflicting["file_day"] > original["file_day"]
        assert conflicting["variant_id"] != original["variant_id"]


def test_metadata_extract_and_changes(sample):
    root, summary = sample
    metadata = _stack(root, "user_metadata")
    assert set(metadata["age"]) <= set(AGE_BUCKETS)
    assert set(metadata["gender"]) <= set(GENDERS)
    assert metadata["age"].str.len().max() < 16 and metadata["gender"].str.len().max() < 16
    updated = pd.to_datetime(metadata["updated_at"], format="%Y-%m-%d %H:%M:%S")

    initial = metadata["file_day"] == START
    # The first day's extract holds the initial users, less those without any metadata.
    variants = _stack(root, "user_variant")
    initial_users = set(variants.loc[variants["file_day"] == START, "user_id"])
    without = set(variants["user_id"]) - set(metadata["user_id"])
    assert len(without) == WITHOUT_METADATA
    assert set(metadata.loc[initial, "user_id"]) == initial_users - without
    assert initial.sum() == 360 - len(initial_users & without)
    start_ts = datetime.combine(START, datetime.min.time())
    assert (updated[initial] < start_ts).all()
    assert (updated[initial] >= start_ts - timedelta(days=30)).all()
    later = ~initial
    assert (updated[later].dt.date == metadata.loc[later, "file_day"]).all()

    repeated = metadata[metadata.duplicated("user_id", keep=False)].sort_values(["user_id", "file_day"])
    assert repeated["user_id"].nunique() == 5 == summary.metadata_changes
    for _, rows in repeated.groupby("user_id"):
        assert len(rows) == 2
        before, after = rows.iloc[0], rows.iloc[1]
        assert after["file_day"] > before["file_day"]
        assert after["updated_at"] > before["updated_at"]
        assert (after["age"], after["gender"]) != (before["age"], before["gender"])


def test_days_without_changes_have_no_file(sample, tmp_path):
    root, _ = sample
    # Every change-set file present holds at least one row; no empty files.
    for table in ("user_variant", "user_metadata"):
        for day in ALL_DAYS:
            path = landing_path(root, table, day)
            if path.exists():
                assert len(_read(path)) > 0

    quiet = tmp_path / "quiet"
    summary = generate_landing(
        quiet, days=5, late_user_share=0, reassignments=0, metadata_changes=0, null_datestamp_rows=0
    )
    assert summary.files == 5 + 1 + 1
    assert sorted(p.name for p in (quiet / "user_variant").iterdir()) == ["2023-06-01.csv"]
    assert sorted(p.name for p in (quiet / "user_metadata").iterdir()) == ["2023-06-01.csv"]
    assert len(list((quiet / "user_event").iterdir())) == 5


def test_parquet_format_matches_csv(sample, tmp_path):
    root, _ = sample
    out = tmp_path / "pq"
    summary = generate_landing(out, fmt="parquet")
    assert summary.fmt == "parquet"
    assert not list(out.rglob("*.csv"))
    for table in TABLES:
        for day in ALL_DAYS:
            part = out / table / day.isoformat() / "part-0000.parquet"
            csv = landing_path(root, table, day)
            assert part.exists() == csv.exists()
            if not csv.exists():
                assert not (out / table / day.isoformat()).exists()
                continue
            frame = pq.read_table(part).to_pandas()
            assert tuple(frame.columns) == COLUMNS[table]
            expected = _read(csv)
            assert len(frame) == len(expected)
            assert frame["user_id"].tolist() == expected["user_id"].tolist()
            if table == "user_event":
                assert frame["datestamp"].isna().sum() == expected["datestamp"].isna().sum()
                assert frame["clicked"].tolist() == expected["clicked"].tolist()
                assert frame["paidamount"].tolist() == expected["paidamount"].tolist()


def test_click_rate_follows_variant(tmp_path):
    generate_landing(
        tmp_path,
        users=2000,
        days=2,
        events_per_day=100_000,
        ctr={"control": 0.05, "test": 0.30},
        purchase_rate=0.5,
        null_datestamp_rows=0,
    )
    events = pd.concat(_read(p) for p in (tmp_path / "user_event").glob("*.csv"))
    variants = pd.concat(_read(p) for p in (tmp_path / "user_variant").glob("*.csv"))
    variants = variants.drop_duplicates("user_id")  # the first assignment counts
    joined = events.merge(variants, on="user_id")
    rates = joined.groupby("variant_id")["clicked"].mean()
    assert rates["control"] == pytest.approx(0.05, abs=0.01)
    assert rates["test"] == pytest.approx(0.30, abs=0.01)
    clicks = joined[joined["clicked"] == 1]
    assert clicks["purchased"].mean() == pytest.approx(0.5, abs=0.02)


def test_main_refuses_existing_files_without_overwrite(tmp_path, capsys):
    out = tmp_path / "landing"
    args = ["--out", str(out), "--users", "50", "--days", "3", "--events-per-day", "200"]
    assert main(args) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.count("\n") == 0 and "wrote" in printed
    before = _all_files(out)

    assert main(args + ["--seed", "99"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _all_files(out) == before

    # A table/day already present in the other format is a clash too.
    assert main(args + ["--format", "parquet"]) == 2
    assert _all_files(out) == before

    assert main(args + ["--seed", "99", "--overwrite"]) == 0
    assert _all_files(out) != before
    assert main(args + ["--format", "parquet", "--overwrite"]) == 0
    assert not list(out.rglob("*.csv"))


def test_generate_landing_refuses_and_validates(tmp_path):
    generate_landing(tmp_path, users=30, days=2, events_per_day=100)
    with pytest.raises(LandingConflictError):
        generate_landing(tmp_path, users=30, days=2, events_per_day=100)
    generate_landing(tmp_path, users=30, days=2, events_per_day=100, overwrite=True)
    with pytest.raises(ValueError):
        generate_landing(tmp_path / "x", days=1, reassignments=3)
    with pytest.raises(ValueError):
        generate_landing(tmp_path / "x", fmt="json")
    for bad in ({"repeat_share": 1.0}, {"repeat_share": -0.1}, {"unassigned_user_share": 1.5},
                {"no_metadata_share": -0.01}):
        with pytest.raises(ValueError):
            generate_landing(tmp_path / "x", **bad)
    assert not (tmp_path / "x").exists()
    assert main(["--out", str(tmp_path / "y"), "--days", "1"]) == 2
    assert main(["--out", str(tmp_path / "y"), "--repeat-share", "1"]) == 2


# --------------------------------------------------------------------------- production quirks


def _repeats(events: pd.DataFrame) -> pd.Series:
    """Rows that repeat an earlier row's user, datestamp and item (a NULL datestamp never repeats)."""
    return events["datestamp"].notna() & events.duplicated(KEY)


def test_repeated_impressions_exist_at_the_knobs_share(sample):
    root, summary = sample
    repeated = 0
    total = 0
    differing = 0
    for day in ALL_DAYS:
        events = _read(landing_path(root, "user_event", day))
        again = _repeats(events)
        assert again.any(), f"no repeated impression on {day}"
        # A repeat follows its first showing (rows stay sorted by user then item).
        assert (events[KEY].shift(1)[again] == events.loc[again, KEY]).all().all()
        # Each showing has its own outcome, within the usual invariants.
        shown = events[events.duplicated(KEY, keep=False) & events["datestamp"].notna()]
        differing += int((shown.groupby(["user_id", "item_id"])["clicked"].nunique() > 1).sum())
        # NULL-datestamp rows are never repeated.
        nulls = events[events["datestamp"].isna()]
        assert not nulls.merge(events, on=["user_id", "item_id"]).duplicated(["user_id", "item_id"]).any()
        repeated += int(again.sum())
        total += len(events)
    assert repeated == summary.repeated_impressions
    assert repeated / total == pytest.approx(0.03, abs=0.002)
    assert differing > 0


def test_repeated_impressions_counted_as_the_warehouse_would(sample):
    duckdb = pytest.importorskip("duckdb")
    root, summary = sample
    pattern = str(root / "user_event" / "*.csv")
    [(counted,)] = duckdb.sql(
        f"""
        select coalesce(sum(times - 1), 0)
        from (
            select user_id, datestamp, item_id, count(*) as times
            from read_csv('{pattern}', types = {{'datestamp': 'DATE'}})
            where datestamp is not null
            group by all
        )
        """
    ).fetchall()
    assert counted == summary.repeated_impressions


def test_some_event_users_were_never_assigned(sample):
    root, summary = sample
    events = _stack(root, "user_event")
    assigned = set(_stack(root, "user_variant")["user_id"])
    described = set(_stack(root, "user_metadata")["user_id"])
    outsiders = set(events["user_id"]) - assigned
    assert outsiders == set(range(401, 401 + UNASSIGNED))
    assert len(outsiders) == summary.unassigned_users
    assert not outsiders & described
    days_seen = events[events["user_id"].isin(outsiders)].groupby("user_id")["file_day"].nunique()
    assert (days_seen > 1).all(), "unassigned users should show up on several days"


def test_some_assigned_users_have_no_metadata(sample):
    root, summary = sample
    variants = _stack(root, "user_variant")
    metadata = _stack(root, "user_metadata")
    events = _stack(root, "user_event")
    without = set(variants["user_id"]) - set(metadata["user_id"])
    assert len(without) == WITHOUT_METADATA == summary.users_without_metadata
    # They are otherwise ordinary: assigned and active.
    assert without <= set(events["user_id"])
    # Every metadata row belongs to an assigned user.
    assert set(metadata["user_id"]) <= set(variants["user_id"])


def test_users_without_metadata_are_never_changed(tmp_path):
    # 45 of 50 users change attributes: exactly the other 5 can lack metadata.
    knobs = {"users": 50, "days": 3, "events_per_day": 200, "late_user_share": 0, "metadata_changes": 45}
    summary = generate_landing(tmp_path / "ok", no_metadata_share=0.1, **knobs)
    metadata = pd.concat(_read(p) for p in (tmp_path / "ok" / "user_metadata").glob("*.csv"))
    rows_per_user = metadata["user_id"].value_counts()
    assert summary.users_without_metadata == 5
    assert len(rows_per_user) == 45 and (rows_per_user == 2).all()
    with pytest.raises(ValueError, match="metadata"):
        generate_landing(tmp_path / "too_many", no_metadata_share=0.2, **knobs)


@pytest.mark.parametrize("knob", sorted(QUIRKS_OFF))
def test_each_quirk_turns_off_alone(tmp_path, knob):
    summary = generate_landing(tmp_path, **{knob: 0})
    events = _stack(tmp_path, "user_event")
    variants = _stack(tmp_path, "user_variant")
    metadata = _stack(tmp_path, "user_metadata")
    repeats = int(_repeats(events).sum())  # a stamped row's datestamp is its file's day
    unassigned = set(events["user_id"]) - set(variants["user_id"])
    without = set(variants["user_id"]) - set(metadata["user_id"])
    found = {
        "repeat_share": (repeats, summary.repeated_impressions),
        "unassigned_user_share": (len(unassigned), summary.unassigned_users),
        "no_metadata_share": (len(without), summary.users_without_metadata),
    }
    for name, (count, reported) in found.items():
        assert count == reported, name
        assert (count == 0) == (name == knob), name
    if knob == "repeat_share":
        for day in ALL_DAYS:
            events = _read(landing_path(tmp_path, "user_event", day))
            assert not events.duplicated(["user_id", "item_id"]).any()


def test_all_quirks_off_gives_a_clean_experiment(tmp_path):
    summary = generate_landing(tmp_path, **QUIRKS_OFF)
    assert (summary.repeated_impressions, summary.unassigned_users, summary.users_without_metadata) == (0, 0, 0)
    events = _stack(tmp_path, "user_event")
    variants = _stack(tmp_path, "user_variant")
    metadata = _stack(tmp_path, "user_metadata")
    assert not events.duplicated(["user_id", "item_id", "file_day"]).any()
    assert set(events["user_id"]) <= set(variants["user_id"])
    assert set(variants["user_id"]) == set(metadata["user_id"])
    assert 0.9 * 3000 * DAYS <= summary.event_rows <= 3000 * DAYS + 400


def test_turning_a_quirk_off_leaves_the_rest_alone(sample, tmp_path):
    """Each quirk draws from its own random stream."""
    root, _ = sample
    generate_landing(tmp_path / "no_repeats", repeat_share=0)
    for day in ALL_DAYS:
        with_repeats = _read(landing_path(root, "user_event", day))
        first_showings = with_repeats[~_repeats(with_repeats)].reset_index(drop=True)
        pd.testing.assert_frame_equal(first_showings, _read(landing_path(tmp_path / "no_repeats", "user_event", day)))

    generate_landing(tmp_path / "all_described", no_metadata_share=0)
    ours, theirs = _all_files(root), _all_files(tmp_path / "all_described")
    assert {k: v for k, v in ours.items() if "user_metadata" not in k} == {
        k: v for k, v in theirs.items() if "user_metadata" not in k
    }
    described = _stack(tmp_path / "all_described", "user_metadata")
    kept = described.merge(_stack(root, "user_metadata")[["user_id"]].drop_duplicates())
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), _stack(root, "user_metadata"))


def test_quirks_in_parquet_too(tmp_path):
    generate_landing(tmp_path, fmt="parquet", users=200, days=3, events_per_day=2000)
    def stack(table: str) -> pd.DataFrame:
        return pd.concat(pq.read_table(p).to_pandas() for p in sorted((tmp_path / table).glob("*/*.parquet")))

    events, variants, metadata = stack("user_event"), stack("user_variant"), stack("user_metadata")
    assert events.duplicated(KEY).any()
    assert set(events["user_id"]) - set(variants["user_id"]) == set(range(201, 205))
    assert len(set(variants["user_id"]) - set(metadata["user_id"])) == 6


def test_main_knobs_progress_and_help(tmp_path, capsys):
    out = tmp_path / "landing"
    assert main(["--out", str(out), "--users", "50", "--days", "5", "--events-per-day", "200",
                 "--repeat-share", "0", "--unassigned-user-share", "0", "--no-metadata-share", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1
    assert "0 repeated impressions" in captured.out and "0 unassigned users" in captured.out
    assert "0 without metadata" in captured.out
    # A long run (more than 3 days) reports each day on stderr.
    lines = captured.err.strip().splitlines()
    assert len(lines) == 5 and lines[0].startswith("2023-06-01: ") and lines[-1].endswith(" events")
    events = pd.concat(_read(p) for p in (out / "user_event").glob("*.csv"))
    assert events["user_id"].max() <= 50

    assert main(["--out", str(tmp_path / "short"), "--users", "50", "--days", "3", "--events-per-day", "200",
                 "--repeat-share", "0.1"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "0 repeated impressions" not in captured.out

    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    for flag, default in (("--repeat-share", "0.03"), ("--unassigned-user-share", "0.02"),
                          ("--no-metadata-share", "0.03"), ("--users", "400")):
        assert flag in shown
        assert f"(default: {default})" in " ".join(shown.split())
