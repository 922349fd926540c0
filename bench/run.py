"""Benchmark: the project's backfill and incremental runs against the lecture's SQL by hand.

    .venv/bin/python bench/run.py [--users 100000 --days 30 --events-per-day 1000000
                                   --long-days 180 --out bench/results]
    .venv/bin/python bench/run.py --postgres-url postgresql+psycopg2://postgres@HOST:PORT/postgres
                                  [--users 10000 --days 30 --events-per-day 100000 --long-days 90]
    .venv/bin/python bench/run.py --spark [--spark-memory 2g]
                                  [--users 10000 --days 10 --events-per-day 100000 --long-days 30]
    .venv/bin/python bench/run.py --spark-url sc://HOST:PORT
                                  [--users 10000 --days 10 --events-per-day 100000 --long-days 30]

Steps, each a whole process, timed with wall seconds and the peak RSS of its process tree:
  floor         the lecture's SQL by hand on the landing files (see below)
  dbt           (DuckDB; --no-dbt skips it) the peer: the lecture's own dbt project
                (bench/dbt_peer/) on dbt-duckdb over the same landing files, load + `dbt
                run` (bench/dbt_peer.py): in full before the backfill, then with the one
                more day appended (one run: the peer appends raw rows, so it cannot be
                repeated). Its analytics table must equal the floor's too. Needs the bench
                extra: pip install -e ".[bench]".
  backfill      dagster asset materialize --select '*' --partition-range FIRST...LAST
  incremental   day LAST+1 lands; dagster asset materialize --select '*' --partition LAST+1,
                three times (re-running a day rewrites the same rows): the best run is the
                figure, all three are in the JSON
  incremental   the same at a longer history (--long-days; 0 skips it)
  dagster only  (DuckDB and PostgreSQL only: it measures Dagster, not the engine, so the
                Spark mode skips it) the backfill and the incremental day again, on
                noop_definitions.py: the
                same asset graph, checks and executor with every step a no-op, in a
                fresh DAGSTER_HOME. What Dagster itself (start-up, loading the code
                location, recording each partition's materialization and each check)
                costs of the runs above.
  sample day    (DuckDB only; --no-sample-day skips it) on the shipped sample in seeds/landing:
                2023-06-01...2023-06-04 built unmeasured, then
                dagster asset materialize --select '*' --partition 2023-06-05
                --day-repeats times (3); the best run is the figure, all are in the JSON
It prints the figures, the ratios and whether each target is met, the backfill's own
steps (seconds of each asset's step, from the run's events), writes them as JSON
under --out, and checks that the backfill's analytics table equals the floor's, row for
row, exiting non-zero if it does not. Targets are reported, never enforced.

Growth (--growth, DuckDB): the floor, the peer and the backfill only, at 1x, 2x and 4x
--events-per-day with --users users, and at 10x the users with 1x the events, over --days
days (10 by default in this mode). Prints a table and writes growth-<scale>.json and a plot,
growth-<scale>.svg, under --out; the backfill's steps show which model grows with what.

Engines:
  DuckDB (the default)  the warehouse is a DuckDB file in the work folder; the floor
                        (floor.py) is one DuckDB connection that loads the CSVs and runs
                        lecture_models.sql with CREATE TABLE AS.
                        Result file: bench-<users>u-<days>d-<events>e.json
  PostgreSQL            --postgres-url takes an admin SQLAlchemy URL of a real server. For
                        each history the harness makes fresh databases on that server,
                        elt_bench_floor_<days> and elt_bench_wh_<days> (dropped first if
                        they exist, and at the end unless --keep); the dagster processes
                        get ELT_WAREHOUSE_URL=<server>/elt_bench_wh_<days>. The floor
                        (floor_postgres.py) runs psql twice: a load script (the raw tables
                        with the lecture's types, one \\copy per landing CSV) and
                        lecture_models.sql with its click test written for PostgreSQL
                        (see floor_postgres.py). The comparison reads both analytics tables into Python
                        and compares them as multisets. Peak RSS counts the client
                        processes only: the server's backends are not in the process tree.
                        Result file: bench-postgres-<users>u-<days>d-<events>e.json
  Spark                 --spark: for each history the harness starts its own Spark Connect
                        server with elt_assets.engines.spark_server (local[2], --spark-memory
                        of driver memory, 2g by default) in a fresh folder under the history's
                        work folder, so each history starts from an empty catalog, and stops
                        it when the history is done; the dagster processes get
                        ELT_WAREHOUSE_URL=sc://127.0.0.1:PORT. --spark-url sc://HOST:PORT uses
                        an existing server instead: the harness drops its databases raw_data,
                        staging, core and analytics before each history (and at the end unless
                        --keep); that server must read the landing files at the paths this
                        machine has them. The floor is DuckDB's (floor.py, as above) on the same
                        landing files; the comparison reads the Spark analytics table with the
                        project's engine and the floor's from DuckDB, and compares them as
                        multisets. backfill / floor is printed and kept in the JSON but is
                        informative only, with no target: it sets Spark against DuckDB on one
                        machine, where Spark's per-query overhead (planning, task scheduling,
                        a Connect round trip per statement) dominates and which is not Spark's
                        use case. The one target is the incremental day's scaling with history.
                        Memory: peak RSS is the client process tree, as for the other engines;
                        server peak RSS is the server JVM's VmHWM during each step (reset before
                        the step through /proc/PID/clear_refs; PID from ROOT/server.pid), read
                        only when the harness started the server: with --spark-url it is not
                        measured. The server's Python workers, if any, are not counted.
                        The dagster-only steps are skipped. The defaults are modest (a
                        two-core machine): 10000 users, 10 days of 100000 events, long
                        history 30 days.
                        Result file: bench-spark-<users>u-<days>d-<events>e.json
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
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_ROOT))

from elt_assets.landing.generator import generate_landing  # noqa: E402

import growth_plot  # noqa: E402  (bench/ is on sys.path when run as a script)
import postgres_support as pg  # noqa: E402
import spark_support as spark  # noqa: E402

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
ANALYTICS_TABLE = "analytics.analytics_variant_user_daily"
DAGSTER_MODULE = "elt_assets.definitions"

# The shipped sample and the day the sample-day step measures.
SAMPLE_LANDING = PROJECT_ROOT / "seeds" / "landing"
SAMPLE_FIRST_DAY = date(2023, 6, 1)
SAMPLE_DAY = date(2023, 6, 5)
# A one-day run lasts a few seconds, where this machine's noise is a few tenths: each one-day
# step runs this many times by default (re-running a day replaces it with the same rows)
# and the best run is the figure; every run is in the JSON.
DAY_REPEATS = 3


@dataclass(frozen=True)
class Scale:
    """How much data a run generates; both engines default to 10 events per user and day."""

    users: int
    days: int
    events_per_day: int
    long_days: int


DEFAULT_SCALES = {
    "duckdb": Scale(users=100_000, days=30, events_per_day=1_000_000, long_days=180),
    "postgres": Scale(users=10_000, days=30, events_per_day=100_000, long_days=90),
    "spark": Scale(users=10_000, days=10, events_per_day=100_000, long_days=30),
}


@dataclass
class Step:
    """One measured process: its wall seconds, its tree's peak RSS, the event rows it handled,
    and (Spark, when the harness started the server) the server JVM's peak RSS meanwhile."""

    name: str
    wall_seconds: float
    peak_rss_mb: float
    rows: int
    server_peak_rss_mb: float | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.wall_seconds if self.wall_seconds else 0.0


