"""The landing zone: where raw files arrive, and which of them are ready to load.

Layout (the public contract): `<root>/<table>/<YYYY-MM-DD>.csv`, or a folder
`<root>/<table>/<YYYY-MM-DD>/` of part files (`*.csv`, `*.parquet`). The date in the name
is the partition. Files whose names start with `.` or `_`, or end in `.tmp`, are not
ready: writers create a file under such a name and rename it when it is complete.

The root is a local folder or `s3://bucket/prefix`. An S3 object only becomes visible
once its upload has completed, so S3 has no half-written files; the naming rule still
applies there (markers such as `_SUCCESS` are skipped). DuckDB reads local files only,
so S3 files are downloaded into a temporary folder before they are loaded (`localize`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

LANDING_SUFFIXES = (".csv", ".parquet")
_DAY_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})(\.csv|\.parquet)?$")


class LandingError(ValueError):
    """A landing file, or a day's set of them, cannot be loaded; the message says where."""


@dataclass(frozen=True)
class LandingFile:
    """One ready file of the landing zone.

    `path` names the file where it landed (a local path or an s3:// URL) and is what the
    raw tables and error messages show; `local_path` is where it can be read from.
    """

    table: str
    day: date
    path: str
    size: int
    modified: float
    etag: str | None = None
    local_copy: str | None = None

    @property
    def format(self) -> str:
        return "parquet" if self.path.endswith(".parquet") else "csv"

    @property
    def fingerprint(self) -> str:
        """What changes when the file is rewritten: the ETag on S3, else size and mtime."""
        if self.etag:
            return f"{self.size}-{self.etag}"
        return f"{self.size}-{int(self.modified * 1_000_000)}"

    @property
    def local_path(self) -> str:
        return self.local_copy or self.path

    @property
    def name(self) -> str:
        """The file's name relative to its table's folder: `2023-06-01.csv` or `2023-06-01/part.csv`."""
        return self.path.rsplit(f"/{self.table}/", 1)[-1]


def is_ready(name: str) -> bool:
    """Whether a file name is a finished landing file (not hidden, temporary or a marker)."""
    return not (name.startswith((".", "_")) or name.endswith(".tmp"))


def parse_landing_name(name: str) -> tuple[date, bool] | None:
    """The day a table-relative name lands for, and whether it is a ready file of that day.

    `2023-06-01.csv` and `2023-06-01/part-0.parquet` are ready files of 2023-06-01;
    `2023-06-01/.part-0.csv.tmp` belongs to the day but is not ready; anything else
    (other names, deeper folders, other suffixes) is None.
    """
    head, _, part = name.partition("/")
    match = _DAY_NAME.match(head)
    if not match or "/" in part or bool(part) == bool(match.group(2)):
        return None
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:
        return None
    if not part:
        return day, True
    return day, is_ready(part) and PurePosixPath(part).suffix in LANDING_SUFFIXES


class LandingZone(ABC):
    """Where one landing zone's files are listed, and read from."""

    root: str

    @abstractmethod
    def files_by_day(self, table: str) -> dict[date, list[LandingFile]]:
        """Every ready file of the table, by day, listed at once (single file first, parts by name)."""

    def files_for_day(self, table: str, day: date) -> list[LandingFile]:
        """The ready files of one table and day, the single file first, parts in name order."""
        return self.files_by_day(table).get(day, [])

    @abstractmethod
    def days(self, table: str) -> list[date]:
        """Every day that has a ready file or a day folder for the table, sorted."""

    def localize(self, files: list[LandingFile]) -> list[LandingFile]:
        """The files with a local copy to read from (local files are their own copy)."""
        return files

    def close(self) -> None:  # noqa: B027 - a zone without local copies has nothing to remove
        """Remove whatever local copies this zone made."""

    def __enter__(self) -> LandingZone:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __str__(self) -> str:
        return self.root


class LocalLandingZone(LandingZone):
    """A landing zone in a local folder."""

    def __init__(self, root: str | Path):
        self.root = str(root)

    def files_for_day(self, table: str, day: date) -> list[LandingFile]:
        table_dir = Path(self.root) / table
        stem = day.isoformat()
        found = [table_dir / f"{stem}{suffix}" for suffix in LANDING_SUFFIXES]
        found = [path for path in found if path.is_file()]
        day_dir = table_dir / stem
        if day_dir.is_dir():
            found.extend(sorted(path for path in day_dir.iterdir() if path.is_file()))
        return [
            _describe(table, day, path)
            for path in found
            if (parsed := parse_landing_name(path.relative_to(table_dir).as_posix())) and parsed[1]
        ]

    def files_by_day(self, table: str) -> dict[date, list[LandingFile]]:
        by_day = {day: self.files_for_day(table, day) for day in self.days(table)}
        return {day: files for day, files in by_day.items() if files}

    def days(self, table: str) -> list[date]:
        table_dir = Path(self.root) / table
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


