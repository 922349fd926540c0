"""The benchmark's dbt peer (bench/dbt_peer.py over the dbt project bench/dbt_peer/) at a
tiny scale: three days loaded in full, then a fourth as one more day, must give the floor's
analytics table over all four days, and the fourth day must reach the fact table through
dbt's incremental insert, not a rebuild. Timings are not checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from elt_assets.landing.generator import TABLES, generate_landing
from elt_assets_tests.support import dbt_missing

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH = PROJECT_ROOT / "bench"
ANALYTICS = "analytics.analytics_variant_user_daily"
FACT = "core.fact_user_event"
LAST_DAY = "2023-06-04"

def require_dbt() -> None:
    """Skip (or, under ELT_REQUIRE_DBT=1, fail) unless dbt-core and dbt-duckdb are installed."""
    if missing := dbt_missing():
        pytest.skip(missing)


def run(script: str, *args: str | Path) -> dict:
    """Run a bench script; return the JSON object of its last stdout line."""
    completed = subprocess.run(
        [sys.executable, str(BENCH / script), *map(str, args)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The floor over four days, and the peer's database after three days plus the fourth."""
    require_dbt()
    root = tmp_path_factory.mktemp("dbt_peer")
    landing = root / "landing"
    # The generator's defaults: late users, re-assignments and metadata changes, so the last
    # day brings rows to all three raw tables.
    generate_landing(landing, users=300, days=4, events_per_day=2000)
    first_days = root / "first_days"  # the same files without the last day's
    shutil.copytree(landing, first_days)
    for table in TABLES:
        assert (landing / table / f"{LAST_DAY}.csv").exists(), table
        (first_days / table / f"{LAST_DAY}.csv").unlink()

    run("floor.py", "--landing", landing, "--database", root / "floor.duckdb")
    peer, work = root / "peer.duckdb", root / "work"
    full = run("dbt_peer.py", "--landing", first_days, "--database", peer, "--work", work)
    with duckdb.connect(str(peer), read_only=True) as connection:
        fact_before = connection.execute(f"select count(*), max(datestamp) from {FACT}").fetchone()
    day = run("dbt_peer.py", "--landing", landing, "--database", peer, "--work", work, "--day", LAST_DAY)
    return {"root": root, "work": work, "timings": (full, day), "fact_before": fact_before}


@pytest.fixture
def both(built):
    """One connection with the floor's database as f and the peer's as p."""
    connection = duckdb.connect()
    connection.execute(f"attach '{built['root'] / 'floor.duckdb'}' as f (read_only)")
    connection.execute(f"attach '{built['root'] / 'peer.duckdb'}' as p (read_only)")
    yield connection
    connection.close()


def count(connection, sql: str) -> int:
    return connection.execute(f"select count(*) from ({sql})").fetchone()[0]


def test_timings_are_reported(built):
    for timings in built["timings"]:
        assert set(timings) == {"load_seconds", "dbt_seconds"}
        assert all(seconds > 0 for seconds in timings.values())


def test_analytics_equals_floor(both):
    rows = count(both, f"select * from f.{ANALYTICS}")
    assert rows > 0
    assert count(both, f"select * from p.{ANALYTICS}") == rows
    assert count(both, f"select * from f.{ANALYTICS} except all select * from p.{ANALYTICS}") == 0
    assert count(both, f"select * from p.{ANALYTICS} except all select * from f.{ANALYTICS}") == 0


def test_fact_took_only_the_new_day(built, both):
    # After the full run: the first three days' events with a datestamp, nothing later.
    rows_before, newest_before = built["fact_before"]
    assert rows_before == count(both, f"select * from f.{FACT} where datestamp < '{LAST_DAY}'")
    assert str(newest_before.date()) < LAST_DAY
    # After the one more day: the floor's fact table, the new day's rows added to the old ones.
    assert count(both, f"select * from p.{FACT}") == count(both, f"select * from f.{FACT}")
    assert count(both, f"select * from f.{FACT} except all select * from p.{FACT}") == 0
    # ...through dbt's incremental path: an insert of the rows newer than the table's newest.
    ran = (built["work"] / "target" / "run" / "learn_dbt" / "models" / "fact" / "fact_user_event.sql").read_text()
    assert "insert into" in ran.lower() and "create table" not in ran.lower(), ran
    compiled = (built["work"] / "target" / "compiled" / "learn_dbt" / "models" / "fact" / "fact_user_event.sql").read_text()
    assert "max(datestamp)" in compiled, compiled