@dataclass
class History:
    """What one history (a backfill of `days` days, then one more day) measured."""

    steps: dict[str, Step] = field(default_factory=dict)
    repeats: dict[str, list[float]] = field(default_factory=dict)  # wall seconds of every run of a one-day step
    server_repeats: dict[str, list[float | None]] = field(default_factory=dict)  # server peak RSS MB of each run (Spark)
    comparison: pg.Comparison | None = None  # backfill vs floor, when the floor ran
    peer_comparison: pg.Comparison | None = None  # the dbt peer vs floor, when the peer ran
    backfill_steps: dict[str, float] = field(default_factory=dict)  # seconds of each step of the backfill run
    floor_detail: dict | None = None  # the floor's own split of its time
    peer_detail: dict | None = None  # the dbt peer's own split of its time (load, dbt run)


@dataclass(frozen=True)
class Target:
    """A goal for one figure of the report: the figure must be at most `limit`."""

    figure: str
    label: str
    limit: float


# --- measuring processes ------------------------------------------------------------------


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


def measure(name: str, command: list[str], rows: int, env: dict[str, str],
            server: spark.ServerMemory | None = None) -> tuple[Step, str]:
    """Run a command to completion, sampling its process tree's RSS every 50 ms; with a
    server, its peak RSS is reset before and read after."""
    if server:
        server.reset()
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
    return Step(name, wall, peak / 2**20, rows, server.peak_mb() if server else None), stdout


def dagster_materialize(partition_args: list[str]) -> list[str]:
    return [sys.executable, "-m", "dagster", "asset", "materialize", "--select", "*", *partition_args]


def fresh_dagster_home(home: Path) -> None:
    """An empty Dagster instance folder configured as `elt-assets quickstart` makes the
    embedded default (SQLite storage, no telemetry)."""
    from elt_assets.cli import local_instance_yaml

    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(local_instance_yaml())


def run_step_seconds(home: Path) -> dict[str, float]:
    """Seconds of each step of the latest run in a Dagster home, longest first, from the
    run's STEP_START and STEP_SUCCESS (or STEP_FAILURE) events."""
    import dagster as dg

    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs(limit=1)
        records = instance.get_records_for_run(run.run_id, of_type=kinds, limit=100_000).records
    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for record in records:
        entry = record.event_log_entry
        if entry.dagster_event_type == dg.DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif entry.step_key in starts:
            seconds[entry.step_key] = round(entry.timestamp - starts[entry.step_key], 3)
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def dagster_env(base: dict[str, str], landing: Path, warehouse_url: str, home: Path, start: date) -> dict[str, str]:
    """The environment of a dagster process: our landing zone, warehouse and a fresh DAGSTER_HOME."""
    fresh_dagster_home(home)
    env = dict(base)
    env.update(
        ELT_LANDING_DIR=str(landing),
        ELT_WAREHOUSE_URL=warehouse_url,
        DAGSTER_HOME=str(home),
        ELT_START_DATE=start.isoformat(),
        DAGSTER_MODULE_NAME=DAGSTER_MODULE,
    )
    return env


def noop_dagster_env(env: dict[str, str], home: Path) -> dict[str, str]:
    """The environment of a run of noop_definitions: the same graph, no warehouse work."""
    fresh_dagster_home(home)
    paths = [str(BENCH_DIR), str(PROJECT_ROOT), env.get("PYTHONPATH", "")]
    return {
        **env,
        "DAGSTER_HOME": str(home),
        "DAGSTER_MODULE_NAME": "noop_definitions",
        "PYTHONPATH": os.pathsep.join(path for path in paths if path),
    }


