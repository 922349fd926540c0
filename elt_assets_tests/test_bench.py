"""Smoke test of the benchmark harness (bench/run.py) at a tiny scale, on both engines.

It checks that the harness runs end to end, writes its JSON and finds the backfill's
analytics table equal to the floor's. The timings it measures are not checked: at this
scale they say nothing, and the machine may be busy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from elt_assets_tests.support import dbt_missing

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RUN = PROJECT_ROOT / "bench" / "run.py"

# Two days of history, then one more; a three-day history for the second incremental day
# (PostgreSQL; on DuckDB the dbt peer runs instead, to keep the test short).
TINY = ["--users", "300", "--days", "2", "--events-per-day", "3000", "--no-sample-day", "--day-repeats", "1"]
EXPECTED_STEPS = {
    "duckdb": {"floor", "dbt", "backfill", "incremental_2", "dbt_day", "dagster_only_backfill", "dagster_only_day"},
    "postgres": {"floor", "backfill", "incremental_2", "incremental_3", "dagster_only_backfill", "dagster_only_day"},
}


def run_bench(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, str(RUN), *TINY, "--work", str(tmp_path / "work"), "--out", str(out), *extra],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


def read_report(path: Path) -> dict:
    assert path.exists(), f"no result file {path}"
    return json.loads(path.read_text())


def assert_sound(report: dict, engine: str, steps: set[str] | None = None) -> None:
    """The report is of the right engine, the tables are equal and every step did some work."""
    assert report["engine"] == engine
    assert report["backfill_analytics_equals_floor"] is True
    assert report["comparison"]["rows_left"] == report["comparison"]["rows_right"] > 0
    assert set(report["steps"]) == (EXPECTED_STEPS[engine] if steps is None else steps)
    for name, step in report["steps"].items():
        assert step["wall_seconds"] > 0, name
        assert step["rows"] > 0, name
    assert set(report["floor_detail"]) == {"load_seconds", "sql_seconds"}
    assert all(target["met"] in (True, False, None) for target in report["targets"])
    assert all(len(runs) == 1 for runs in report["day_runs_seconds"].values())
    # The backfill's own steps, from the run's events: every model and the readout.
    steps = report["backfill_steps_seconds"]
    assert {"raw_data__user_event", "core__dim_user", "analytics__ab_test_readout"} <= set(steps)
    assert all(seconds > 0 for seconds in steps.values())


def test_bench_duckdb(tmp_path):
    with_peer = dbt_missing() is None  # the README's test install has no dbt
    run_bench(tmp_path, "--long-days", "0", *([] if with_peer else ["--no-dbt"]))
    report = read_report(tmp_path / "out" / "bench-300u-2d-3000e.json")
    if not with_peer:  # the rest of the harness still runs
        assert_sound(report, "duckdb", EXPECTED_STEPS["duckdb"] - {"dbt", "dbt_day"})
        assert report["dbt_analytics_equals_floor"] is None
        return
    assert_sound(report, "duckdb")
    # The peer: the lecture's dbt project over the same files gives the floor's table.
    assert report["dbt_analytics_equals_floor"] is True
    assert report["dbt_comparison"]["rows_left"] == report["comparison"]["rows_right"]
    assert {"backfill_over_dbt", "incremental_over_dbt_day"} <= set(report["ratios"])
    assert report["machine"]["dbt-core"] and report["machine"]["dbt-duckdb"]
    assert not (tmp_path / "work").exists()  # removed without --keep


def test_bench_postgres(tmp_path, postgres_admin_url):
    completed = run_bench(tmp_path, "--long-days", "3", "--postgres-url", postgres_admin_url)
    report = read_report(tmp_path / "out" / "bench-postgres-300u-2d-3000e.json")
    assert_sound(report, "postgres")
    admin = sa.make_url(postgres_admin_url)
    if admin.password:
        assert admin.password not in completed.stdout + completed.stderr
    engine = sa.create_engine(admin)
    try:
        with engine.connect() as connection:
            left = connection.execute(
                sa.text("select datname from pg_database where datname = any(:names)"),
                {"names": ["elt_bench_floor_2", "elt_bench_wh_2", "elt_bench_wh_3"]},
            ).scalars().all()
    finally:
        engine.dispose()
    assert left == []  # dropped without --keep


def test_the_growth_plot_draws_every_run():
    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    try:
        import growth_plot
    finally:
        sys.path.remove(str(PROJECT_ROOT / "bench"))
    from xml.etree import ElementTree

    runs = [
        {"kind": "events", "users": 100, "event_rows": rows, "floor": rows / 1e6, "dbt": 2 * rows / 1e6, "backfill": 1.5 * rows / 1e6}
        for rows in (10_000_000, 20_000_000, 40_000_000)
    ] + [{"kind": "users", "users": 1000, "event_rows": 10_000_000, "floor": 12.0, "dbt": None, "backfill": 30.0}]
    svg = ElementTree.fromstring(growth_plot.growth_svg(runs))
    namespace = "{http://www.w3.org/2000/svg}"
    # One line per contender over the event multiples, filled points for them, hollow ones
    # (white fill) for the users' run except the peer's, which did not run.
    assert len(svg.findall(f"{namespace}polyline")) == 3
    circles = svg.findall(f"{namespace}circle")
    assert sum(circle.get("fill") != "white" for circle in circles) == 9
    assert sum(circle.get("fill") == "white" for circle in circles) == 2 + 1  # two runs and the legend's
    texts = [text.text for text in svg.findall(f"{namespace}text")]
    assert "40" in texts and "1,000 users" in texts
