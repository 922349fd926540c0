"""Which runs bring the warehouse up to date with the landing zone: a pure function of what
has landed now and what had landed when runs were last requested.

A (table, day) is summed up by a digest of its ready files' names and fingerprints, so a
new part file, a rewritten file or a removed part changes it, and nothing else does.

- A changed day is loaded: its changed raw tables (all of them on a day seen for the first
  time, so that a day without a change set loads as empty) and their downstream models.
- A day waits while `user_event` has not landed for it: its models would otherwise be
  built from a raw partition that was never loaded.
- `dim_user` and the analytics of day D read the dimensions of every day up to D, so a
  change set landing for an old day D also rebuilds, for every later day already loaded,
  the models downstream of that change set (raw is not reloaded for those days).
- Consecutive days that need the same work become one range, run as one single-run
  backfill; if a tick would still need more than `max_runs` runs, neighbouring ranges are
  merged (reloading raw for the days they absorb, which is idempotent).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from elt_assets.landing.zone import LandingFile, LandingZone
from elt_assets.landing.raw_load import TABLES_REQUIRED_EVERY_DAY
from elt_assets.settings import RAW_TABLES

CHANGE_SET_TABLES = tuple(table for table in RAW_TABLES if table not in TABLES_REQUIRED_EVERY_DAY)

# table -> day -> digest of the day's ready files
Digests = dict[str, dict[date, str]]
Trigger = tuple[str, date, str]


def files_digest(files: Iterable[LandingFile]) -> str:
    """A short digest of a day's ready files: their table-relative names and fingerprints."""
    lines = sorted(f"{landing_file.name}\t{landing_file.fingerprint}" for landing_file in files)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:12]


def landed_digests(zone: LandingZone, tables: Iterable[str] = RAW_TABLES) -> Digests:
    """The digest of every (table, day) that has ready files, one listing per table."""
    return {
        table: {day: files_digest(files) for day, files in zone.files_by_day(table).items()}
        for table in tables
    }


@dataclass(frozen=True)
class LoadRun:
    """One run: raw tables reloaded and downstream models rebuilt for the days first..last."""

    first: date
    last: date
    raw_tables: frozenset[str]
    rebuilt_after: frozenset[str]
    triggers: tuple[Trigger, ...] = ()

    @property
    def run_key(self) -> str:
        """Names the range and hashes the work and the fingerprints that caused it, so the
        same landing state always maps to the same key (and Dagster launches it once)."""
        payload = json.dumps(
            [
                self.first.isoformat(),
                self.last.isoformat(),
                sorted(self.raw_tables),
                sorted(self.rebuilt_after),
                [[table, day.isoformat(), digest] for table, day, digest in self.triggers],
            ]
        )
        return f"landing:{self.first}..{self.last}:{hashlib.sha256(payload.encode()).hexdigest()[:16]}"

    @property
    def summary(self) -> str:
        parts = []
        if self.raw_tables:
            parts.append(f"load {', '.join(sorted(self.raw_tables))}")
        if self.rebuilt_after - self.raw_tables:
            parts.append(f"rebuild after late {', '.join(sorted(self.rebuilt_after - self.raw_tables))}")
        return f"{self.first}..{self.last}: {'; '.join(parts)}"


@dataclass
class LoadPlan:
    """The runs to request, in the order they must run, the cursor state after them, and
    a note for everything that waits or is left out."""

    runs: list[LoadRun]
    seen: Digests
    notes: list[str] = field(default_factory=list)