# --- landing files ------------------------------------------------------------------------


def bench_landing(landing: Path, users: int, days: int, events_per_day: int, start: date, seed: int) -> None:
    """The generator's production-shaped files (repeated impressions, unassigned users), with
    no late users or attribute changes, so that the lecture's query and ours must agree."""
    generate_landing(
        landing, users=users, days=days, events_per_day=events_per_day, start=start, seed=seed,
        late_user_share=0.0, reassignments=0, metadata_changes=0, null_datestamp_rows=3,
    )


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


# --- the engines --------------------------------------------------------------------------
#
# Each engine's warehouses: warehouse_url(days, work) (called once a history's landing files
# are there), floor_command, compare, history_done(days, work) (after the history's last
# step), server_memory (the memory of a server outside the client's process tree, or None),
# describe(), cleanup() (unless --keep) and close() (always, at the end).


def _duckdb_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def compare_duckdb_files(left: Path, right: Path) -> pg.Comparison:
    """The analytics tables of two DuckDB files, as multisets (EXCEPT ALL)."""
    with duckdb.connect() as connection:
        connection.execute(f"attach {_duckdb_literal(str(left))} as l (read_only)")
        connection.execute(f"attach {_duckdb_literal(str(right))} as r (read_only)")

        def count(query: str) -> int:
            return connection.execute(f"select count(*) from ({query})").fetchone()[0]

        return pg.Comparison(
            rows_left=count(f"select * from l.{ANALYTICS_TABLE}"),
            rows_right=count(f"select * from r.{ANALYTICS_TABLE}"),
            only_left=count(f"select * from l.{ANALYTICS_TABLE} except all select * from r.{ANALYTICS_TABLE}"),
            only_right=count(f"select * from r.{ANALYTICS_TABLE} except all select * from l.{ANALYTICS_TABLE}"),
        )


def dbt_peer_command(landing: Path, work: Path, day: date | None = None) -> list[str]:
    """The peer's command line: the lecture's dbt project over the landing files, in the
    history's work folder (database dbt.duckdb, dbt's target and logs in dbt/)."""
    command = [
        sys.executable, str(BENCH_DIR / "dbt_peer.py"), "--landing", str(landing),
        "--database", str(work / "dbt.duckdb"), "--work", str(work / "dbt"),
    ]
    return command + (["--day", day.isoformat()] if day else [])


def dbt_missing() -> str | None:
    """Why the peer cannot run here, or None."""
    from importlib.util import find_spec

    if find_spec("dbt") is None or find_spec("dbt.adapters.duckdb") is None:
        return 'the dbt peer needs dbt-core and dbt-duckdb: pip install -e ".[bench]" (or pass --no-dbt)'
    return None


class DuckDBWarehouses:
    """The warehouse and the floor as DuckDB files in each history's work folder."""

    engine = "duckdb"
    server_memory = None

    def warehouse_url(self, days: int, work: Path) -> str:
        return f"duckdb:///{work / 'warehouse.duckdb'}"

    def floor_command(self, days: int, work: Path, landing: Path) -> tuple[list[str], dict[str, str]]:
        """The floor's command line and what it adds to the environment."""
        return [sys.executable, str(BENCH_DIR / "floor.py"), "--landing", str(landing), "--database", str(work / "floor.duckdb")], {}

    def compare(self, days: int, work: Path) -> pg.Comparison:
        """The backfill's analytics table against the floor's, as multisets (EXCEPT ALL)."""
        return compare_duckdb_files(work / "warehouse.duckdb", work / "floor.duckdb")

    def history_done(self, days: int, work: Path) -> None:
        """Nothing to do."""

    def cleanup(self) -> None:
        """Nothing to do: the files go with the work folder."""

    def close(self) -> None:
        """Nothing to do."""

    def describe(self) -> dict:
        return {}


class PostgresWarehouses:
    """The warehouse and the floor as fresh databases on one PostgreSQL server."""

    engine = "postgres"
    server_memory = None

    def __init__(self, admin_url: str):
        self.admin = pg.admin_url(admin_url)
        self.created: list[str] = []

    def _fresh(self, role: str, days: int):
        name = pg.database_name(role, days)
        print(f"  creating database {name} on {pg.mask(self.admin)}", flush=True)
        url = pg.create_fresh_database(self.admin, name)
        if name not in self.created:
            self.created.append(name)
        return url

    def warehouse_url(self, days: int, work: Path) -> str:
        return pg.full_url_text(self._fresh("wh", days))

    def floor_command(self, days: int, work: Path, landing: Path) -> tuple[list[str], dict[str, str]]:
        """The floor's command line and its database's URL, passed in the environment so that
        a password in it does not show on a command line."""
        pg.psql_path()  # fail early, and clearly, without psql
        url = self._fresh("floor", days)
        return (
            [sys.executable, str(BENCH_DIR / "floor_postgres.py"), "--landing", str(landing)],
            {pg.FLOOR_URL_VARIABLE: pg.full_url_text(url)},
        )

    def compare(self, days: int, work: Path) -> pg.Comparison:
        return pg.compare_tables(
            pg.database_url(self.admin, pg.database_name("wh", days)),
            pg.database_url(self.admin, pg.database_name("floor", days)),
            ANALYTICS_TABLE,
        )

    def history_done(self, days: int, work: Path) -> None:
        """Nothing to do: the databases stay until cleanup."""

    def cleanup(self) -> None:
        """Drop every database this run made."""
        for name in self.created:
            print(f"dropping database {name}", flush=True)
            pg.drop_database(self.admin, name)
        self.created.clear()

    def close(self) -> None:
        """Nothing to do."""

    def describe(self) -> dict:
        return {"server": pg.mask(self.admin), "server_version": pg.server_version(self.admin)}


