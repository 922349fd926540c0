"""The PostgreSQL floor: the lecture's SQL run by hand through psql on an empty database.

    floor_postgres.py --landing DIR [--url postgresql+psycopg2://USER@HOST:PORT/DATABASE]

The database's URL is --url, else the environment variable BENCH_FLOOR_URL (how run.py
passes it, so that a password in it is not on a command line).

psql runs twice, each as one script with ON_ERROR_STOP: first the load (the raw_data
tables with the lecture's column types, then one \\copy per landing CSV), then the
models (lecture_models.sql, its click test rewritten for PostgreSQL). Prints the seconds of each as JSON, like floor.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from floor import LECTURE_MODELS, RAW_TABLES
from postgres_support import FLOOR_URL_VARIABLE, libpq_conninfo, mask, psql_env, psql_path, psql_quote_path

# The one change PostgreSQL needs in the lecture's SQL: it has no implicit cast from
# integer to boolean, so `CASE WHEN clicked` (clicked is an integer) is an error there.
# `clicked <> 0` is what Redshift's implicit int->bool cast makes of it.
CLICK_TEST = "CASE WHEN clicked THEN"
CLICK_TEST_POSTGRES = "CASE WHEN clicked <> 0 THEN"


def models_script() -> str:
    """lecture_models.sql with the click test written for PostgreSQL."""
    text = LECTURE_MODELS.read_text()
    if text.count(CLICK_TEST) != 1:
        raise SystemExit(f"{LECTURE_MODELS.name}: expected {CLICK_TEST!r} exactly once")
    return text.replace(CLICK_TEST, CLICK_TEST_POSTGRES)


def load_script(landing: Path) -> str:
    """psql input that creates raw_data's tables and copies every landing CSV into them."""
    lines = ["create schema raw_data;"]
    for table, columns in RAW_TABLES.items():
        declared = ", ".join(f"{name} {kind}" for name, kind in columns)
        lines.append(f"create table raw_data.{table} ({declared});")
    for table, columns in RAW_TABLES.items():
        names = ", ".join(name for name, _ in columns)
        for path in sorted((landing / table).glob("*.csv")):
            lines.append(
                f"\\copy raw_data.{table} ({names}) from {psql_quote_path(str(path))} with (format csv, header true)"
            )
    return "\n".join(lines) + "\n"


def run_psql(url: sa.URL, script: Path) -> float:
    """Run one script through psql, stopping at the first error; return its wall seconds."""
    command = [psql_path(), "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-d", libpq_conninfo(url), "-f", str(script)]
    started = time.perf_counter()
    completed = subprocess.run(command, env=psql_env(url), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout[-2000:] + completed.stderr[-4000:])
        raise SystemExit(f"psql failed on {script.name} against {mask(url)} (exit code {completed.returncode})")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, required=True, help="the landing zone root")
    parser.add_argument("--url", help=f"SQLAlchemy URL of an empty PostgreSQL database (default: ${FLOOR_URL_VARIABLE})")
    args = parser.parse_args()
    text = args.url or os.environ.get(FLOOR_URL_VARIABLE)
    if not text:
        parser.error(f"give --url or set {FLOOR_URL_VARIABLE}")
    url = sa.make_url(text)
    with tempfile.TemporaryDirectory(prefix="elt-floor-") as scratch:
        load, models = Path(scratch) / "load_raw.sql", Path(scratch) / "lecture_models_postgres.sql"
        load.write_text(load_script(args.landing.resolve()))
        models.write_text(models_script())
        load_seconds = run_psql(url, load)
        sql_seconds = run_psql(url, models)
    print(json.dumps({"load_seconds": load_seconds, "sql_seconds": sql_seconds}))


if __name__ == "__main__":
    main()
