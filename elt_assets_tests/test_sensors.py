"""The landing-zone sensor, evaluated against a real landing zone: a folder, or a bucket on a
moto S3 server on 127.0.0.1. Each test reads like a day in the life of the landing zone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from elt_assets.definitions import defs
from elt_assets.landing.generator import generate_landing
from elt_assets.landing.zone import LandingError
from elt_assets.resources import LandingZoneResource
from elt_assets.sensors import RANGE_END_TAG, RANGE_START_TAG, landing_zone_sensor
from elt_assets_tests.s3_server import free_port, new_bucket, running_s3_server, s3_client, upload_tree
from elt_assets_tests.support import copy_sample, elt_definitions, run_elt, warehouse_digest

EVERY_ASSET = sorted(key.to_user_string() for key in defs.resolve_asset_graph().materializable_asset_keys)
LATE_EVENTS = "user_id,datestamp,item_id,clicked,purchased,paidamount\n1,{day},9001,1,0,0\n"
LATE_ASSIGNMENT = "user_id,variant_id\n90001,test\n"
LATE_ATTRIBUTES = "user_id,age,gender,updated_at\n{user},55+,other,{day} 10:00:00\n"


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 for this module's tests."""
    with running_s3_server() as endpoint:
        yield endpoint



class LocalLanding:
    """A landing folder that the test writes into, as a landing process would."""

    kind = "local"

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.resource = LandingZoneResource(root=str(root))

    def put_tree(self, source: Path) -> None:
        shutil.copytree(source, self.root, dirs_exist_ok=True)

    def put(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def rename(self, old: str, new: str) -> None:
        (self.root / old).rename(self.root / new)


class S3Landing:
    """The same, as a prefix of a fresh bucket on the test's S3 server."""

    kind = "s3"

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.bucket = new_bucket(endpoint)
        self.client = s3_client(endpoint)
        self.resource = LandingZoneResource(
            root=f"s3://{self.bucket}/landing", s3=S3Resource(endpoint_url=endpoint)
        )

    def put_tree(self, source: Path) -> None:
        upload_tree(self.endpoint, source, self.bucket, "landing")

    def put(self, name: str, text: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"landing/{name}", Body=text.encode())

    def rename(self, old: str, new: str) -> None:
        self.client.copy_object(
            Bucket=self.bucket,
            Key=f"landing/{new}",
            CopySource={"Bucket": self.bucket, "Key": f"landing/{old}"},
        )
        self.client.delete_object(Bucket=self.bucket, Key=f"landing/{old}")


@pytest.fixture(params=["local", "s3"])
def zone(request, tmp_path):
    """An empty landing zone of each kind."""
    if request.param == "local":
        return LocalLanding(tmp_path / "landing")
    return S3Landing(request.getfixturevalue("s3_endpoint"))


@pytest.fixture
def sample_zone(zone, tmp_path):
    """The landing zone holding the shipped sample: 2023-06-01..2023-06-14."""
    zone.put_tree(copy_sample(tmp_path / "sample"))
    return zone


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def tick(instance, zone, cursor=None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"landing_zone": zone.resource}
    ) as context:
        return landing_zone_sensor(context)


def ranges(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [
        (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])
        for request in result.run_requests
    ]


def selection(request: dg.RunRequest) -> list[str]:
    return sorted(key.to_user_string() for key in request.asset_selection)


def test_the_first_tick_loads_every_new_day_as_one_ranged_run(instance, sample_zone):
    result = tick(instance, sample_zone)
    assert ranges(result) == [("2023-06-01", "2023-06-14")]
    request = result.run_requests[0]
    assert selection(request) == EVERY_ASSET
    assert request.tags["elt/warehouse"] == "default"
    assert request.run_key.startswith("landing:2023-06-01..2023-06-14:")
    landed = json.loads(result.cursor)["landed"]
    assert sorted(landed) == ["user_event", "user_metadata", "user_variant"]
    assert len(landed["user_event"]) == 14 and len(landed["user_variant"]) == 13
    # Compact: one short digest per table and day.
    assert len(result.cursor) < 40 * (14 + 13 + 13)