class SparkWarehouses:
    """The warehouse on a Spark Connect server: the harness's own, one per history, in a
    fresh folder under the history's work folder (url None), or an existing one (url). The
    floor is DuckDB's, in the work folder."""

    engine = "spark"
    SERVER_FOLDER = "spark_server"

    def __init__(self, url: str | None, memory: str = "2g", timeout: float = 300.0):
        self.url, self.memory, self.timeout = url, memory, timeout
        self.urls: dict[int, str] = {}  # history days -> the URL its warehouse is on
        self.roots: list[Path] = []  # folders of the servers this harness started and has not stopped
        self.server_memory: spark.ServerMemory | None = None
        self.version: str | None = None
        self.peaks_reset = True

    def warehouse_url(self, days: int, work: Path) -> str:
        if self.url:
            print(f"  dropping databases {', '.join(spark.SPARK_DATABASES)} on {self.url}", flush=True)
            spark.drop_databases(self.url)
            self.urls[days] = self.url
        else:
            from elt_assets.engines import spark_server

            missing = spark_server.missing_requirement()
            if missing:
                raise SystemExit(missing)
            root = work / self.SERVER_FOLDER
            print(f"  starting a Spark Connect server in {root} ...", flush=True)
            started = time.perf_counter()
            self.roots.append(root)
            url = spark_server.start(root, memory=self.memory, timeout=self.timeout)
            self.urls[days] = url
            pid = spark.java_pid(root)
            if pid is None:
                raise SystemExit(f"no java process for the Spark server in {root}")
            self.server_memory = spark.ServerMemory(pid)
            print(f"  {url} ready after {time.perf_counter() - started:.1f} s (JVM pid {pid})", flush=True)
        self.version = self.version or spark.server_version(self.urls[days])
        return self.urls[days]

    def floor_command(self, days: int, work: Path, landing: Path) -> tuple[list[str], dict[str, str]]:
        return DuckDBWarehouses().floor_command(days, work, landing)

    def compare(self, days: int, work: Path) -> pg.Comparison:
        return spark.compare_with_floor(self.urls[days], work / "floor.duckdb", ANALYTICS_TABLE)

    def history_done(self, days: int, work: Path) -> None:
        """Stop the history's own server."""
        if self.server_memory is not None:
            self.peaks_reset = self.peaks_reset and self.server_memory.resets
            self.server_memory = None
        self._stop_servers()

    def _stop_servers(self) -> None:
        from elt_assets.engines import spark_server

        while self.roots:
            root = self.roots.pop()
            print(f"stopping the Spark Connect server in {root}", flush=True)
            spark_server.stop(root)

    def cleanup(self) -> None:
        """On an existing server, drop the project's databases; the own servers' data go with
        the work folder."""
        if self.url:
            print(f"dropping databases {', '.join(spark.SPARK_DATABASES)} on {self.url}", flush=True)
            spark.drop_databases(self.url)

    def close(self) -> None:
        """Stop any own server still running (after a failure)."""
        self._stop_servers()

    def describe(self) -> dict:
        return {
            "server": self.url or "local, started by the harness for each history (local[2])",
            "server_version": self.version,
            "driver_memory": None if self.url else self.memory,
            "server_peak_rss": (
                "not measured (an existing server)" if self.url
                else "the server JVM's VmHWM during each step" if self.peaks_reset
                else "the server JVM's VmHWM since the server started (resetting it failed)"
            ),
        }


# --- the steps ----------------------------------------------------------------------------


def run_history(args, days: int, work: Path, env: dict[str, str], warehouses, with_floor: bool) -> History:
    """Generate days+1 days, backfill the first `days` (and the floor), then add the last."""
    first = date.fromisoformat(args.start)
    last = first + timedelta(days=days - 1)
    landing, held_back = work / "landing", work / "held_back"
    shutil.rmtree(work, ignore_errors=True)
    print(f"generating {days + 1} days into {landing} ...", flush=True)
    bench_landing(landing, args.users, days + 1, args.events_per_day, first, args.seed)
    incremental_day = last + timedelta(days=1)
    move_day(landing, held_back, incremental_day)
    history_days = [first + timedelta(days=offset) for offset in range(days)]
    rows = event_rows(landing, history_days)

    env = dagster_env(env, landing, warehouses.warehouse_url(days, work), work / "dagster_home", first)
    history = History()
    if with_floor:
        command, floor_env = warehouses.floor_command(days, work, landing)
        history.steps["floor"], output = measure("floor", command, rows, {**env, **floor_env})
        history.floor_detail = json.loads(output.strip().splitlines()[-1])
        print(f"  floor detail: {json.dumps(history.floor_detail)}", flush=True)
    with_peer = with_floor and warehouses.engine == "duckdb" and not args.no_dbt
    if with_peer:
        print("the dbt peer: load + dbt run ...", flush=True)
        history.steps["dbt"], output = measure("dbt", dbt_peer_command(landing, work), rows, env)
        history.peer_detail = json.loads(output.strip().splitlines()[-1])
        history.peer_comparison = compare_duckdb_files(work / "dbt.duckdb", work / "floor.duckdb")
        print(f"  dbt detail: {json.dumps(history.peer_detail)}; analytics == floor's: "
              f"{history.peer_comparison.equal}", flush=True)
    print(f"backfilling {first}..{last} ...", flush=True)
    history.steps["backfill"], _ = measure(
        "backfill", dagster_materialize(["--partition-range", f"{first}...{last}"]), rows, env,
        warehouses.server_memory,
    )
    # The dagster-only twins measure Dagster, not the engine: not repeated for Spark.
    dagster_only = with_floor and warehouses.engine != "spark"
    if with_floor:
        history.comparison = warehouses.compare(days, work)
        print(f"  backfill analytics == floor analytics: {history.comparison.equal} {asdict(history.comparison)}", flush=True)
    history.backfill_steps = run_step_seconds(work / "dagster_home")
    if dagster_only:
        noop_env = noop_dagster_env(env, work / "dagster_home_noop")
        print("the same backfill with every step a no-op (Dagster's own cost) ...", flush=True)
        history.steps["dagster_only_backfill"], _ = measure(
            "dagster_only_backfill", dagster_materialize(["--partition-range", f"{first}...{last}"]), rows, noop_env
        )
    move_day(held_back, landing, incremental_day)
    day_rows = event_rows(landing, [incremental_day])
    print(f"incremental day {incremental_day} ({args.day_repeats} runs) ...", flush=True)
    measure_day(history, "incremental", incremental_day, day_rows, env, args.day_repeats, warehouses.server_memory)
    if with_peer:
        print(f"the dbt peer's day {incremental_day}: append the day's files + dbt run ...", flush=True)
        history.steps["dbt_day"], _ = measure("dbt_day", dbt_peer_command(landing, work, incremental_day), day_rows, env)
    if dagster_only:
        measure_day(history, "dagster_only_day", incremental_day, day_rows, noop_env, args.day_repeats)
    warehouses.history_done(days, work)
    return history


