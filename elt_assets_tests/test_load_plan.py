"""Planning runs from landing digests: the pure part of the landing sensor."""

from datetime import date, timedelta

from elt_assets.landing.load_plan import LoadRun, plan_loads

FIRST, LAST = date(2023, 6, 1), date(2023, 6, 30)


def days(first: int, last: int) -> list[date]:
    return [date(2023, 6, day) for day in range(first, last + 1)]


def events(*day_lists: list[date], digest: str = "e") -> dict:
    return {"user_event": {day: digest for day_list in day_lists for day in day_list}}


def spans(plan) -> list[tuple[int, int]]:
    return [(run.first.day, run.last.day) for run in plan.runs]


def test_days_outside_the_partitions_are_left_for_later_with_a_note():
    landed = events(days(1, 3)) | {"user_variant": {date(2023, 5, 31): "v", date(2023, 7, 1): "v"}}
    landed["user_event"][date(2023, 7, 1)] = "e"
    plan = plan_loads(landed, {}, first_day=FIRST, last_day=LAST)
    assert spans(plan) == [(1, 3)]
    assert any("2023-05-31: user_variant ignored: before the first partition" in note for note in plan.notes)
    waits = "2023-07-01: user_event, user_variant waits: the day is not over"
    assert any(waits in note for note in plan.notes)
    assert date(2023, 7, 1) not in plan.seen["user_event"]


def test_ranges_are_merged_to_stay_within_the_bound_but_never_across_a_missing_day():
    seen = events(days(1, 10), days(12, 20))  # 2023-06-11 never had events
    landed = events(days(1, 10), days(12, 20))
    for day in (2, 4, 6, 13, 16, 19):
        landed["user_event"][date(2023, 6, day)] = "late"
    plan = plan_loads(landed, seen, first_day=FIRST, last_day=LAST, max_runs=2)
    assert spans(plan) == [(2, 6), (13, 19)]
    assert all(run.raw_tables == {"user_event"} for run in plan.runs)
    # Cannot bridge 2023-06-11: the bound gives way, and a note says why.
    plan = plan_loads(landed, seen, first_day=FIRST, last_day=LAST, max_runs=1)
    assert spans(plan) == [(2, 6), (13, 19)]
    assert any("more than 1" in note for note in plan.notes)


def test_a_change_set_rebuilds_later_days_up_to_the_latest_loaded_one_only():
    seen = events(days(1, 10))
    landed = events(days(1, 10)) | {"user_metadata": {date(2023, 6, 4): "m"}}
    plan = plan_loads(landed, seen, first_day=FIRST, last_day=LAST)
    assert spans(plan) == [(4, 4), (5, 10)]
    assert plan.runs[0].raw_tables == {"user_metadata"}
    assert plan.runs[1] == LoadRun(
        date(2023, 6, 5), date(2023, 6, 10), frozenset(), frozenset({"user_metadata"}), plan.runs[1].triggers
    )


def test_run_keys_follow_the_fingerprints_behind_the_work():
    seen = events(days(1, 10))
    landed = events(days(1, 10)) | {"user_variant": {date(2023, 6, 4): "v1"}}
    first = plan_loads(landed, seen, first_day=FIRST, last_day=LAST)
    assert [run.run_key for run in plan_loads(landed, seen, first_day=FIRST, last_day=LAST).runs] == [
        run.run_key for run in first.runs
    ]
    landed["user_variant"][date(2023, 6, 4)] = "v2"
    rewritten = plan_loads(landed, seen, first_day=FIRST, last_day=LAST)
    # Same ranges and selections, but the replay of later days has a new cause: new keys.
    assert spans(rewritten) == spans(first)
    assert all(a.run_key != b.run_key for a, b in zip(first.runs, rewritten.runs, strict=True))
    assert first.runs[1].run_key.startswith("landing:2023-06-05..2023-06-10:")
    assert first.runs[0].last + timedelta(days=1) == first.runs[1].first