def test_a_second_tick_with_nothing_new_requests_nothing(instance, sample_zone):
    first = tick(instance, sample_zone)
    second = tick(instance, sample_zone, first.cursor)
    assert second.run_requests == []
    assert second.skip_reason.skip_message == "no new or changed landing files"
    assert second.cursor == first.cursor


def test_a_late_event_part_reloads_exactly_its_day(instance, sample_zone):
    first = tick(instance, sample_zone)
    sample_zone.put("user_event/2023-06-05/part-late.csv", LATE_EVENTS.format(day="2023-06-05"))
    late = tick(instance, sample_zone, first.cursor)
    assert ranges(late) == [("2023-06-05", "2023-06-05")]
    assert selection(late.run_requests[0]) == [
        "analytics/ab_test_readout",
        "analytics/analytics_variant_user_daily",
        "core/fact_user_event",
        "raw_data/user_event",
        "staging/src_user_event",
    ]
    assert tick(instance, sample_zone, late.cursor).run_requests == []


def test_a_late_change_set_rebuilds_its_day_and_every_later_loaded_day(instance, sample_zone):
    first = tick(instance, sample_zone)
    # 2023-06-09 had no assignments; a change set for it arrives five days late.
    sample_zone.put("user_variant/2023-06-09/part-late.csv", LATE_ASSIGNMENT)
    late = tick(instance, sample_zone, first.cursor)
    assert ranges(late) == [("2023-06-09", "2023-06-09"), ("2023-06-10", "2023-06-14")]
    downstream = [
        "analytics/ab_test_readout",
        "analytics/analytics_variant_user_daily",
        "core/dim_user",
        "core/dim_user_variant",
        "staging/src_user_variant",
    ]
    # Raw is reloaded for the late day only; the later days rebuild what reads it.
    assert selection(late.run_requests[0]) == sorted([*downstream, "raw_data/user_variant"])
    assert selection(late.run_requests[1]) == downstream
    assert tick(instance, sample_zone, late.cursor).run_requests == []


def test_a_rewritten_file_triggers_its_day_again(instance, sample_zone, tmp_path):
    first = tick(instance, sample_zone)
    original = (tmp_path / "sample" / "user_event" / "2023-06-03.csv").read_text()
    sample_zone.put("user_event/2023-06-03.csv", original + "1,2023-06-03,9002,0,0,0\n")
    rewritten = tick(instance, sample_zone, first.cursor)
    assert ranges(rewritten) == [("2023-06-03", "2023-06-03")]
    assert rewritten.run_requests[0].run_key != first.run_requests[0].run_key


def test_half_written_files_wait_until_they_are_renamed(instance, sample_zone):
    first = tick(instance, sample_zone)
    sample_zone.put("user_event/2023-06-04/.part-late.csv.tmp", LATE_EVENTS.format(day="2023-06-04"))
    sample_zone.put("user_event/2023-06-04/_part-late.csv", LATE_EVENTS.format(day="2023-06-04"))
    sample_zone.put("user_event/2023-06-04/part-late.csv.tmp", LATE_EVENTS.format(day="2023-06-04"))
    sample_zone.put("user_event/2023-06-15.csv.tmp", LATE_EVENTS.format(day="2023-06-15"))
    writing = tick(instance, sample_zone, first.cursor)
    assert writing.run_requests == []
    assert writing.cursor == first.cursor
    sample_zone.rename("user_event/2023-06-04/part-late.csv.tmp", "user_event/2023-06-04/part-late.csv")
    assert ranges(tick(instance, sample_zone, writing.cursor)) == [("2023-06-04", "2023-06-04")]