class S3LandingZone(LandingZone):
    """A landing zone under `s3://bucket/prefix`, listed and downloaded with a boto3 S3 client."""

    def __init__(self, root: str, client_factory: Callable[[], Any], endpoint: str | None = None):
        if not root.startswith("s3://") or not root[len("s3://") :].strip("/"):
            raise LandingError(f"landing root {root!r} is not of the form s3://bucket[/prefix]")
        self.root = root.rstrip("/")
        self.bucket, _, prefix = self.root[len("s3://") :].partition("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self._client_factory = client_factory
        self._client: Any = None
        # Only the endpoint goes into messages: it names the server, never a credential.
        self._endpoint = endpoint or "the default AWS endpoint"
        self._download_dir: str | None = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def files_by_day(self, table: str) -> dict[date, list[LandingFile]]:
        return self._files(table, f"{self.prefix}{table}/")

    def files_for_day(self, table: str, day: date) -> list[LandingFile]:
        return self._files(table, f"{self.prefix}{table}/{day.isoformat()}").get(day, [])

    def days(self, table: str) -> list[date]:
        table_prefix = f"{self.prefix}{table}/"
        names = (item["Key"][len(table_prefix) :] for item in self._list(table_prefix))
        return sorted({parsed[0] for name in names if (parsed := parse_landing_name(name))})

    def localize(self, files: list[LandingFile]) -> list[LandingFile]:
        if self._download_dir is None:
            self._download_dir = tempfile.mkdtemp(prefix="elt-landing-")
        localized = []
        for landing_file in files:
            target = Path(self._download_dir) / landing_file.table / landing_file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            key = landing_file.path[len(f"s3://{self.bucket}/") :]
            download = self.client.download_file
            self._call(f"download {landing_file.path}", download, self.bucket, key, str(target))
            localized.append(replace(landing_file, local_copy=str(target)))
        return localized

    def close(self) -> None:
        if self._download_dir is not None:
            shutil.rmtree(self._download_dir, ignore_errors=True)
            self._download_dir = None

    def _files(self, table: str, key_prefix: str) -> dict[date, list[LandingFile]]:
        table_prefix = f"{self.prefix}{table}/"
        by_day: dict[date, list[LandingFile]] = {}
        # S3 lists keys in byte order: `2023-06-01.csv` sorts before `2023-06-01/...`, so
        # the single file comes first and parts follow by name, as in a local folder.
        for item in self._list(key_prefix):
            parsed = parse_landing_name(item["Key"][len(table_prefix) :])
            if parsed and parsed[1]:
                by_day.setdefault(parsed[0], []).append(
                    LandingFile(
                        table=table,
                        day=parsed[0],
                        path=f"s3://{self.bucket}/{item['Key']}",
                        size=int(item["Size"]),
                        modified=item["LastModified"].timestamp(),
                        etag=str(item.get("ETag", "")).strip('"') or None,
                    )
                )
        return by_day

    def _list(self, key_prefix: str) -> Iterable[dict[str, Any]]:
        def list_all() -> list[dict[str, Any]]:
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=key_prefix)
            return [item for page in pages for item in page.get("Contents", [])]

        return self._call(f"list s3://{self.bucket}/{key_prefix}", list_all)

    def _call(self, action: str, function: Callable[..., Any], *args: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return function(*args)
        except ClientError as error:
            details = error.response.get("Error", {})
            reason = f"{details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
            raise LandingError(f"cannot {action} at {self._endpoint}: {reason}") from error
        except BotoCoreError as error:
            raise LandingError(f"cannot {action} at {self._endpoint}: {error}") from error


def as_landing_zone(root: str | Path | LandingZone) -> LandingZone:
    """The zone itself, or a local zone for a folder; S3 roots need the resource's client."""
    if isinstance(root, LandingZone):
        return root
    if str(root).startswith("s3://"):
        raise LandingError(
            f"landing root {root} is on S3: open it through the landing_zone resource, "
            "which holds the S3 client"
        )
    return LocalLandingZone(root)


def landing_files_for_day(root: str | Path | LandingZone, table: str, day: date) -> list[LandingFile]:
    """The ready files of one table and day, the single file first, parts in name order."""
    return as_landing_zone(root).files_for_day(table, day)


def landing_days(root: str | Path | LandingZone, table: str) -> list[date]:
    """Every day that has a ready file or a day folder for the table, sorted."""
    return as_landing_zone(root).days(table)


def _describe(table: str, day: date, path: Path) -> LandingFile:
    stat = path.stat()
    return LandingFile(table=table, day=day, path=str(path), size=stat.st_size, modified=stat.st_mtime)
