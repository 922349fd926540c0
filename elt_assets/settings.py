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


def _int_setting(name: str, default: int, minimum: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError as error:
        raise ValueError(f"{name}={value!r} is not a whole number") from error
    if number < minimum:
        raise ValueError(f"{name}={number} is below the minimum of {minimum}")
    return number


def landing_sensor_interval_seconds() -> int:
    """Seconds between two looks at the landing zone: ELT_LANDING_SENSOR_INTERVAL_SECONDS, else 60."""
    return _int_setting("ELT_LANDING_SENSOR_INTERVAL_SECONDS", 60, 1)


def landing_sensor_max_runs() -> int:
    """Runs one sensor tick may request at most: ELT_LANDING_SENSOR_MAX_RUNS, else 3."""
    return _int_setting("ELT_LANDING_SENSOR_MAX_RUNS", 3, 1)


def landing_sensor_starts_running() -> bool:
    """Whether the landing sensor runs without being turned on: ELT_LANDING_SENSOR_DEFAULT_STATUS."""
    value = os.environ.get("ELT_LANDING_SENSOR_DEFAULT_STATUS", "stopped").strip().lower()
    if value not in ("running", "stopped"):
        raise ValueError(f"ELT_LANDING_SENSOR_DEFAULT_STATUS={value!r} is neither 'running' nor 'stopped'")
    return value == "running"