def test_a_day_without_events_waits_and_says_why(instance, sample_zone):
    first = tick(instance, sample_zone)
    sample_zone.put("user_variant/2023-06-15.csv", LATE_ASSIGNMENT)
    waiting = tick(instance, sample_zone, first.cursor)
    assert waiting.run_requests == []
    assert "2023-06-15: user_variant waits for user_event" in waiting.skip_reason.skip_message
    # Not remembered as seen: it is picked up with the day's events.
    assert waiting.cursor == first.cursor
    sample_zone.put("user_event/2023-06-15.csv", LATE_EVENTS.format(day="2023-06-15"))
    arrived = tick(instance, sample_zone, waiting.cursor)
    assert ranges(arrived) == [("2023-06-15", "2023-06-15")]
    assert selection(arrived.run_requests[0]) == EVERY_ASSET


def test_a_day_filled_in_after_a_gap_rebuilds_the_days_after_it(instance, sample_zone):
    first = tick(instance, sample_zone)
    sample_zone.put("user_event/2023-06-16.csv", LATE_EVENTS.format(day="2023-06-16"))
    after_gap = tick(instance, sample_zone, first.cursor)
    assert ranges(after_gap) == [("2023-06-16", "2023-06-16")]
    sample_zone.put("user_event/2023-06-15.csv", LATE_EVENTS.format(day="2023-06-15"))
    sample_zone.put("user_variant/2023-06-15.csv", LATE_ASSIGNMENT)
    filled = tick(instance, sample_zone, after_gap.cursor)
    assert ranges(filled) == [("2023-06-15", "2023-06-15"), ("2023-06-16", "2023-06-16")]
    assert selection(filled.run_requests[0]) == EVERY_ASSET
    assert "raw_data/user_event" not in selection(filled.run_requests[1])


def test_ninety_days_landing_at_once_become_one_run(instance, zone, tmp_path):
    generate_landing(tmp_path / "generated", users=40, days=90, events_per_day=40, seed=3)
    zone.put_tree(tmp_path / "generated")
    result = tick(instance, zone)
    assert ranges(result) == [("2023-06-01", "2023-08-29")]


def test_late_parts_on_many_days_become_a_bounded_number_of_runs(instance, sample_zone):
    first = tick(instance, sample_zone)
    for day in ("2023-06-02", "2023-06-04", "2023-06-07", "2023-06-09", "2023-06-12"):
        sample_zone.put(f"user_event/{day}/part-late.csv", LATE_EVENTS.format(day=day))
    late_attributes = LATE_ATTRIBUTES.format(user=5, day="2023-06-11")
    sample_zone.put("user_metadata/2023-06-11/part-late.csv", late_attributes)
    late = tick(instance, sample_zone, first.cursor)
    assert 1 <= len(late.run_requests) <= 3
    covered = set()
    for start, end in ranges(late):
        covered |= {day for day in range(int(start[-2:]), int(end[-2:]) + 1)}
    assert {2, 4, 7, 9, 11, 12, 13, 14} <= covered
    starts = [start for start, _ in ranges(late)]
    assert starts == sorted(starts), "ranges are requested in date order"


def test_the_same_landing_state_always_gives_the_same_run_keys(instance, sample_zone):
    first = tick(instance, sample_zone)
    # The daemon evaluating a tick again, or a cursor reset: the same keys, which Dagster
    # launches once.
    again = tick(instance, sample_zone, None)
    assert [request.run_key for request in again.run_requests] == [
        request.run_key for request in first.run_requests
    ]
    sample_zone.put("user_event/2023-06-05/part-late.csv", LATE_EVENTS.format(day="2023-06-05"))
    late = tick(instance, sample_zone, first.cursor)
    assert [r.run_key for r in tick(instance, sample_zone, first.cursor).run_requests] == [
        r.run_key for r in late.run_requests
    ]
    # A reset after new work landed does not drop it: the files behind the key changed.
    reset = tick(instance, sample_zone, None)
    assert ranges(reset) == [("2023-06-01", "2023-06-14")]
    assert reset.run_requests[0].run_key != first.run_requests[0].run_key


