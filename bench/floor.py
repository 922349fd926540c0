"""The floor: one fresh DuckDB connection bulk-loads the landing files and runs the
lecture's SQL by hand. Prints the load and SQL seconds as JSON."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
LECTURE_MODELS = HERE / "lecture_models.sql"

# The raw tables as the lecture declares them, in the CSV files' column order; the type
# names mean the same in DuckDB and PostgreSQL.
RAW_TABLES = {
    "user_event": (
        ("user_id", "integer"),
        ("datestamp", "timestamp"),
        ("item_id", "integer"),
        ("clicked", "integer"),
        ("purchased", "integer"),
        ("paidamount", "integer"),
    ),
    "user_variant": (("user_id", "integer"), ("variant_id", "varchar")),
    "user_metadata": (("user_id", "integer"), ("age", "varchar"), ("gender", "varchar"), ("updated_at", "timestamp")),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--database", type=Path, required=True)
    args = parser.parse_args()
    connection = duckdb.connect(str(args.database))
    started = time.perf_counter()
    connection.execute("create schema raw_data")
    for table, columns in RAW_TABLES.items():
        pattern = str(args.landing / table / "*.csv").replace("'", "''")
        types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns)
        connection.execute(
            f"create table raw_data.{table} as select * from "
            f"read_csv('{pattern}', header = true, columns = {{{types}}})"
        )
    loaded = time.perf_counter()
    connection.execute(LECTURE_MODELS.read_text())
    finished = time.perf_counter()
    connection.close()
    print(json.dumps({"load_seconds": loaded - started, "sql_seconds": finished - loaded}))


if __name__ == "__main__":
    main()
