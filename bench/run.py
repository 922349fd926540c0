"""Benchmark: the project's backfill and incremental runs against the lecture's SQL by hand.

    .venv/bin/python bench/run.py [--users 100000 --days 30 --events-per-day 1000000
                                   --long-days 180 --out bench/results]

Steps, each a whole process, timed with wall seconds and the peak RSS of its process tree:
  floor         one DuckDB connection loads the landing files and runs the lecture's SQL
  backfill      dagster asset materialize --select '*' --partition-range FIRST...LAST
  incremental   day LAST+1 lands; dagster asset materialize --select '*' --partition LAST+1
  incremental   the same at a longer history (--long-days)
It prints the figures and the ratios, writes them as JSON, and checks that the backfill's
analytics table equals the floor's, row for row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from elt_assets.generator import generate_landing  # noqa: E402

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Step:
    name: str
    wall_seconds: float
    peak_rss_mb: float
    rows: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.wall_seconds if self.wall_seconds else 0.0


def _tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as handle:
                resident = int(handle.read().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = resident
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        current = frontier.pop()
        for pid, parent in parents.items():
            if parent == current and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(rss.get(pid, 0) for pid in tree)


def measure(name: str, command: list[str], rows: int, env: dict[str, str]) -> tuple[Step, str]:
    """Run a command to completion, sampling its process tree's RSS every 50 ms."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss_bytes(process.pid))
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if process.returncode != 0:
        sys.stderr.write(stdout[-3000:] + stderr[-5000:])
        raise SystemExit(f"{name} failed with exit code {process.returncode}")
    return Step(name, wall, peak / 2**20, rows), stdout


def event_rows(landing: Path, days: list[date]) -> int:
    """Rows of the user_event files of the given days (DuckDB counts them)."""
    files = [str(landing / "user_event" / f"{day}.csv") for day in days]
    with duckdb.connect() as connection:
        return connection.execute("select count(*) from read_csv($files, header = true)", {"files": files}).fetchone()[0]


def move_day(source: Path, target: Path, day: date) -> None:
    for table in ("user_event", "user_variant", "user_metadata"):
        path = source / table / f"{day}.csv"
        if path.exists():
            (target / table).mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target / table / path.name)


def dagster_materialize(partition_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "dagster", "asset", "materialize", "--select", "*", *partition_args]


def tables_equal(left: Path, right: Path, table: str) -> bool:
    with duckdb.connect() as connection:
        connection.execute(f"attach '{left}' as l (read_only)")
        connection.execute(f"attach '{right}' as r (read_only)")
        missing = connection.execute(f"select count(*) from (select * from l.{table} except all select * from r.{table})").fetchone()[0]
        extra = connection.execute(f"select count(*) from (select * from r.{table} except all select * from l.{table})").fetchone()[0]
    return missing == 0 and extra == 0


def run_history(args, days: int, work: Path, env: dict[str, str], with_floor: bool) -> dict[str, Step]:
    """Generate days+1 days, backfill the first `days` (and the floor), then add the last."""
    first = date.fromisoformat(args.start)
    last = first + timedelta(days=days - 1)
    landing, held_back = work / "landing", work / "held_back"
    shutil.rmtree(work, ignore_errors=True)
    print(f"generating {days + 1} days into {landing} ...", flush=True)
    generate_landing(
        landing, users=args.users, days=days + 1, events_per_day=args.events_per_day,
        start=first, seed=args.seed, late_user_share=0.0, reassignments=0, metadata_changes=0,
        null_datestamp_rows=3,
    )
    incremental_day = last + timedelta(days=1)
    move_day(landing, held_back, incremental_day)
    history_days = [first + timedelta(days=offset) for offset in range(days)]
    rows = event_rows(landing, history_days)

    env = dict(env)
    env.update(
        ELT_LANDING_DIR=str(landing),
        ELT_WAREHOUSE_URL=f"duckdb:///{work / 'warehouse.duckdb'}",
        DAGSTER_HOME=str(work / "dagster_home"),
        ELT_START_DATE=first.isoformat(),
        DAGSTER_MODULE_NAME="elt_assets.definitions",
    )
    (work / "dagster_home").mkdir()
    (work / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    steps: dict[str, Step] = {}
    if with_floor:
        floor_db = work / "floor.duckdb"
        steps["floor"], output = measure(
            "floor", [sys.executable, str(Path(__file__).parent / "floor.py"), "--landing", str(landing), "--database", str(floor_db)],
            rows, env,
        )
        print(f"  floor detail: {output.strip()}", flush=True)
    print(f"backfilling {first}..{last} ...", flush=True)
    steps["backfill"], _ = measure(
        "backfill", dagster_materialize(["--partition-range", f"{first}...{last}"]), rows, env
    )
    if with_floor:
        equal = tables_equal(work / "warehouse.duckdb", work / "floor.duckdb", "analytics.analytics_variant_user_daily")
        steps["backfill_equals_floor"] = equal  # type: ignore[assignment]
        print(f"  backfill analytics == floor analytics: {equal}", flush=True)
    move_day(held_back, landing, incremental_day)
    day_rows = event_rows(landing, [incremental_day])
    steps["incremental"], _ = measure(
        "incremental", dagster_materialize(["--partition", incremental_day.isoformat()]), day_rows, env
    )
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--long-days", type=int, default=180, help="history for the second incremental day (0 skips it)")
    parser.add_argument("--start", default="2023-06-01")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/elt-bench"))
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and warehouses")
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ELT_", "DAGSTER_"))}

    short = run_history(args, args.days, args.work / f"history_{args.days}", env, with_floor=True)
    long = run_history(args, args.long_days, args.work / f"history_{args.long_days}", env, with_floor=False) if args.long_days else {}

    floor, backfill = short["floor"], short["backfill"]
    report = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__},
        "scale": {"users": args.users, "days": args.days, "events_per_day": args.events_per_day, "long_days": args.long_days},
        "steps": {
            "floor": asdict(floor),
            "backfill": asdict(backfill),
            f"incremental_{args.days}": asdict(short["incremental"]),
            **({f"incremental_{args.long_days}": asdict(long["incremental"])} if long else {}),
        },
        "ratios": {
            "backfill_over_floor": backfill.wall_seconds / floor.wall_seconds,
            **(
                {f"incremental_{args.long_days}_over_{args.days}": long["incremental"].wall_seconds / short["incremental"].wall_seconds}
                if long else {}
            ),
        },
        "backfill_analytics_equals_floor": short["backfill_equals_floor"],
    }
    print()
    print(f"{'step':<18}{'wall s':>9}{'peak RSS MB':>13}{'rows':>13}{'rows/s':>13}")
    for name, step in report["steps"].items():
        print(f"{name:<18}{step['wall_seconds']:>9.2f}{step['peak_rss_mb']:>13.0f}{step['rows']:>13,}{step['rows'] / step['wall_seconds']:>13,.0f}")
    for name, value in report["ratios"].items():
        print(f"{name:<30}{value:>8.2f}")
    print(f"backfill analytics equals floor: {report['backfill_analytics_equals_floor']}")
    args.out.mkdir(parents=True, exist_ok=True)
    result_file = args.out / f"bench-{args.users}u-{args.days}d-{args.events_per_day}e.json"
    result_file.write_text(json.dumps(report, indent=2))
    print(f"written: {result_file}")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    if not report["backfill_analytics_equals_floor"]:
        raise SystemExit("the backfill's analytics table differs from the floor's")


if __name__ == "__main__":
    main()