def test_an_unreadable_cursor_starts_over_instead_of_failing(instance, sample_zone):
    first = tick(instance, sample_zone)
    assert [r.run_key for r in tick(instance, sample_zone, "not json").run_requests] == [
        r.run_key for r in first.run_requests
    ]


def test_an_unreachable_s3_landing_zone_fails_the_tick_with_a_clear_message(instance):
    endpoint = f"http://127.0.0.1:{free_port()}"
    unreachable = LandingZoneResource(
        root="s3://landing/incoming", s3=S3Resource(endpoint_url=endpoint, max_attempts=1)
    )
    with dg.build_sensor_context(instance=instance, resources={"landing_zone": unreachable}) as context:
        expected = rf"cannot list s3://landing/incoming/user_event/ at {endpoint}"
        with pytest.raises(LandingError, match=expected):
            landing_zone_sensor(context)


def test_a_day_whose_load_failed_is_not_rebuilt_on(instance, tmp_path):
    landing = copy_sample(tmp_path / "landing")
    events = landing / "user_event" / "2023-06-12.csv"
    events.write_text(events.read_text().replace("\n1,2023-06-12", "\nx,2023-06-12", 1))
    zone = LocalLanding(landing)
    first = tick(instance, zone)
    # The day's load fails for real, and the instance records it.
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    failed = run_elt(
        landing, url, "2023-06-12", selection="raw_data/user_event", instance=instance, raise_on_error=False
    )
    assert not failed.success
    zone.put("user_variant/2023-06-09/part-late.csv", LATE_ASSIGNMENT)
    late = tick(instance, zone, first.cursor)
    assert ranges(late) == [
        ("2023-06-09", "2023-06-09"),
        ("2023-06-10", "2023-06-11"),
        ("2023-06-13", "2023-06-14"),
    ]


def test_the_sensor_is_stopped_until_someone_turns_it_on():
    sensor = defs.resolve_sensor_def("landing_zone_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.minimum_interval_seconds == 60


def execute(request: dg.RunRequest, landing: Path, url: str, instance) -> None:
    """Run what a request asks for, in process, as the daemon would launch it."""
    job = dg.define_asset_job("sensor_run", selection=dg.AssetSelection.assets(*request.asset_selection))
    resolved = dg.Definitions.merge(elt_definitions(landing, url), dg.Definitions(jobs=[job]))
    result = resolved.resolve_job_def("sensor_run").execute_in_process(instance=instance, tags=request.tags)
    assert result.success


def test_running_the_requested_runs_in_order_equals_a_full_rebuild(instance, tmp_path):
    landing = copy_sample(tmp_path / "landing")
    zone = LocalLanding(landing)
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    first = tick(instance, zone)
    for request in first.run_requests:
        execute(request, landing, url, instance)
    before = warehouse_digest(url)
    # User 1 moves to another age bucket on 2023-06-03, and the change lands late: dim_user
    # and the analytics of every day from then on must show it.
    zone.put("user_metadata/2023-06-03/part-late.csv", LATE_ATTRIBUTES.format(user=1, day="2023-06-03"))
    late = tick(instance, zone, first.cursor)
    assert ranges(late) == [("2023-06-03", "2023-06-03"), ("2023-06-04", "2023-06-14")]
    for request in late.run_requests:
        execute(request, landing, url, instance)
    rebuilt_url = f"duckdb:///{tmp_path / 'rebuilt.duckdb'}"
    run_elt(landing, rebuilt_url, "2023-06-01", "2023-06-14")
    after = warehouse_digest(url)
    assert after["analytics.analytics_variant_user_daily"] != before["analytics.analytics_variant_user_daily"]
    assert after == warehouse_digest(rebuilt_url)
