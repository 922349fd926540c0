"""The dbt peer: the lecture's dbt project (bench/dbt_peer/) run by dbt-duckdb over the
landing files, "load + dbt run".

Full (no --day): one DuckDB connection creates raw_data.* from all the landing CSVs with
the lecture's types (RAW_TABLES, as the floor), then `dbt run` builds every model.
One more day (--day D): that day's CSVs are appended to the raw tables, as a daily loader
would, then `dbt run` again: the incremental fact takes the new day's events, the dim and
analytics tables are rebuilt whole.

dbt runs as a subprocess (the venv's `dbt run`), so dbt_seconds is what a
`dbt run` costs its caller, interpreter start and dbt's imports included. The last stdout
line is {"load_seconds": ..., "dbt_seconds": ...}; on failure dbt's output goes to stderr
and the exit status is dbt's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

from floor import RAW_TABLES

PROJECT = Path(__file__).resolve().parent / "dbt_peer"


def read_csv(pattern: Path, columns: tuple[tuple[str, str], ...]) -> str:
    """A SELECT over the CSV files matching the pattern, with the given column types."""
    path = str(pattern).replace("'", "''")
    types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns)
    return f"select * from read_csv('{path}', header = true, columns = {{{types}}})"


def load(landing: Path, database: Path, day: str | None) -> None:
    connection = duckdb.connect(str(database))
    try:
        if day is None:
            connection.execute("create schema raw_data")
            for table, columns in RAW_TABLES.items():
                connection.execute(f"create table raw_data.{table} as {read_csv(landing / table / '*.csv', columns)}")
        else:
            for table, columns in RAW_TABLES.items():
                path = landing / table / f"{day}.csv"
                if path.exists():  # a day without variant or metadata changes has no file
                    connection.execute(f"insert into raw_data.{table} {read_csv(path, columns)}")
    finally:
        connection.close()


def dbt_run(database: Path, work: Path) -> None:
    env = dict(
        os.environ,
        DBT_PEER_DATABASE=str(database),
        DO_NOT_TRACK="1",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DBT_VERSION_CHECK="false",
    )
    # The `dbt` script next to this interpreter, as a user runs it (`python -m dbt.cli.main`
    # works too but has runpy warn that dbt.cli.main was imported twice).
    entry = Path(sys.executable).with_name("dbt")
    command = [
        *([sys.executable, str(entry)] if entry.exists() else [sys.executable, "-m", "dbt.cli.main"]), "run",
        "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
        "--no-use-colors", "--no-use-colors-file",
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout + completed.stderr)
        sys.exit(completed.returncode)


def main() -> None:
    parser = argparse.ArgumentParser(description="Load the landing files, then dbt run the lecture's project.")
    parser.add_argument("--landing", type=Path, required=True, help="landing root: DIR/<table>/<day>.csv")
    parser.add_argument("--database", type=Path, required=True, help="the DuckDB file dbt builds in")
    parser.add_argument("--work", type=Path, required=True, help="dbt's target and log folders go here")
    parser.add_argument(
        "--day", type=date.fromisoformat, help="YYYY-MM-DD: append this day's files and run again (default: full load)"
    )
    args = parser.parse_args()
    database, work = args.database.resolve(), args.work.resolve()
    if args.day is None and database.exists():
        parser.error(f"{database} exists: a full run starts from no database")
    if args.day is not None:
        args.day = args.day.isoformat()
        if not database.exists():
            parser.error(f"{database} does not exist: run the full load first")
        if not (args.landing / "user_event" / f"{args.day}.csv").exists():
            parser.error(f"no user_event file for {args.day} under {args.landing}")
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load(args.landing, database, args.day)
    loaded = time.perf_counter()
    dbt_run(database, work)
    finished = time.perf_counter()
    print(json.dumps({"load_seconds": loaded - started, "dbt_seconds": finished - loaded}))


if __name__ == "__main__":
    main()