def measure_day_runs(name: str, day: date, rows: int, env: dict[str, str], repeats: int,
                     server: spark.ServerMemory | None = None) -> list[Step]:
    """Materialize every asset for one day `repeats` times, each a whole process."""
    runs = []
    for attempt in range(1, repeats + 1):
        print(f"  {name} {day}, run {attempt} of {repeats} ...", flush=True)
        runs.append(measure(name, dagster_materialize(["--partition", day.isoformat()]), rows, env, server)[0])
    return runs


def measure_day(history: History, name: str, day: date, rows: int, env: dict[str, str], repeats: int,
                server: spark.ServerMemory | None = None) -> None:
    """Materialize one day `repeats` times; keep the best run and every run's seconds (and,
    with a server, every run's server peak RSS)."""
    runs = measure_day_runs(name, day, rows, env, repeats, server)
    history.steps[name] = min(runs, key=lambda step: step.wall_seconds)
    history.repeats[name] = [round(step.wall_seconds, 3) for step in runs]
    if server:
        history.server_repeats[name] = [
            None if step.server_peak_rss_mb is None else round(step.server_peak_rss_mb, 1) for step in runs
        ]


def run_sample_day(work: Path, env: dict[str, str], repeats: int) -> list[Step]:
    """One day of the shipped sample, every asset, in a fresh DAGSTER_HOME and DuckDB warehouse.

    The days before it are built first, unmeasured; then the day is materialized
    `repeats` times, each a whole CLI process. Returns the measured runs.
    """
    shutil.rmtree(work, ignore_errors=True)
    env = dagster_env(env, SAMPLE_LANDING, f"duckdb:///{work / 'warehouse.duckdb'}", work / "dagster_home", SAMPLE_FIRST_DAY)
    before = SAMPLE_DAY - timedelta(days=1)
    print(f"sample: building {SAMPLE_FIRST_DAY}...{before} (not measured) ...", flush=True)
    measure("sample_history", dagster_materialize(["--partition-range", f"{SAMPLE_FIRST_DAY}...{before}"]), 0, env)
    return measure_day_runs("sample_day", SAMPLE_DAY, event_rows(SAMPLE_LANDING, [SAMPLE_DAY]), env, repeats)


# --- growth -------------------------------------------------------------------------------

GROWTH_DAYS = 10


def growth_scales(args) -> list[tuple[str, int, int]]:
    """(kind, users, events a day) of each growth run: the events at 1x, 2x and 4x, then ten
    times the users at 1x the events."""
    return [
        ("events", args.users, args.events_per_day),
        ("events", args.users, 2 * args.events_per_day),
        ("events", args.users, 4 * args.events_per_day),
        ("users", 10 * args.users, args.events_per_day),
    ]


