"""Which landing files are ready, and where a day's files are found."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from elt_assets.definitions import defs
from elt_assets.landing.zone import (
    NOT_READY,
    READY,
    REFUSED,
    LandingError,
    LocalLandingZone,
    S3LandingZone,
    is_ready,
    landing_days,
    landing_files_for_day,
    parse_landing_name,
)
from elt_assets.resources import LandingZoneResource, WarehouseResource
from elt_assets_tests.s3_server import free_port, new_bucket, running_s3_server, upload_tree
from elt_assets_tests.support import copy_sample, rows


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on 127.0.0.1 for this module's tests."""
    with running_s3_server() as endpoint:
        yield endpoint



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
    (table / "2023-06-02" / "part-b.CSV").write_text("x")
    (table / "2023-06-02" / "part-a.parquet").write_text("x")
    (table / "2023-06-02" / ".part-c.csv.tmp").write_text("x")
    (table / "2023-06-02" / "_SUCCESS").write_text("")
    (table / "2023-06-02" / "notes.txt").write_text("x")
    found = landing_files_for_day(tmp_path, "user_event", date(2023, 6, 2))
    assert [(file.path, file.refusal is None) for file in found] == [
        (str(table / "2023-06-02.csv"), True),
        # Listed, so that the day's load fails naming it instead of leaving it out.
        (str(table / "2023-06-02" / "notes.txt"), False),
        (str(table / "2023-06-02" / "part-a.parquet"), True),
        (str(table / "2023-06-02" / "part-b.CSV"), True),
    ]
    assert "is neither CSV nor Parquet" in found[1].refusal
    assert [file.format for file in found if file.refusal is None] == ["csv", "parquet", "csv"]
    assert landing_files_for_day(tmp_path, "user_event", date(2023, 6, 3)) == []


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("2023-06-01.csv", READY),
        ("2023-06-01.CSV", READY),
        ("2023-06-01/part-0.Parquet", READY),
        ("2023-06-01/_SUCCESS", NOT_READY),
        ("2023-06-01/.part-0.csv", NOT_READY),
        ("2023-06-01/part-0.csv.TMP", NOT_READY),
        ("2023-06-01.csv.tmp", NOT_READY),
        ("2023-06-01/_temporary/part-0.csv", NOT_READY),
        ("2023-06-01/part-0.json", REFUSED),
        ("2023-06-01/part-0.csv.gz", REFUSED),
        ("2023-06-01.txt", REFUSED),
        ("2023-06-01/sub/part-0.csv", REFUSED),
        ("notes.md", None),
        ("2023-02-30.csv", None),
        ("2023-06-01/", None),
    ],
)
def test_every_name_of_a_day_is_loaded_skipped_or_refused(name, kind):
    parsed = parse_landing_name(name)
    assert (parsed[1] if parsed else None) == kind
    if kind == REFUSED:
        assert parsed[2]


def test_landing_days_lists_files_and_folders(tmp_path):
    table = tmp_path / "user_variant"
    (table / "2023-06-03").mkdir(parents=True)
    (table / "2023-06-01.csv").write_text("x")
    (table / "readme.md").write_text("x")
    assert landing_days(tmp_path, "user_variant") == [date(2023, 6, 1), date(2023, 6, 3)]
    assert landing_days(tmp_path, "user_event") == []



# The same zone on S3: a moto server on 127.0.0.1.


def _relative(zone, table):
    return {
        day: [(file.name, file.size, file.format, file.refusal) for file in files]
        for day, files in zone.files_by_day(table).items()
    }


