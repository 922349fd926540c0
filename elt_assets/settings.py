"""Where things live: the project's folders and the environment variables that move them."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = Path(os.environ.get("ELT_SQL_DIR", PROJECT_ROOT / "sql"))
SEEDS_LANDING_DIR = PROJECT_ROOT / "seeds" / "landing"

# The shipped sample data starts here; partitions start here unless ELT_START_DATE says otherwise.
SAMPLE_FIRST_DAY = date(2023, 6, 1)
SAMPLE_LAST_DAY = date(2023, 6, 14)

RAW_TABLES = ("user_event", "user_variant", "user_metadata")


def start_date() -> date:
    """The first daily partition: ELT_START_DATE (YYYY-MM-DD), else the sample's first day."""
    value = os.environ.get("ELT_START_DATE", "").strip()
    if not value:
        return SAMPLE_FIRST_DAY
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"ELT_START_DATE={value!r} is not a date in YYYY-MM-DD form") from error


def landing_dir() -> str:
    """The landing zone root: ELT_LANDING_DIR, else data/landing in the project."""
    return os.environ.get("ELT_LANDING_DIR") or str(PROJECT_ROOT / "data" / "landing")


def default_warehouse_url() -> str:
    """The embedded default warehouse: a DuckDB file under data/ in the project."""
    return f"duckdb:///{PROJECT_ROOT / 'data' / 'warehouse.duckdb'}"