def plan_loads(
    landed: Digests,
    seen: Digests,
    *,
    first_day: date,
    last_day: date,
    failed_loads: Callable[[list[date]], set[date]] = lambda days: set(),
    max_runs: int = 3,
) -> LoadPlan:
    """Compare what has landed with what had been seen and plan the runs that catch up.

    `first_day`..`last_day` are the partitions that exist; `failed_loads` tells which of the
    given days' last `user_event` load failed (they are not rebuilt on top of).
    """
    notes: list[str] = []
    new_seen = {table: dict(days) for table, days in seen.items()}
    changed: dict[date, dict[str, str]] = {}
    for table in RAW_TABLES:
        for day, digest in landed.get(table, {}).items():
            if seen.get(table, {}).get(day) != digest:
                changed.setdefault(day, {})[table] = digest

    loads: dict[date, frozenset[str]] = {}
    for day in sorted(changed):
        tables = sorted(changed[day])
        if day < first_day:
            notes.append(f"{day}: {', '.join(tables)} ignored: before the first partition {first_day}")
            continue
        if day > last_day:
            notes.append(f"{day}: {', '.join(tables)} waits: the day is not over (last full day {last_day})")
            continue
        missing = [table for table in TABLES_REQUIRED_EVERY_DAY if day not in landed.get(table, {})]
        if missing:
            notes.append(
                f"{day}: {', '.join(tables)} waits for {', '.join(missing)}, which must land every "
                "day; nothing is built for the day until it has"
            )
            continue
        first_time = any(day not in seen.get(table, {}) for table in TABLES_REQUIRED_EVERY_DAY)
        loads[day] = frozenset(RAW_TABLES) if first_time else frozenset(tables)
        for table, digest in changed[day].items():
            new_seen.setdefault(table, {})[day] = digest
    if not loads:
        return LoadPlan([], new_seen, notes)

    late_change_sets = {
        day: frozenset(table for table in changed[day] if table in CHANGE_SET_TABLES) for day in loads
    }

    def change_sets_before(day: date) -> frozenset[str]:
        return frozenset().union(*(tables for when, tables in late_change_sets.items() if when < day))

    known = {
        day for day in seen.get(TABLES_REQUIRED_EVERY_DAY[0], {}) if first_day <= day <= last_day
    }
    earlier = sorted(known - set(loads))
    failed = failed_loads(earlier) if earlier else set()
    work: dict[date, tuple[frozenset[str], frozenset[str]]] = {
        day: (tables, tables | change_sets_before(day)) for day, tables in loads.items()
    }
    for day in earlier:
        after = change_sets_before(day)
        if not after:
            continue
        if day in failed:
            notes.append(f"{day}: not rebuilt after late {', '.join(sorted(after))}: its last load failed")
            continue
        work[day] = (frozenset(), after)

    # Days whose raw partitions hold their landing files: ranges may absorb them.
    reloadable = {
        day for day in known if day not in failed and day in landed.get(TABLES_REQUIRED_EVERY_DAY[0], {})
    }
    runs = _bounded(_ranges(work), max_runs, reloadable | set(loads))
    triggers = sorted(
        (table, day, digest) for day in loads for table, digest in changed[day].items()
    )
    runs = [
        replace(run, triggers=tuple(trigger for trigger in triggers if trigger[1] <= run.last))
        for run in runs
    ]
    if len(runs) > max_runs:
        notes.append(
            f"{len(runs)} runs needed (more than {max_runs}): the ranges are separated by days "
            "that cannot be reloaded"
        )
    return LoadPlan(runs, new_seen, notes)


def _ranges(work: dict[date, tuple[frozenset[str], frozenset[str]]]) -> list[LoadRun]:
    """Consecutive days with the same work, as ranges, in date order."""
    runs: list[LoadRun] = []
    for day in sorted(work):
        raw, rebuilt = work[day]
        previous = runs[-1] if runs else None
        if (
            previous is not None
            and previous.last + timedelta(days=1) == day
            and (previous.raw_tables, previous.rebuilt_after) == (raw, rebuilt)
        ):
            runs[-1] = replace(previous, last=day)
        else:
            runs.append(LoadRun(day, day, raw, rebuilt))
    return runs


def _bounded(runs: list[LoadRun], max_runs: int, reloadable: set[date]) -> list[LoadRun]:
    """Merge neighbouring ranges, the shortest merge first, until at most max_runs remain.

    Two ranges can merge only if every day between them can be reloaded; the merged run
    does the work of both over its whole range.
    """
    runs = list(runs)
    while len(runs) > max_runs:
        best: tuple[int, int] | None = None
        for index in range(len(runs) - 1):
            left, right = runs[index], runs[index + 1]
            gap = [left.last + timedelta(days=offset) for offset in range(1, (right.first - left.last).days)]
            if all(day in reloadable for day in gap):
                span = (right.last - left.first).days
                if best is None or span < best[0]:
                    best = (span, index)
        if best is None:
            break
        left, right = runs[best[1]], runs[best[1] + 1]
        runs[best[1] : best[1] + 2] = [
            LoadRun(
                left.first,
                right.last,
                left.raw_tables | right.raw_tables,
                left.rebuilt_after | right.rebuilt_after,
            )
        ]
    return runs
