"""The landing zone: where raw files arrive, and which of them are ready to load.

Layout (the public contract): `<root>/<table>/<YYYY-MM-DD>.csv`, or a folder
`<root>/<table>/<YYYY-MM-DD>/` of part files (`*.csv`, `*.parquet`). The date in the name
is the partition. Files whose names start with `.` or `_`, or end in `.tmp`, are not
ready: writers create a file under such a name and rename it when it is complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

LANDING_SUFFIXES = (".csv", ".parquet")
_DAY_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.csv|\.parquet)?$")


class LandingError(ValueError):
    """A landing file, or a day's set of them, cannot be loaded; the message says where."""


@dataclass(frozen=True)
class LandingFile:
    """One ready file of the landing zone."""

    table: str
    day: date
    path: str
    size: int
    modified: float

    @property
    def format(self) -> str:
        return "parquet" if self.path.endswith(".parquet") else "csv"

    @property
    def fingerprint(self) -> str:
        return f"{self.size}-{int(self.modified * 1_000_000)}"


def is_ready(name: str) -> bool:
    """Whether a file name is a finished landing file (not hidden, temporary or a marker)."""
    return not (name.startswith((".", "_")) or name.endswith(".tmp"))


def landing_files_for_day(root: str | Path, table: str, day: date) -> list[LandingFile]:
    """The ready files of one table and day, the single file first, parts in name order."""
    table_dir = Path(root) / table
    stem = day.isoformat()
    found: list[Path] = []
    for suffix in LANDING_SUFFIXES:
        single = table_dir / f"{stem}{suffix}"
        if single.is_file():
            found.append(single)
    day_dir = table_dir / stem
    if day_dir.is_dir():
        found.extend(
            part
            for part in sorted(day_dir.iterdir())
            if part.is_file() and is_ready(part.name) and part.suffix in LANDING_SUFFIXES
        )
    return [_describe(table, day, path) for path in found]


def landing_days(root: str | Path, table: str) -> list[date]:
    """Every day that has a ready file or a day folder for the table, sorted."""
    table_dir = Path(root) / table
    if not table_dir.is_dir():
        return []
    days = set()
    for entry in table_dir.iterdir():
        match = _DAY_NAME.match(entry.name)
        if match and (entry.is_dir() or match.group(2)):
            try:
                days.add(date.fromisoformat(match.group(1)))
            except ValueError:
                continue
    return sorted(days)


def _describe(table: str, day: date, path: Path) -> LandingFile:
    stat = path.stat()
    return LandingFile(table=table, day=day, path=str(path), size=stat.st_size, modified=stat.st_mtime)