def test_an_s3_zone_lists_the_same_ready_files_as_a_local_folder(tmp_path, s3_endpoint):
    local = tmp_path / "landing"
    table = local / "user_event"
    (table / "2023-06-02").mkdir(parents=True)
    (table / "2023-06-01.csv").write_text("a")
    (table / "2023-06-02.csv").write_text("bb")
    (table / "2023-06-02" / "part-b.csv").write_text("ccc")
    (table / "2023-06-02" / "part-a.parquet").write_text("dddd")
    (table / "2023-06-02" / ".part-c.csv.tmp").write_text("x")
    (table / "2023-06-02" / "_SUCCESS").write_text("")
    (table / "2023-06-02" / "part-e.CSV").write_text("eeeee")
    (table / "2023-06-02" / "part-f.json").write_text("{}")
    (table / "2023-06-03").mkdir()
    (table / "2023-06-03" / "part-0.csv.tmp").write_text("x")
    (table / "notes.md").write_text("x")
    bucket = new_bucket(s3_endpoint)
    upload_tree(s3_endpoint, local, bucket, "incoming/v1")
    s3 = S3Resource(endpoint_url=s3_endpoint)
    with S3LandingZone(f"s3://{bucket}/incoming/v1", s3.get_client, s3_endpoint) as zone:
        assert _relative(zone, "user_event") == _relative(LocalLandingZone(local), "user_event")
        assert zone.days("user_event") == LocalLandingZone(local).days("user_event")
        assert [(file.name, file.refusal is None) for file in zone.files_for_day("user_event", date(2023, 6, 2))] == [
            ("2023-06-02.csv", True),
            ("2023-06-02/part-a.parquet", True),
            ("2023-06-02/part-b.csv", True),
            ("2023-06-02/part-e.CSV", True),
            ("2023-06-02/part-f.json", False),
        ]
        first = zone.files_for_day("user_event", date(2023, 6, 1))
        assert first[0].path == f"s3://{bucket}/incoming/v1/user_event/2023-06-01.csv"
        assert first[0].etag and first[0].fingerprint.endswith(first[0].etag)
        copies = zone.localize(first)
        assert Path(copies[0].local_path).read_text() == "a"
        assert copies[0].path == first[0].path
    assert not Path(copies[0].local_path).exists(), "local copies are removed with the zone"


def test_an_unreachable_s3_endpoint_fails_with_a_clear_message():
    endpoint = f"http://127.0.0.1:{free_port()}"
    s3 = S3Resource(endpoint_url=endpoint, max_attempts=1)
    with S3LandingZone("s3://landing/incoming", s3.get_client, endpoint) as zone:
        with pytest.raises(LandingError) as raised:
            zone.files_by_day("user_event")
    message = str(raised.value)
    assert "cannot list s3://landing/incoming/user_event/" in message
    assert endpoint in message
    assert "elt-test-secret" not in message


def test_a_missing_bucket_is_named_in_the_error(s3_endpoint):
    s3 = S3Resource(endpoint_url=s3_endpoint)
    with S3LandingZone("s3://no-such-bucket", s3.get_client, s3_endpoint) as zone:
        with pytest.raises(LandingError, match="cannot list s3://no-such-bucket/user_event/.*NoSuchBucket"):
            zone.files_by_day("user_event")


def test_raw_tables_load_from_an_s3_landing_zone(tmp_path, s3_endpoint):
    bucket = new_bucket(s3_endpoint)
    upload_tree(s3_endpoint, copy_sample(tmp_path / "landing"), bucket, "landing")
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    definitions = dg.Definitions(
        assets=list(defs.assets),
        resources={
            "warehouse": WarehouseResource(url=url, lock_timeout_seconds=30),
            "landing_zone": LandingZoneResource(
                root=f"s3://{bucket}/landing", s3=S3Resource(endpoint_url=s3_endpoint)
            ),
        },
    )
    job = dg.define_asset_job("raw_from_s3", selection=dg.AssetSelection.groups("raw_data"))
    result = (
        dg.Definitions.merge(definitions, dg.Definitions(jobs=[job]))
        .resolve_job_def("raw_from_s3")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral(), partition_key="2023-06-02")
    )
    assert result.success
    local = copy_sample(tmp_path / "expected")
    expected_events = (local / "user_event" / "2023-06-02.csv").read_text().count("\n") - 1
    sources = rows(url, "raw_data.user_event", "where partition_date = '2023-06-02'")
    assert len(sources) == expected_events
    assert {row[-1] for row in sources} == {f"s3://{bucket}/landing/user_event/2023-06-02.csv"}
