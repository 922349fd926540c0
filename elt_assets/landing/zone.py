"""The landing zone: where raw files arrive, and which of them are ready to load.

Layout (the public contract): `<root>/<table>/<YYYY-MM-DD>.csv`, or a folder
`<root>/<table>/<YYYY-MM-DD>/` of part files (`*.csv`, `*.parquet`, suffixes in any case).
The date in the name is the partition. Files whose names start with `.` or `_`, or end in
`.tmp`, are not ready: writers create a file under such a name and rename it when it is
complete. Any other file of a day (another format, a subfolder, a link out of the root)
is listed with the reason it cannot be loaded, and its day's load fails naming it.

The root is a local folder or `s3://bucket/prefix`. An S3 object only becomes visible
once its upload has completed, so S3 has no half-written files; the naming rule still
applies there (markers such as `_SUCCESS` are skipped). DuckDB reads local files only,
so S3 files are downloaded into a temporary folder before they are loaded (`localize`).
"""

from __future__ import annotations

import os
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
_DATE = r"(\d{4}-\d{2}-\d{2})"
_DAY_FILE = re.compile(rf"^{_DATE}(\..*)?$")
_DAY_FOLDER = re.compile(rf"^{_DATE}$")

# What a name in a table's folder is to the load (see parse_landing_name).
READY = "ready"
NOT_READY = "not ready"
REFUSED = "refused"

_RENAME_HINT = "rename it to load it, or to a name that starts with '_' or '.' (or ends in .tmp) to leave it out"


class LandingError(ValueError):
    """A landing file, or a day's set of them, cannot be loaded; the message says where."""


@dataclass(frozen=True)
class LandingFile:
    """One file of a day in the landing zone.

    `path` names the file where it landed (a local path or an s3:// URL) and is what the
    raw tables and error messages show; `local_path` is where it can be read from.
    `refusal` says why a file that belongs to the day cannot be loaded (an unknown format,
    a symbolic link out of the landing root): such files are listed, so that the run
    that would otherwise skip them without a word fails instead (`refuse_unloadable`).
    """

    table: str
    day: date
    path: str
    size: int
    modified: float
    etag: str | None = None
    local_copy: str | None = None
    refusal: str | None = None

    @property
    def format(self) -> str:
        return "parquet" if self.path.lower().endswith(".parquet") else "csv"

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
        return table_relative_name(self.path, self.table)


def table_relative_name(path: str, table: str) -> str:
    """A landing path (or a raw row's source_file) relative to its table's folder, so
    that names compare across landing roots: `2023-06-01.csv`, `2023-06-01/part.csv`."""
    return path.rsplit(f"/{table}/", 1)[-1]


def is_ready(name: str) -> bool:
    """Whether a file name is a finished landing file (not hidden, temporary or a marker)."""
    return not (name.startswith((".", "_")) or name.lower().endswith(".tmp"))


def parse_landing_name(name: str) -> tuple[date, str, str | None] | None:
    """The day a table-relative name belongs to, what it is there, and why it is refused.

    READY: `2023-06-01.csv`, `2023-06-01/part-0.Parquet` (suffixes in any case).
    NOT_READY, skipped: hidden, temporary or marker names (`2023-06-01/_SUCCESS`,
    `2023-06-01/.part-0.csv.tmp`, `2023-06-01.csv.tmp`).
    REFUSED: any other file of the day (`2023-06-01/part-0.json`, `2023-06-01.txt`,
    `2023-06-01/sub/part.csv`), with the reason: a load of that day fails naming it
    rather than leave its rows out.
    None: not part of the layout (`notes.md`, a date that does not exist).
    """
    head, slash, part = name.partition("/")
    match = (_DAY_FOLDER if slash else _DAY_FILE).match(head)
    day = _day(match)
    if day is None or (slash and not part):
        return None
    parts = part.split("/") if slash else [head]
    if not all(is_ready(piece) for piece in parts):
        return day, NOT_READY, None
    if len(parts) > 1:
        return day, REFUSED, f"is in a folder inside {head}/: part files are read from {head}/ itself"
    if not slash:
        if (match.group(2) or "").lower() in LANDING_SUFFIXES:
            return day, READY, None
        return day, REFUSED, f"is named neither {head[:10]}.csv nor {head[:10]}.parquet: {_RENAME_HINT}"
    if PurePosixPath(part).suffix.lower() in LANDING_SUFFIXES:
        return day, READY, None
    return day, REFUSED, f"is neither CSV nor Parquet (*.csv, *.parquet, in any case): {_RENAME_HINT}"


