"""The floor: one fresh DuckDB connection bulk-loads the landing files and runs the
lecture's SQL by hand. Prints the load and SQL seconds as JSON."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb

RAW_TABLES = {
    "user_event": "{'user_id': 'INTEGER', 'datestamp': 'TIMESTAMP', 'item_id': 'INTEGER', "
    "'clicked': 'INTEGER', 'purchased': 'INTEGER', 'paidamount': 'INTEGER'}",
    "user_variant": "{'user_id': 'INTEGER', 'variant_id': 'VARCHAR'}",
    "user_metadata": "{'user_id': 'INTEGER', 'age': 'VARCHAR', 'gender': 'VARCHAR', "
    "'updated_at': 'TIMESTAMP'}",
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
        connection.execute(
            f"create table raw_data.{table} as select * from "
            f"read_csv('{pattern}', header = true, columns = {columns})"
        )
    loaded = time.perf_counter()
    connection.execute((Path(__file__).parent / "lecture_models.sql").read_text())
    finished = time.perf_counter()
    connection.close()
    print(json.dumps({"load_seconds": loaded - started, "sql_seconds": finished - loaded}))


if __name__ == "__main__":
    main()