def run_growth(args) -> None:
    """The floor, the peer and the backfill at each growth scale; a table, JSON and a plot."""
    base_env = {key: value for key, value in os.environ.items() if not key.startswith(("ELT_", "DAGSTER_"))}
    first = date.fromisoformat(args.start)
    days = [first + timedelta(days=offset) for offset in range(args.days)]
    runs = []
    for kind, users, events in growth_scales(args):
        work = args.work / f"growth_{users}u_{events}e"
        shutil.rmtree(work, ignore_errors=True)
        landing = work / "landing"
        print(f"growth: {users:,} users, {events:,} events a day, {args.days} days into {landing} ...", flush=True)
        bench_landing(landing, users, args.days, events, first, args.seed)
        rows = event_rows(landing, days)
        env = dagster_env(base_env, landing, f"duckdb:///{work / 'warehouse.duckdb'}", work / "dagster_home", first)
        command, _ = DuckDBWarehouses().floor_command(args.days, work, landing)
        floor, _ = measure("floor", command, rows, env)
        peer = None if args.no_dbt else measure("dbt", dbt_peer_command(landing, work), rows, env)[0]
        backfill, _ = measure("backfill", dagster_materialize(["--partition-range", f"{days[0]}...{days[-1]}"]), rows, env)
        comparison = compare_duckdb_files(work / "warehouse.duckdb", work / "floor.duckdb")
        steps = run_step_seconds(work / "dagster_home")
        with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as connection:
            dim_user_rows = connection.execute("select count(*) from core.dim_user").fetchone()[0]
        runs.append({
            "kind": kind, "users": users, "events_per_day": events, "event_rows": rows,
            "floor": round(floor.wall_seconds, 2),
            "dbt": None if peer is None else round(peer.wall_seconds, 2),
            "backfill": round(backfill.wall_seconds, 2),
            "backfill_peak_rss_mb": round(backfill.peak_rss_mb),
            "dim_user_rows": dim_user_rows,
            "backfill_steps_seconds": steps,
            "analytics_equals_floor": comparison.equal,
        })
        print(f"  floor {floor.wall_seconds:.2f} s, dbt {'-' if peer is None else f'{peer.wall_seconds:.2f} s'}, "
              f"backfill {backfill.wall_seconds:.2f} s; analytics == floor's: {comparison.equal}", flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report = {"machine": versions(), "days": args.days, "runs": runs}
    print_growth(report)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"growth-{args.users}u-{args.days}d-{args.events_per_day}e"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    stem.with_suffix(".svg").write_text(growth_plot.growth_svg(runs))
    print(f"written: {stem}.json, {stem}.svg")
    if not all(run["analytics_equals_floor"] for run in runs):
        raise SystemExit("a backfill's analytics table differs from the floor's")


def print_growth(report: dict) -> None:
    print()
    print(f"growth over {report['days']} days (wall seconds; ratios: backfill / floor, backfill / dbt)")
    header = (f"{'users':>10}{'events/day':>12}{'event rows':>13}{'floor':>8}{'dbt':>8}{'backfill':>10}"
              f"{'/floor':>8}{'/dbt':>7}{'peak MB':>9}{'dim_user rows':>15}{'dim_user s':>12}{'analytics s':>13}")
    print(header)
    for run in report["runs"]:
        steps = run["backfill_steps_seconds"]
        peer = run["dbt"]
        over_peer = "-" if peer is None else f"{run['backfill'] / peer:.2f}"
        print(f"{run['users']:>10,}{run['events_per_day']:>12,}{run['event_rows']:>13,}{run['floor']:>8.2f}"
              f"{'-' if peer is None else f'{peer:.2f}':>8}{run['backfill']:>10.2f}"
              f"{run['backfill'] / run['floor']:>8.2f}{over_peer:>7}"
              f"{run['backfill_peak_rss_mb']:>9,}{run['dim_user_rows']:>15,}"
              f"{steps.get('core__dim_user', 0):>12.2f}{steps.get('analytics__analytics_variant_user_daily', 0):>13.2f}")


# --- the report ---------------------------------------------------------------------------


def targets(engine: str, days: int, long_days: int) -> list[Target]:
    """The goals for an engine, as limits on figures of the report.

    The incremental day should cost about the same whatever the history before it:
    incremental(long) / incremental(days) is set only when the long history runs.
    """
    scaling = (
        [Target(f"incremental_{long_days}_over_{days}", f"incremental({long_days}) / incremental({days})", 1.25)]
        if long_days else []
    )
    if engine == "postgres":
        return [Target("backfill_over_floor", "backfill / floor", 2.0), *scaling]
    if engine == "spark":
        # backfill / floor is reported, informative only: Spark against DuckDB on one machine.
        return scaling
    return [
        Target("backfill_over_floor", "backfill / floor", 0.8),
        Target("backfill_over_dbt", "backfill / dbt (load + run)", 1.0),
        Target(f"incremental_{days}_seconds", f"incremental({days}) seconds", 4.0),
        *scaling,
        Target("incremental_over_dbt_day", f"incremental({days}) / dbt's day", 1 / 3),
        Target("backfill_peak_rss_mb", "backfill peak RSS MB", 2048.0),
        Target("sample_day_seconds", "sample day seconds (best run)", 3.0),
    ]


def figures(args, short: History, long: History | None, sample_runs: list[Step]) -> dict[str, float]:
    """The ratios and single figures the targets are set on."""
    floor, backfill, incremental = short.steps["floor"], short.steps["backfill"], short.steps["incremental"]
    values = {
        "backfill_over_floor": backfill.wall_seconds / floor.wall_seconds,
        f"incremental_{args.days}_seconds": incremental.wall_seconds,
        "backfill_peak_rss_mb": backfill.peak_rss_mb,
    }
    if "dbt" in short.steps:
        values["backfill_over_dbt"] = backfill.wall_seconds / short.steps["dbt"].wall_seconds
        values["incremental_over_dbt_day"] = incremental.wall_seconds / short.steps["dbt_day"].wall_seconds
    if long:
        values[f"incremental_{args.long_days}_over_{args.days}"] = (
            long.steps["incremental"].wall_seconds / incremental.wall_seconds
        )
    if sample_runs:
        values["sample_day_seconds"] = min(step.wall_seconds for step in sample_runs)
    return values


def judge(goals: list[Target], values: dict[str, float]) -> list[dict]:
    """Each target with its figure and whether it is met (None when not measured)."""
    verdicts = []
    for goal in goals:
        value = values.get(goal.figure)
        verdicts.append({
            "figure": goal.figure, "label": goal.label, "limit": goal.limit, "value": value,
            "met": None if value is None else value <= goal.limit,
        })
    return verdicts


def versions() -> dict:
    """The machine and the versions of what the figures depend on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"cores": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__}
    for package in ("dagster", "pyspark", "dbt-core", "dbt-duckdb"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def step_record(engine: str, step: Step) -> dict:
    """A step as JSON; the server's peak RSS only for Spark (None there when not measured)."""
    record = asdict(step)
    if engine != "spark":
        del record["server_peak_rss_mb"]
    return record


def build_report(args, engine: str, warehouses, short: History, long: History | None, sample_runs: list[Step]) -> dict:
    steps = {
        "floor": step_record(engine, short.steps["floor"]),
        "backfill": step_record(engine, short.steps["backfill"]),
        f"incremental_{args.days}": step_record(engine, short.steps["incremental"]),
    }
    for name in ("dbt", "dbt_day", "dagster_only_backfill", "dagster_only_day"):
        if name in short.steps:
            steps[name] = step_record(engine, short.steps[name])
    if long:
        steps[f"incremental_{args.long_days}"] = step_record(engine, long.steps["incremental"])
    if sample_runs:
        steps["sample_day"] = step_record(engine, min(sample_runs, key=lambda step: step.wall_seconds))
    values = figures(args, short, long, sample_runs)
    ratios = {name: value for name, value in values.items() if "_over_" in name}
    machine = versions()
    report = {
        "engine": engine,
        "machine": machine,
        **({engine: warehouses.describe()} if engine in ("postgres", "spark") else {}),
        "scale": {"users": args.users, "days": args.days, "events_per_day": args.events_per_day, "long_days": args.long_days},
        "steps": steps,
        "floor_detail": short.floor_detail,
        "dbt_detail": short.peer_detail,
        "dbt_comparison": asdict(short.peer_comparison) if short.peer_comparison else None,
        "backfill_steps_seconds": short.backfill_steps,
        "ratios": ratios,
        "targets": judge(targets(engine, args.days, args.long_days), values),
        "comparison": asdict(short.comparison) if short.comparison else None,
        "backfill_analytics_equals_floor": bool(short.comparison and short.comparison.equal),
        "dbt_analytics_equals_floor": None if short.peer_comparison is None else short.peer_comparison.equal,
        "day_runs_seconds": {
            **{name if name != "incremental" else f"incremental_{args.days}": runs for name, runs in short.repeats.items()},
            **({f"incremental_{args.long_days}": long.repeats["incremental"]} if long else {}),
        },
    }
    if sample_runs:
        report["sample_day_runs"] = [asdict(step) for step in sample_runs]
    if engine == "postgres":
        report["peak_rss_note"] = "client processes only; the PostgreSQL server's backends are not counted"
    if engine == "spark":
        report["day_runs_server_peak_rss_mb"] = {
            f"incremental_{args.days}": short.server_repeats.get("incremental"),
            **({f"incremental_{args.long_days}": long.server_repeats.get("incremental")} if long else {}),
        }
        report["informative_only"] = ["backfill_over_floor"]
        report["peak_rss_note"] = (
            "peak_rss_mb: the client process tree (dagster and its run workers); server_peak_rss_mb: "
            "the Spark server JVM's VmHWM during the step, reset before it (null: not measured, "
            "i.e. an existing server, or a step the server takes no part in such as the floor)"
        )
    return report


def print_report(report: dict) -> None:
    print()
    engine = report["engine"]
    server = report.get(engine) if engine in ("postgres", "spark") else None
    print(f"engine: {engine}" + (f"  server: {server['server']} ({server['server_version']})" if server else ""))
    spark_mode = engine == "spark"
    server_header = f"{'server peak MB':>16}" if spark_mode else ""
    print(f"{'step':<22}{'wall s':>9}{'peak RSS MB':>13}{server_header}{'rows':>13}{'rows/s':>13}")
    for name, step in report["steps"].items():
        server_peak = ""
        if spark_mode:
            value = step["server_peak_rss_mb"]
            server_peak = f"{'-' if value is None else format(value, '.0f'):>16}"
        print(f"{name:<22}{step['wall_seconds']:>9.2f}{step['peak_rss_mb']:>13.0f}{server_peak}{step['rows']:>13,}{step['rows'] / step['wall_seconds']:>13,.0f}")
    if spark_mode:
        measured = not server["server_peak_rss"].startswith("not measured")
        print("peak RSS MB: the client process tree; server peak MB: " + server["server_peak_rss"]
              + (" (- on the floor, which does not use the server)" if measured else ""))
    for name, runs in report["day_runs_seconds"].items():
        print(f"{name} runs (s): " + ", ".join(f"{run:.2f}" for run in runs))
    for name, peaks in report.get("day_runs_server_peak_rss_mb", {}).items():
        if peaks and any(peak is not None for peak in peaks):
            print(f"{name} runs, server peak MB: " + ", ".join("-" if peak is None else f"{peak:.0f}" for peak in peaks))
    if "sample_day_runs" in report:
        print("sample day runs (s): " + ", ".join(f"{run['wall_seconds']:.2f}" for run in report["sample_day_runs"]))
    print()
    print(f"{'target':<38}{'value':>10}{'limit':>11}  verdict")
    for target in report["targets"]:
        value = "-" if target["value"] is None else f"{target['value']:.2f}"
        verdict = {True: "met", False: "not met", None: "not measured"}[target["met"]]
        limit = format(target["limit"], ".3g" if target["limit"] < 100 else ".0f")
        print(f"{target['label']:<38}{value:>10}{'<= ' + limit:>11}  {verdict}")
    for name in report.get("informative_only", []):
        if name in report["ratios"]:
            label = name.replace("_over_", " / ")
            print(f"{label:<38}{report['ratios'][name]:>10.2f}{'-':>11}  informative only (Spark vs the DuckDB floor on one machine)")
    print(f"backfill analytics equals floor: {report['backfill_analytics_equals_floor']}")
    if report.get("dbt_analytics_equals_floor") is not None:
        print(f"dbt analytics equals floor: {report['dbt_analytics_equals_floor']}")
    print_steps(report.get("backfill_steps_seconds") or {})


def print_steps(steps: dict[str, float], shown: int = 12) -> None:
    """The backfill run's longest steps."""
    if not steps:
        return
    print(f"backfill, seconds per step (longest {min(shown, len(steps))} of {len(steps)}; "
          f"all steps {sum(steps.values()):.2f} s):")
    for name, seconds in list(steps.items())[:shown]:
        print(f"  {seconds:7.2f}  {name.replace('__', '/')}")


def result_file(out: Path, engine: str, args) -> Path:
    """bench-<scale>.json for DuckDB (as before), bench-<engine>-<scale>.json for the others."""
    prefix = "bench-" if engine == "duckdb" else f"bench-{engine}-"
    return out / f"{prefix}{args.users}u-{args.days}d-{args.events_per_day}e.json"


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    engines = parser.add_mutually_exclusive_group()
    engines.add_argument("--postgres-url", help="admin SQLAlchemy URL of a PostgreSQL server: benchmark PostgreSQL, not DuckDB")
    engines.add_argument("--spark", action="store_true", help="benchmark Spark on a local Spark Connect server the harness starts")
    engines.add_argument("--spark-url", help="benchmark Spark on an existing server, sc://HOST:PORT (its project databases are dropped)")
    parser.add_argument("--spark-memory", default="2g", help="driver memory of the harness's own Spark server (2g)")
    parser.add_argument("--users", type=int, help="users (DuckDB 100000, PostgreSQL and Spark 10000)")
    parser.add_argument("--days", type=int, help="days of the history the floor and backfill cover (30; Spark 10)")
    parser.add_argument("--events-per-day", type=int, help="events a day (DuckDB 1000000, PostgreSQL and Spark 100000)")
    parser.add_argument("--long-days", type=int, help="history for the second incremental day, 0 skips it (DuckDB 180, PostgreSQL 90, Spark 30)")
    parser.add_argument("--no-sample-day", action="store_true", help="skip the sample-day step (DuckDB only)")
    parser.add_argument("--no-dbt", action="store_true", help="skip the dbt peer (DuckDB only)")
    parser.add_argument("--growth", action="store_true",
                        help="DuckDB: the backfill at 1x/2x/4x the events and 10x the users instead of the usual steps")
    parser.add_argument("--day-repeats", type=int, default=DAY_REPEATS, help=f"runs of each one-day step; the best counts ({DAY_REPEATS})")
    parser.add_argument("--start", default="2023-06-01")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/elt-bench"))
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    parser.add_argument("--keep", action="store_true", help="keep the generated files, warehouses and databases")
    args = parser.parse_args(argv)
    if args.spark_url and not args.spark_url.startswith("sc://"):
        parser.error("--spark-url must be a Spark Connect URL, sc://HOST:PORT")
    args.engine = "postgres" if args.postgres_url else "spark" if args.spark or args.spark_url else "duckdb"
    if args.growth and args.engine != "duckdb":
        parser.error("--growth runs on DuckDB only")
    if args.growth and args.days is None:
        args.days = GROWTH_DAYS
    if args.engine != "duckdb":
        args.no_dbt = True  # the peer is dbt-duckdb
    defaults = DEFAULT_SCALES[args.engine]
    for name, value in asdict(defaults).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("users", "days", "events_per_day"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.long_days < 0:
        parser.error("--long-days must be 0 or more")
    return args


def main() -> None:
    args = parse_args()
    if not args.no_dbt and (missing := dbt_missing()):
        raise SystemExit(missing)
    if args.growth:
        run_growth(args)
        return
    engine = args.engine
    warehouses = (
        PostgresWarehouses(args.postgres_url) if engine == "postgres"
        else SparkWarehouses(args.spark_url, args.spark_memory) if engine == "spark"
        else DuckDBWarehouses()
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ELT_", "DAGSTER_"))}
    print(f"engine {engine}: {args.users} users, {args.days} days, {args.events_per_day} events a day, long history {args.long_days} days", flush=True)
    try:
        short = run_history(args, args.days, args.work / f"history_{args.days}", env, warehouses, with_floor=True)
        long = (
            run_history(args, args.long_days, args.work / f"history_{args.long_days}", env, warehouses, with_floor=False)
            if args.long_days else None
        )
        sample_runs = [] if engine != "duckdb" or args.no_sample_day else run_sample_day(args.work / "sample_day", env, args.day_repeats)
        report = build_report(args, engine, warehouses, short, long, sample_runs)
    finally:
        try:
            if not args.keep:
                warehouses.cleanup()
        finally:
            warehouses.close()
    print_report(report)
    args.out.mkdir(parents=True, exist_ok=True)
    path = result_file(args.out, engine, args)
    path.write_text(json.dumps(report, indent=2))
    print(f"written: {path}")
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    if not report["backfill_analytics_equals_floor"]:
        raise SystemExit("the backfill's analytics table differs from the floor's")
    if report["dbt_analytics_equals_floor"] is False:
        raise SystemExit("the dbt peer's analytics table differs from the floor's")


if __name__ == "__main__":
    main()
