"""The commands users type: `elt-assets` (quickstart, summary, --help, its date arguments)
and `dagster asset materialize`.

Subprocesses run in tmp_path, not in the project root: the Dagster CLI reads the .env of
its working directory, and the quick start leaves one in the project root.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dotenv import dotenv_values

from elt_assets import cli
from elt_assets.definitions import defs
from elt_assets.settings import PROJECT_ROOT, SAMPLE_FIRST_DAY, SEEDS_LANDING_DIR
from elt_assets_tests.support import query, rows

GRAPH = defs.resolve_asset_graph()
PARTITIONED = sorted(key for key in GRAPH.materializable_asset_keys if GRAPH.get(key).is_partitioned)
SAMPLE_FILES = sorted(path.relative_to(SEEDS_LANDING_DIR) for path in SEEDS_LANDING_DIR.rglob("*.csv"))
FRESHNESS = {(f"raw_data/{table}", "newest_partition_fresh")
             for table in ("user_event", "user_variant", "user_metadata")}
# The sample holds events of users never assigned a variant on purpose; this check warns on them.
THE_SAMPLES_WARNING = ("core/fact_user_event", "relationships_user_id_dim_user")


def _environment(tmp_path: Path, landing: Path, url: str, home: Path | None = None) -> dict[str, str]:
    if home is None:
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # Without DAGSTER_MODULE_NAME: `dg dev` takes it as its target instead of [tool.dg], and
    # did not serve within five minutes here.
    environment = {
        name: value for name, value in os.environ.items() if name not in ("ELT_START_DATE", "DAGSTER_MODULE_NAME")
    }
    environment.update(
        DAGSTER_HOME=str(home),
        ELT_LANDING_DIR=str(landing),
        ELT_WAREHOUSE_URL=url,
        PYTHONPATH=str(PROJECT_ROOT),  # the package, installed or not
    )
    return environment


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


# ---------------------------------------------------------------- dagster asset materialize


def test_a_range_backfill_from_the_cli_is_one_run(tmp_path, landing, duckdb_url):
    environment = _environment(tmp_path, landing, duckdb_url)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "elt_assets.definitions", "--select", "*",
         "--partition-range", "2023-06-01...2023-06-14"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    with dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        key = dg.AssetKey(["analytics", "analytics_variant_user_daily"])
        materialized = instance.get_materialized_partitions(key)
        assert materialized == {f"2023-06-{day:02d}" for day in range(1, 15)}
    assert len(rows(duckdb_url, "analytics.analytics_variant_user_daily")) > 5_000


def test_a_partition_outside_the_range_is_refused_by_the_cli(tmp_path, landing, duckdb_url):
    environment = _environment(tmp_path, landing, duckdb_url)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "elt_assets.definitions", "--select", "*",
         "--partition", "2023-05-31"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode != 0
    assert "2023-05-31" in completed.stderr


# ---------------------------------------------------------------- quickstart


def run_quickstart(folder: Path, *arguments: str, url: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """`elt-assets quickstart` with everything in folder; the Dagster home is the one it makes."""
    url = url or f"duckdb:///{folder / 'warehouse.duckdb'}"
    environment = _environment(folder, folder / "landing", url, home=folder / "dagster_home")
    completed = subprocess.run(
        [sys.executable, "-m", "elt_assets.cli", "quickstart", "--env-file", str(folder / ".env"), *arguments],
        cwd=folder, env=environment, capture_output=True, text=True, timeout=900,
    )
    return completed, environment


def check_evaluations(instance: dg.DagsterInstance, run_id: str) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [event.dagster_event.event_specific_data for event in events]
    return {(evaluation.asset_key.to_user_string(), evaluation.check_name): evaluation for evaluation in evaluations}


def test_quickstart_as_shipped_keeps_the_sample_dates_and_shows_each_step(tmp_path):
    completed, environment = run_quickstart(tmp_path, "--as-shipped")
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    out = completed.stdout
    assert "| control |" in out and "| test |" in out
    assert "dg dev -h 127.0.0.1 -p 3000" in out and "dagster dev -h 127.0.0.1 -p 3000" in out
    for relative in SAMPLE_FILES:
        assert (tmp_path / "landing" / relative).read_bytes() == (SEEDS_LANDING_DIR / relative).read_bytes()
    assert not (tmp_path / ".env").exists()  # partitions start at the sample's first day anyway

    # A line per finished step, each asset's among them, printed before the summary.
    progress = out[:out.index("per-variant summary, 2023-06-01..2023-06-14:")]
    for key in GRAPH.materializable_asset_keys:
        assert f"] {key.to_user_string()} done in " in progress, key
    # The sample's own days are years old: the freshness checks warn, and the output says so.
    assert "warning: Asset check 'newest_partition_fresh' on 'raw_data/user_event' did not pass" in progress

    with dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        materialized = instance.get_materialized_partitions(dg.AssetKey(["core", "dim_user"]))
        assert materialized == {f"2023-06-{day:02d}" for day in range(1, 15)}
        evaluations = check_evaluations(instance, run.run_id)
        not_passed = {key for key, evaluation in evaluations.items() if not evaluation.passed}
        assert not_passed == FRESHNESS | {THE_SAMPLES_WARNING}


def test_a_failed_quickstart_shows_the_runs_output(tmp_path):
    # A folder where the DuckDB file should be: every step that opens the warehouse fails.
    (tmp_path / "warehouse_is_a_folder").mkdir()
    completed, _environment = run_quickstart(
        tmp_path, "--as-shipped", "--first-day", "2023-06-01", "--last-day", "2023-06-01",
        url=f"duckdb:///{tmp_path / 'warehouse_is_a_folder'}",
    )
    assert completed.returncode not in (0, None)
    assert "  FAILED raw_data/" in completed.stdout
    # Each failed step's error comes first, then the run's last lines.
    first_failure = completed.stderr.split("\nthe run's last lines:\n")[0]
    assert 'STEP_FAILURE - Execution of step "raw_data__' in first_failure
    assert "WarehouseError: cannot connect to the warehouse" in first_failure
    assert "warehouse_is_a_folder" in first_failure
    assert "Stack Trace:" not in first_failure
    assert completed.stderr.rstrip().endswith("the run failed; the output above says where")
    assert "per-variant summary" not in completed.stdout


@pytest.fixture(scope="module")
def quickstart_by_default(tmp_path_factory):
    """`elt-assets quickstart` as a new user runs it: no ELT_START_DATE, no flag."""
    folder = tmp_path_factory.mktemp("quickstart")
    yesterday_before = utc_today() - timedelta(days=1)
    completed, environment = run_quickstart(folder)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    return {"folder": folder, "completed": completed, "environment": environment,
            "yesterdays": {yesterday_before, utc_today() - timedelta(days=1)}}


def test_quickstart_places_the_sample_on_the_14_days_ending_yesterday(quickstart_by_default):
    folder = quickstart_by_default["folder"]
    first = date.fromisoformat(dotenv_values(folder / ".env")["ELT_START_DATE"])
    last = first + timedelta(days=13)
    assert last in quickstart_by_default["yesterdays"]
    days = [(first + timedelta(days=offset)).isoformat() for offset in range(14)]
    offset = first - SAMPLE_FIRST_DAY

    # The files: the sample's, named and dated 14 days ending yesterday.
    landing = folder / "landing"
    assert sorted(path.stem for path in (landing / "user_event").iterdir()) == days
    for relative in SAMPLE_FILES:
        table, name = relative.parts
        shipped_day = date.fromisoformat(Path(name).stem)
        placed = landing / table / f"{shipped_day + offset}.csv"
        assert len(placed.read_text().splitlines()) == len((SEEDS_LANDING_DIR / relative).read_text().splitlines())
    with (landing / "user_event" / f"{days[3]}.csv").open(newline="") as placed:
        assert {row["datestamp"] for row in csv.DictReader(placed)} <= {days[3], ""}

    # The partitions the UI will show (ELT_START_DATE from the .env): every one filled.
    partitions = dg.DailyPartitionsDefinition(start_date=first.isoformat(), timezone="UTC")
    assert partitions.get_partition_keys() in (days, days + [(last + timedelta(days=1)).isoformat()])
    environment = quickstart_by_default["environment"]
    with dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        for key in PARTITIONED:
            assert instance.get_materialized_partitions(key) == set(days), key
        evaluations = check_evaluations(instance, run.run_id)
    # Every check, freshness included, passes but the sample's deliberate warning.
    assert set(evaluations) == {(key.asset_key.to_user_string(), key.name) for key in GRAPH.asset_check_keys}
    assert {key for key, evaluation in evaluations.items() if not evaluation.passed} == {THE_SAMPLES_WARNING}
    for key in FRESHNESS:
        assert "within the 36 h lag" in evaluations[key].description
    assert "newest_partition_fresh" not in quickstart_by_default["completed"].stdout

    # The warehouse holds the same days, with the dates inside the files moved alike.
    url = environment["ELT_WAREHOUSE_URL"]
    assert query(url, "select cast(min(datestamp) as date), cast(max(datestamp) as date) "
                      "from analytics.analytics_variant_user_daily") == [(first, last)]
    later = "select count(*) from raw_data.user_metadata where cast(updated_at as date) > partition_date"
    assert query(url, later) == [(0,)]
    assert f"per-variant summary, {first}..{last}:" in quickstart_by_default["completed"].stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _graphql(base_url: str, query_text: str) -> dict:
    request = urllib.request.Request(
        f"{base_url}/graphql", data=json.dumps({"query": query_text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename } } } } }"
PARTITION_STATS = (
    "{ assetNodes { assetKey { path } isPartitioned partitionStats { numMaterialized numPartitions numFailed } } }"
)


def test_after_the_quickstart_dg_dev_shows_every_partition_filled_and_health_passes(
    quickstart_by_default, monkeypatch, capsys
):
    folder, environment = quickstart_by_default["folder"], quickstart_by_default["environment"]
    # The quick start's folder as a dg project, as the checkout is: pyproject.toml, the
    # package beside it, and the .env the quick start wrote.
    shutil.copyfile(PROJECT_ROOT / "pyproject.toml", folder / "pyproject.toml")
    (folder / "elt_assets").symlink_to(PROJECT_ROOT / "elt_assets", target_is_directory=True)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = folder / "dg_dev.log"
    with log_path.open("w") as log:
        # As the quick start prints it; nothing in the environment says where partitions start.
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        entries = []
        while time.monotonic() < deadline and process.poll() is None:
            try:
                entries = _graphql(base_url, LOCATIONS)["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, KeyError, TypeError):
                entries = []
            if entries and entries[0]["locationOrLoadError"]:
                break
            time.sleep(1)
        assert entries == [{"name": "elt_assets", "locationOrLoadError": {"__typename": "RepositoryLocation"}}], (
            f"dg dev exit code {process.poll()}:\n{log_path.read_text()[-3000:]}"
        )
        built = {key.to_user_string() for key in PARTITIONED}  # the landing files are external assets
        nodes = _graphql(base_url, PARTITION_STATS)["assetNodes"]
        stats = {"/".join(node["assetKey"]["path"]): node["partitionStats"] for node in nodes if node["isPartitioned"]}
        assert built < set(stats)
        stats = {key: stat for key, stat in stats.items() if key in built}
        filled = {"numMaterialized": 14, "numPartitions": 14, "numFailed": 0}
        assert all(stat == filled for stat in stats.values()), stats

        # dg dev runs the daemons; with their heartbeats in, every health check passes.
        monkeypatch.setenv("DAGSTER_HOME", environment["DAGSTER_HOME"])
        monkeypatch.setenv("ELT_WAREHOUSE_URL", environment["ELT_WAREHOUSE_URL"])
        with dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance:
            while time.monotonic() < deadline and not {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= set(
                instance.get_daemon_heartbeats()
            ):
                time.sleep(1)
        code = cli.main(["health"])
        lines = capsys.readouterr().out.splitlines()
        assert code == 0, lines
        assert [line for line in lines if line.startswith("ok   freshness: newest")], lines
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:  # the code servers and the daemon may outlive dg itself
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=20)


# ---------------------------------------------------------------- the sample on any calendar


def test_the_sample_moves_with_every_date_in_it(tmp_path):
    first = date(2024, 2, 20)  # its 14 days run over a leap day
    offset = first - SAMPLE_FIRST_DAY
    assert cli.seed_landing(tmp_path, first_day=first) == len(SAMPLE_FILES)
    assert sorted(path.name for path in (tmp_path / "user_event").iterdir()) == [
        f"{first + timedelta(days=day)}.csv" for day in range(14)
    ]
    assert "2024-02-29.csv" in {path.name for path in (tmp_path / "user_event").iterdir()}
    for relative in SAMPLE_FILES:
        table, name = relative.parts
        shipped = (SEEDS_LANDING_DIR / relative).read_text().splitlines()
        placed = (tmp_path / table / f"{date.fromisoformat(Path(name).stem) + offset}.csv").read_text().splitlines()
        assert placed[0] == shipped[0] and len(placed) == len(shipped)
        header = shipped[0].split(",")
        for shipped_line, placed_line in zip(shipped[1:], placed[1:]):
            for column, was, now in zip(header, shipped_line.split(","), placed_line.split(",")):
                if column == "datestamp" and was:
                    assert date.fromisoformat(now) == date.fromisoformat(was) + offset
                elif column == "updated_at":
                    assert datetime.fromisoformat(now) == datetime.fromisoformat(was) + offset
                else:  # user ids, items, '35-44' age buckets, empty datestamps: untouched
                    assert now == was, (relative, column)


def test_the_sample_as_shipped_is_copied_byte_for_byte_and_kept_unless_overwritten(tmp_path):
    assert cli.seed_landing(tmp_path) == len(SAMPLE_FILES)
    for relative in SAMPLE_FILES:
        assert (tmp_path / relative).read_bytes() == (SEEDS_LANDING_DIR / relative).read_bytes()
    changed = tmp_path / "user_event" / "2023-06-05.csv"
    changed.write_text("user_id,datestamp,item_id,clicked,purchased,paidamount\n")
    assert cli.seed_landing(tmp_path) == 0
    assert cli.seed_landing(tmp_path, overwrite=True) == 1  # only the file that differs
    assert changed.read_bytes() == (SEEDS_LANDING_DIR / "user_event" / "2023-06-05.csv").read_bytes()


def test_the_start_date_is_recorded_in_the_env_file_beside_other_settings(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("ELT_FRESHNESS_LAG_HOURS=48\nexport ELT_START_DATE=2020-01-01\n")
    cli.record_start_date(env_file, date(2024, 3, 1))
    assert dotenv_values(env_file) == {"ELT_FRESHNESS_LAG_HOURS": "48", "ELT_START_DATE": "2024-03-01"}
    cli.record_start_date(env_file, date(2024, 3, 2))
    assert env_file.read_text().count("ELT_START_DATE") == 1
    cli.record_start_date(env_file, None)
    assert dotenv_values(env_file) == {"ELT_FRESHNESS_LAG_HOURS": "48"}
    only_ours = tmp_path / "other" / ".env"
    cli.record_start_date(only_ours, date(2024, 3, 1))
    cli.record_start_date(only_ours, None)
    assert not only_ours.exists()


def test_the_sample_goes_where_elt_start_date_says_else_ends_yesterday(monkeypatch):
    monkeypatch.delenv("ELT_START_DATE", raising=False)
    assert cli.sample_first_day(as_shipped=False) == utc_today() - timedelta(days=14)
    assert cli.sample_first_day(as_shipped=True) == SAMPLE_FIRST_DAY
    monkeypatch.setenv("ELT_START_DATE", "2023-06-01")  # pinned, as tests pin it
    assert cli.sample_first_day(as_shipped=False) == SAMPLE_FIRST_DAY
    monkeypatch.setenv("ELT_START_DATE", "2024-03-01")
    assert cli.sample_first_day(as_shipped=False) == date(2024, 3, 1)
    assert cli.sample_first_day(as_shipped=True) == SAMPLE_FIRST_DAY


def test_quickstart_refuses_days_it_cannot_build_before_writing_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ELT_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("ELT_START_DATE", str(utc_today() - timedelta(days=5)))
    assert cli.main(["quickstart", "--env-file", str(tmp_path / ".env")]) == 2
    err = capsys.readouterr().err
    assert f"puts the sample's last day {utc_today() + timedelta(days=8)} after" in err, err
    early = ["quickstart", "--as-shipped", "--first-day", "2023-05-31", "--env-file", str(tmp_path / ".env")]
    assert cli.main(early) == 2
    assert "--first-day/--last-day 2023-05-31..2023-06-14 is not within the sample's days 2023-06-01..2023-06-14" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "landing").exists() and not (tmp_path / ".env").exists()


# ---------------------------------------------------------------- summary


def _hand_built_summary(url: str) -> None:
    """analytics_variant_user_daily as the models write it, two days of it, made by hand."""
    with duckdb.connect(url.removeprefix("duckdb:///")) as connection:
        connection.execute("create schema analytics")
        connection.execute(
            "create table analytics.analytics_variant_user_daily (variant_id varchar, user_id integer, "
            "datestamp date, num_of_items integer, num_of_clicks integer, num_of_purchases integer, "
            "revenue decimal(18, 2))"
        )
        connection.execute(
            "insert into analytics.analytics_variant_user_daily values "
            "('control', 1, '2023-06-01', 10, 1, 0, 0), ('control', 2, '2023-06-01', 10, 2, 1, 30), "
            "('test', 3, '2023-06-02', 20, 5, 2, 50), (null, 4, '2023-06-02', 5, 0, 0, 0)"
        )


def test_summary_prints_the_days_asked_or_every_day_built(tmp_path, monkeypatch, capsys):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    _hand_built_summary(url)
    monkeypatch.setenv("ELT_WAREHOUSE_URL", url)
    assert cli.main(["summary", "--first-day", "2023-06-01", "--last-day", "2023-06-01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("per-variant summary, 2023-06-01..2023-06-01:")
    assert "| control | 2 | 20 | 3 | 15.0 | 1 | 30.00 |" in out and "| test |" not in out
    assert cli.main(["summary"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("per-variant summary, 2023-06-01..2023-06-02:")
    assert "| (unassigned) | 1 | 5 | 0 |" in out and "| test | 1 | 20 | 5 | 25.0 | 2 | 50.00 |" in out


def test_summary_of_a_reversed_range_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ELT_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'w.duckdb'}")
    assert cli.main(["summary", "--first-day", "2023-06-05", "--last-day", "2023-06-01"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: the range 2023-06-05..2023-06-01 is empty: --last-day is before --first-day\n"
    assert captured.out == "" and not (tmp_path / "w.duckdb").exists()


def test_summary_with_nothing_built_says_which_days_and_which_warehouse(tmp_path, monkeypatch, capsys):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    _hand_built_summary(url)
    monkeypatch.setenv("ELT_WAREHOUSE_URL", url)
    assert cli.main(["summary", "--first-day", "2023-07-01", "--last-day", "2023-07-02"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: nothing built for 2023-07-01..2023-07-02 in the warehouse {url}: "
        "analytics.analytics_variant_user_daily has no rows for those days\n"
    )

    # A warehouse that is not there: not created, and its URL's secrets masked.
    absent = tmp_path / "absent.duckdb"
    monkeypatch.setenv("ELT_WAREHOUSE_URL", f"duckdb:///{absent}?motherduck_token=s3cret")
    assert cli.main(["summary", "--first-day", "2023-06-01", "--last-day", "2023-06-14"]) == 1
    err = capsys.readouterr().err
    assert "s3cret" not in err
    assert f"nothing built for 2023-06-01..2023-06-14 in the warehouse duckdb:///{absent}?motherduck_token=***" in err
    assert err.rstrip().endswith("the warehouse does not exist") and not absent.exists()

    # A warehouse with no models built yet.
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    monkeypatch.setenv("ELT_WAREHOUSE_URL", f"duckdb:///{empty}")
    assert cli.main(["summary"]) == 1
    assert capsys.readouterr().err == (
        f"error: nothing built in the warehouse duckdb:///{empty}: "
        "analytics.analytics_variant_user_daily does not exist\n"
    )


# ---------------------------------------------------------------- arguments and --help


@pytest.mark.parametrize(
    "arguments, flag, value",
    [
        (["summary", "--first-day", "2023-13-01"], "--first-day", "2023-13-01"),
        (["summary", "--last-day", "2023-13-01"], "--last-day", "2023-13-01"),
        (["quickstart", "--first-day", "2023-13-01"], "--first-day", "2023-13-01"),
        (["quickstart", "--last-day", "2023-13-01"], "--last-day", "2023-13-01"),
        (["compile", "--partition", "2023-13-01"], "--partition", "2023-13-01"),
        (["compile", "--partition-range", "2023-13-01...2023-06-02"], "--partition-range", "2023-13-01"),
        (["compile", "--partition-range", "2023-06-01...2023-13-01"], "--partition-range", "2023-13-01"),
    ],
)
def test_a_bad_date_names_the_argument_the_value_and_the_form(arguments, flag, value, capsys):
    assert cli.main(arguments) == 2
    assert f"argument {flag}: '{value}' is not a date (YYYY-MM-DD): month must be in 1..12\n" in capsys.readouterr().err


def test_dates_that_are_not_dates_at_all_or_ranges_without_dots(capsys):
    assert cli.main(["summary", "--first-day", "June 1st"]) == 2
    assert "argument --first-day: 'June 1st' is not a date (YYYY-MM-DD)\n" in capsys.readouterr().err
    assert cli.main(["compile", "--partition-range", "2023-06-01..2023-06-02"]) == 2
    assert "argument --partition-range: '2023-06-01..2023-06-02' is not a range FIRST...LAST" in capsys.readouterr().err
    assert cli.main(["compile", "--partition-range", "2023-06-05...2023-06-01"]) == 2
    assert "argument --partition-range: the range '2023-06-05...2023-06-01' ends before it starts" in (
        capsys.readouterr().err
    )


def test_help_imports_nothing_heavy_and_lists_every_command():
    probe = (
        "import sys\n"
        "from elt_assets import cli\n"
        "code = cli.main(['--help'])\n"
        "heavy = {'dagster', 'dagster_aws', 'duckdb', 'sqlalchemy', 'pandas', 'numpy', 'pyarrow', 'sqlglot'}\n"
        "loaded = sorted({name.split('.')[0] for name in sys.modules} & heavy)\n"
        "loaded += [name for name in sys.modules if name.startswith('elt_assets.models')]\n"
        "print('exit', code, 'heavy', loaded)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.rstrip().endswith("exit 0 heavy []")
    for command in ("quickstart", "seed", "summary", "compile", "generate", "spark-server", *cli.OPERATIONS_COMMANDS):
        assert f"    {command} " in completed.stdout, command


def test_the_help_without_the_operations_module_is_the_help_with_it(capsys):
    # The one-line helps of health, cleanup, ... are listed in cli.py for speed; they must
    # stay those that elt_assets.ops.commands registers.
    assert cli.build_parser().format_help() == cli.build_parser(operations=True).format_help()
    assert cli.main(["health", "--help"]) == 0
    assert "--freshness-lag-hours" in capsys.readouterr().out
