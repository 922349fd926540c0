"""Every setting of the project: its folders, and each `ELT_*` environment variable, read here
and nowhere else. Each function reads the environment when called, so a test or a command
that sets a variable sees it take effect; a bad value fails with the variable's name."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A source checkout (an editable install) reads sql/, seeds/ and dagster.yaml at the top of
# the repository. An installed wheel has no repository around it (PROJECT_ROOT is then
# site-packages): it reads the copies setup.py bundles into the package at build time.
SOURCE_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "sql").is_dir()
BUNDLED_DIR = Path(__file__).resolve().parent / "_bundled"
_SOURCES = PROJECT_ROOT if SOURCE_CHECKOUT else BUNDLED_DIR
SQL_DIR = Path(os.environ.get("ELT_SQL_DIR", _SOURCES / "sql"))
SEEDS_LANDING_DIR = _SOURCES / "seeds" / "landing"
# The production instance's settings; the local instance of `elt-assets quickstart` takes its run queue.
INSTANCE_YAML = _SOURCES / "dagster.yaml"

# The shipped sample data starts here; partitions start here unless ELT_START_DATE says otherwise.
SAMPLE_FIRST_DAY = date(2023, 6, 1)
SAMPLE_LAST_DAY = date(2023, 6, 14)

RAW_TABLES = ("user_event", "user_variant", "user_metadata")

WAREHOUSE_URL_ENV = "ELT_WAREHOUSE_URL"
WAREHOUSE_SECRET_ENV = "ELT_WAREHOUSE_SECRET_ID"
INSTANCE_SECRET_ENV = "ELT_DAGSTER_PG_SECRET_ID"
LANDING_DIR_ENV = "ELT_LANDING_DIR"
FRESHNESS_LAG_ENV = "ELT_FRESHNESS_LAG_HOURS"


def _text(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _number(name: str, default: float, minimum: float, whole: bool = False) -> float:
    value = _text(name)
    if not value:
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError as error:
        raise ValueError(f"{name}={value!r} is not a {'whole ' if whole else ''}number") from error
    if number < minimum:
        raise ValueError(f"{name}={number} is below the minimum of {minimum}")
    return number


# ---------------------------------------------------------------- partitions and places


def workspace_root() -> Path:
    """Where local files go by default (data/landing, data/warehouse.duckdb, .elt_cache,
    .dagster_home): the source checkout, else the working directory, never site-packages."""
    return PROJECT_ROOT if SOURCE_CHECKOUT else Path.cwd()


def start_date_setting() -> str:
    """ELT_START_DATE as set (may be empty): whether the first partition is pinned."""
    return _text("ELT_START_DATE")


def start_date() -> date:
    """The first daily partition: ELT_START_DATE (YYYY-MM-DD), else the sample's first day."""
    value = _text("ELT_START_DATE")
    if not value:
        return SAMPLE_FIRST_DAY
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"ELT_START_DATE={value!r} is not a date in YYYY-MM-DD form") from error


def landing_dir_setting() -> str:
    """ELT_LANDING_DIR as set (may be empty)."""
    return _text(LANDING_DIR_ENV)


def landing_dir() -> str:
    """The landing zone root: ELT_LANDING_DIR, else data/landing in the workspace."""
    return landing_dir_setting() or str(workspace_root() / "data" / "landing")


def cache_dir() -> Path:
    """Where values computed from the SQL (column lineage) are kept: ELT_CACHE_DIR, else
    .elt_cache in the workspace."""
    return Path(_text("ELT_CACHE_DIR") or workspace_root() / ".elt_cache")


# ---------------------------------------------------------------- the warehouse


def default_warehouse_url() -> str:
    """The embedded default warehouse: a DuckDB file under data/ in the workspace."""
    return f"duckdb:///{workspace_root() / 'data' / 'warehouse.duckdb'}"


def warehouse_url_setting() -> str:
    """ELT_WAREHOUSE_URL as set (may be empty). The URL itself comes from resolve_warehouse_url."""
    return _text(WAREHOUSE_URL_ENV)


def warehouse_secret_id() -> str:
    """ELT_WAREHOUSE_SECRET_ID: a Secrets Manager secret holding the warehouse URL or its password."""
    return _text(WAREHOUSE_SECRET_ENV)


def duckdb_memory_limit() -> str:
    """DuckDB's memory cap per connection, beyond which it spills: ELT_DUCKDB_MEMORY_LIMIT, 1GB."""
    value = _text("ELT_DUCKDB_MEMORY_LIMIT", "1GB")
    if not re.fullmatch(r"[0-9.]+\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)", value, re.IGNORECASE):
        raise ValueError(f"ELT_DUCKDB_MEMORY_LIMIT={value!r} is not a size such as 512MB or 2GB")
    return value