def _day(match: re.Match[str] | None) -> date | None:
    """The date a day name matched, if it is one (2023-02-30 is not)."""
    try:
        return date.fromisoformat(match.group(1)) if match else None
    except ValueError:
        return None


def refuse_unloadable(files: Iterable[LandingFile]) -> None:
    """Raise LandingError at the first file of a day that cannot be loaded."""
    for landing_file in files:
        if landing_file.refusal:
            raise LandingError(f"landing file {landing_file.path} {landing_file.refusal}")


class LandingZone(ABC):
    """Where one landing zone's files are listed, and read from."""

    root: str

    @abstractmethod
    def files_by_day(self, table: str) -> dict[date, list[LandingFile]]:
        """Every ready (or refused) file of the table, by day, listed at once (single file
        first, parts by name)."""

    def files_for_day(self, table: str, day: date) -> list[LandingFile]:
        """The ready (or refused) files of one table and day, the single file first, parts
        in name order."""
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
        return self._files(table, day).get(day, [])

    def files_by_day(self, table: str) -> dict[date, list[LandingFile]]:
        return self._files(table)

    def days(self, table: str) -> list[date]:
        table_dir = Path(self.root) / table
        if not table_dir.is_dir():
            return []
        days = set()
        for entry in table_dir.iterdir():
            name = f"{entry.name}/" if entry.is_dir() else entry.name
            if entry.is_dir() and (day := _day(_DAY_FOLDER.match(entry.name))):
                days.add(day)
            elif (parsed := parse_landing_name(name)) and parsed[1] == READY:
                days.add(parsed[0])
        return sorted(days)

    def _files(self, table: str, only_day: date | None = None) -> dict[date, list[LandingFile]]:
        """The files of every day (or of one) in one pass over the table's folder."""
        table_dir = Path(self.root) / table
        if not table_dir.is_dir():
            return {}
        prefix = only_day.isoformat() if only_day else ""
        names = []
        for entry in sorted(table_dir.iterdir()):
            if not entry.name.startswith(prefix):
                continue
            if entry.is_dir() and _DAY_FOLDER.match(entry.name):
                names += [f"{entry.name}/{child.name}" for child in sorted(entry.iterdir())]
            elif entry.is_file():
                names.append(entry.name)
        # Resolved once: a file is read only if it resolves inside the root.
        root = os.path.realpath(self.root)
        by_day: dict[date, list[LandingFile]] = {}
        for name in sorted(names, key=lambda name: ("/" in name, name)):
            parsed = parse_landing_name(name)
            if not parsed or parsed[1] == NOT_READY:
                continue
            day, _, refusal = parsed
            path = table_dir / name
            if os.path.commonpath([root, os.path.realpath(path)]) != root:
                refusal = (
                    "is a symbolic link to a file outside the landing root "
                    f"{self.root}, which is never read: copy the file into the landing zone"
                )
            elif path.is_dir():
                refusal = f"is a folder inside {day}/: part files are read from {day}/ itself"
            elif not path.is_file():
                continue  # a dangling link: nothing there to load yet
            by_day.setdefault(day, []).append(_describe(table, day, path, refusal))
        return by_day


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
            if parsed and parsed[1] != NOT_READY:
                by_day.setdefault(parsed[0], []).append(
                    LandingFile(
                        table=table,
                        day=parsed[0],
                        path=f"s3://{self.bucket}/{item['Key']}",
                        size=int(item["Size"]),
                        modified=item["LastModified"].timestamp(),
                        etag=str(item.get("ETag", "")).strip('"') or None,
                        refusal=parsed[2],
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
    """The ready (or refused) files of one table and day, the single file first, parts in name order."""
    return as_landing_zone(root).files_for_day(table, day)


def landing_days(root: str | Path | LandingZone, table: str) -> list[date]:
    """Every day that has a ready file or a day folder for the table, sorted."""
    return as_landing_zone(root).days(table)


def _describe(table: str, day: date, path: Path, refusal: str | None = None) -> LandingFile:
    # lstat: a refused link is described, never followed.
    stat = path.lstat() if refusal else path.stat()
    return LandingFile(
        table=table, day=day, path=str(path), size=stat.st_size, modified=stat.st_mtime, refusal=refusal
    )
