"""Spark helpers for the benchmark: the server's memory, its databases, and the comparison.

The harness either starts its own Spark Connect server per history (with the project's
elt_assets.engines.spark_server, in a fresh folder, so each history starts from an empty
catalog) or is given the URL of an existing one whose databases raw_data, staging, core
and analytics it may drop. The server is not in the dagster processes' tree, so its
memory is read from /proc: the JVM's VmHWM (peak resident set), reset before each step
through /proc/PID/clear_refs so that the figure is the step's own peak.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import postgres_support as pg  # bench/ is on sys.path when run as a script

# pyspark's client warns on import that it does not fully support this pandas: not ours to fix.
warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")

# The databases the project's models live in: what a history on an existing server drops.
SPARK_DATABASES = ("raw_data", "staging", "core", "analytics", "meta")


# --- the server's memory ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid:
            found.append(int(entry))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def java_pid(root: Path) -> int | None:
    """The JVM of the server kept in `root`: the pid in ROOT/server.pid (spark-submit execs
    java, so it is the JVM itself), or else the first java process below it."""
    try:
        pid = int((Path(root) / "server.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    frontier = [pid]
    while frontier:
        current = frontier.pop(0)
        if _comm(current) == "java":
            return current
        frontier.extend(_children(current))
    return None


class ServerMemory:
    """The peak resident memory of one JVM, step by step."""

    def __init__(self, pid: int):
        self.pid = pid
        self.resets = True  # False once a reset failed: the peaks are then since the server started

    def reset(self) -> None:
        """Start a new peak at the JVM's current resident set (Linux 4.0+: clear_refs 5)."""
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            self.resets = False

    def peak_mb(self) -> float | None:
        """VmHWM of the JVM in MiB, or None when it is gone."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            return None
        return None


# --- the server's databases ---------------------------------------------------------------


def _engine(url: str):
    from elt_assets.engines import engine_for_url

    return engine_for_url(url)


def _close(engine) -> None:
    """End the engine's Connect session: the next engine (another server) must not reuse it
    (pyspark's getOrCreate returns the default session whatever the URL)."""
    spark = getattr(engine, "_spark", None)
    if spark is not None:
        spark.stop()


def drop_databases(url: str, names: tuple[str, ...] = SPARK_DATABASES) -> None:
    """Drop the project's databases on a server, with their tables."""
    engine = _engine(url)
    try:
        with engine.transaction() as session:
            for name in names:
                session.execute(f"drop database if exists `{name}` cascade", native=True).all()
    finally:
        _close(engine)


def server_version(url: str) -> str:
    engine = _engine(url)
    try:
        return engine.spark.version
    finally:
        _close(engine)


# --- comparison ---------------------------------------------------------------------------


def _spark_value(value: object) -> object:
    """A value read from Spark as the floor's DuckDB gives it: pyspark turns a timestamp into
    a naive datetime in this process's local time; DuckDB's TIMESTAMP is naive UTC."""
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.astimezone(timezone.utc)
    return pg.normalise(value)


def read_spark_rows(url: str, table: str, columns: tuple[str, ...] = pg.ANALYTICS_COLUMNS) -> Counter:
    """schema.table on a Spark server, read with the project's engine, as a multiset."""
    engine = _engine(url)
    rows: Counter = Counter()
    try:
        with engine.transaction(read_only=True) as session:
            for row in session.execute(f"select {', '.join(columns)} from {table}").all():
                rows[tuple(_spark_value(value) for value in row)] += 1
    finally:
        _close(engine)
    return rows


def read_duckdb_rows(path: Path, table: str, columns: tuple[str, ...] = pg.ANALYTICS_COLUMNS) -> Counter:
    """schema.table in a DuckDB file as a multiset of normalised tuples."""
    rows: Counter = Counter()
    with duckdb.connect(str(path), read_only=True) as connection:
        for row in connection.execute(f"select {', '.join(columns)} from {table}").fetchall():
            rows[tuple(pg.normalise(value) for value in row)] += 1
    return rows


def compare_with_floor(url: str, floor: Path, table: str) -> pg.Comparison:
    """The Spark table (left) against the DuckDB floor's (right), row for row, as multisets."""
    left, right = read_spark_rows(url, table), read_duckdb_rows(floor, table)
    return pg.Comparison(
        rows_left=sum(left.values()),
        rows_right=sum(right.values()),
        only_left=sum((left - right).values()),
        only_right=sum((right - left).values()),
    )