def postgres_work_mem() -> str:
    """work_mem of the warehouse sessions on PostgreSQL: ELT_POSTGRES_WORK_MEM, 256MB."""
    value = _text("ELT_POSTGRES_WORK_MEM", "256MB")
    if not re.fullmatch(r"[0-9]+(kB|MB|GB)", value):
        raise ValueError(f"ELT_POSTGRES_WORK_MEM={value!r} is not a size such as 64MB or 1GB")
    return value


def allow_vanished_files() -> bool:
    """ELT_ALLOW_VANISHED_FILES (1, true or yes): reloading a raw day replaces rows of
    landing files that are gone, instead of refusing (elt_assets.landing.raw_load)."""
    return _text("ELT_ALLOW_VANISHED_FILES").lower() in ("1", "true", "yes")


def build_order_mode() -> str:
    """ELT_BUILD_ORDER: `enforce` (the default) fails a window of a depends-on-past model
    whose earlier days are not built; `warn` logs it and builds (elt_assets.models.build_log)."""
    value = _text("ELT_BUILD_ORDER", "enforce").lower()
    if value not in ("enforce", "warn"):
        raise ValueError(f"ELT_BUILD_ORDER={value!r} is not one of enforce, warn")
    return value


SPARK_TABLE_FORMATS = ("parquet", "delta", "iceberg")


def spark_table_format() -> str:
    """The Spark warehouse's table format: ELT_SPARK_TABLE_FORMAT, parquet. delta and
    iceberg need their jars on the cluster; they are compiled by the tests, never run."""
    value = _text("ELT_SPARK_TABLE_FORMAT", "parquet").lower()
    if value not in SPARK_TABLE_FORMATS:
        raise ValueError(f"ELT_SPARK_TABLE_FORMAT={value!r} is not one of {', '.join(SPARK_TABLE_FORMATS)}")
    return value


# ---------------------------------------------------------------- AWS endpoints


def s3_endpoint_url() -> str:
    return _text("ELT_S3_ENDPOINT_URL")


def s3_region() -> str:
    return _text("ELT_S3_REGION")


def secrets_endpoint_url() -> str:
    return _text("ELT_SECRETS_ENDPOINT_URL")


def secrets_region() -> str:
    return _text("ELT_SECRETS_REGION")


# ---------------------------------------------------------------- freshness and the sensor


def freshness_lag() -> timedelta:
    """How old the newest day's end may be before a warning: ELT_FRESHNESS_LAG_HOURS, 36."""
    hours = _number(FRESHNESS_LAG_ENV, 36.0, 0.0)
    if hours <= 0:
        raise ValueError(f"{FRESHNESS_LAG_ENV} must be positive, not {hours}")
    return timedelta(hours=hours)


def landing_sensor_interval_seconds() -> int:
    """Seconds between two looks at the landing zone: ELT_LANDING_SENSOR_INTERVAL_SECONDS, 60."""
    return int(_number("ELT_LANDING_SENSOR_INTERVAL_SECONDS", 60, 1, whole=True))


def landing_sensor_max_runs() -> int:
    """Runs one sensor tick may request at most: ELT_LANDING_SENSOR_MAX_RUNS, 3."""
    return int(_number("ELT_LANDING_SENSOR_MAX_RUNS", 3, 1, whole=True))


def landing_sensor_starts_running() -> bool:
    """Whether the landing sensor runs without being turned on: ELT_LANDING_SENSOR_DEFAULT_STATUS."""
    value = _text("ELT_LANDING_SENSOR_DEFAULT_STATUS", "stopped").lower()
    if value not in ("running", "stopped"):
        raise ValueError(f"ELT_LANDING_SENSOR_DEFAULT_STATUS={value!r} is neither 'running' nor 'stopped'")
    return value == "running"


# ---------------------------------------------------------------- operations


def heartbeat_max_age_seconds() -> float:
    """Oldest acceptable daemon heartbeat: ELT_DAEMON_HEARTBEAT_MAX_AGE_SECONDS, 120.

    Daemons beat every 30 s; 120 s tolerates a slow iteration, not a dead process.
    """
    return _number("ELT_DAEMON_HEARTBEAT_MAX_AGE_SECONDS", 120.0, 1.0)


def backup_destination_setting() -> str:
    """ELT_BACKUP_DESTINATION as set: a folder or s3://bucket/prefix (empty: $DAGSTER_HOME/backups)."""
    return _text("ELT_BACKUP_DESTINATION")


def pg_bin_dir_setting() -> str:
    """ELT_PG_BIN_DIR as set: where pg_dump and pg_restore are (empty: the newest installed)."""
    return _text("ELT_PG_BIN_DIR")


def alert_webhook_url() -> str:
    """ELT_ALERT_WEBHOOK_URL: where failed-run alerts are POSTed (empty: log only)."""
    return _text("ELT_ALERT_WEBHOOK_URL")
