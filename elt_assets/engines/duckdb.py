"""DuckDB, the embedded default: one file, one writing process at a time."""

from __future__ import annotations

import logging
import time
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from elt_assets import settings
from elt_assets.engines.base import WarehouseError, first_line, window_filter
from elt_assets.engines.sql import SqlEngine, SqlSession

_LOCK_MESSAGE = "Could not set lock on file"
log = logging.getLogger(__name__)


class DuckDBEngine(SqlEngine):
    """A DuckDB file (or `:memory:`). DuckDB keeps its statistics as it writes and skips
    other days by its per-row-group min/max, so tables need no index and no ANALYZE."""

    name = "duckdb"
    kind = "duckdb"
    load_description = "read the files with DuckDB's CSV and Parquet readers straight into the raw table"

    @property
    def path(self) -> str | None:
        """The database file, or None for an in-memory database."""
        database = sa.make_url(self.url).database
        return None if database in (None, "", ":memory:") else database

    def exists(self) -> bool:
        return self.path is None or Path(self.path).exists()

    def connect_args(self) -> dict[str, Any]:
        if self.path:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # Insertion order is not kept: no model depends on the physical order of rows, and
        # keeping it makes large inserts hold more in memory.
        return {"config": {"memory_limit": settings.duckdb_memory_limit(), "preserve_insertion_order": "false"}}

    def connect(self) -> Connection:
        # Another process (a run, a sensor, a notebook) may hold DuckDB's file lock for a
        # moment; wait for it rather than failing the run, and say so at once, since the
        # wait may last lock_timeout_seconds (10 minutes by default).
        started = time.monotonic()
        deadline = started + self.lock_timeout_seconds
        pause = 0.1
        waiting = False
        while True:
            try:
                connection = self.sqlalchemy_engine.connect()
            except sa.exc.DBAPIError as error:
                if _LOCK_MESSAGE in str(error) and time.monotonic() < deadline:
                    if not waiting:
                        waiting = True
                        # The file, not the URL (which may carry a token); DuckDB's message
                        # names the process holding the lock.
                        log.warning(
                            "waiting up to %.0f s for the lock on the DuckDB file %s: %s",
                            self.lock_timeout_seconds, self.path, first_line(error),
                        )
                    time.sleep(pause)
                    pause = min(pause * 2, 2.0)
                    continue
                if waiting:
                    log.warning(
                        "gave up waiting for the lock on the DuckDB file %s after %.1f s",
                        self.path, time.monotonic() - started,
                    )
                raise WarehouseError(
                    f"cannot connect to the warehouse {self.display_url}: {first_line(error)}"
                ) from error
            if waiting:
                log.warning("got the lock on the DuckDB file %s after %.1f s", self.path, time.monotonic() - started)
            return connection

    def load_landing_files(self, session: SqlSession, model, files, first_day: date, end_day: date) -> int:
        """Refuse a window whose landing files vanished, then delete it and load the files
        straight into the raw table, checked, in the warehouse transaction."""
        from elt_assets.landing.raw_load import load_landing_files, window_columns

        columns, path_length = window_columns(self, session, model, files, first_day, end_day)
        session.execute(
            f"delete from {model.qualified_name} where {window_filter('partition_date')}",
            {"window_start": first_day, "window_end": end_day},
        )
        return load_landing_files(
            session,
            model.qualified_name,
            model.name,
            columns,
            files,
            first_day,
            end_day,
            path_length=path_length,
        )
