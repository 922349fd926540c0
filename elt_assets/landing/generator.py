"""Synthetic landing files for the A/B-test raw tables.

The generator writes one file per table per day into a landing-zone root::

    <root>/<table>/<YYYY-MM-DD>.csv                     (fmt="csv")
    <root>/<table>/<YYYY-MM-DD>/part-0000.parquet       (fmt="parquet")

for the three raw tables, shaped like production logs rather than like a clean
experiment:

``user_event``
    ``user_id,datestamp,item_id,clicked,purchased,paidamount``; one row per
    impression: a user shown an item on the day, written every day and sorted
    by user then item.  ``clicked`` and ``purchased`` are 0 or 1, ``purchased``
    implies ``clicked`` and ``paidamount`` is positive exactly for purchases (0
    otherwise).  ``datestamp`` is the file's day, except on a few rows that carry
    an empty (NULL) one on purpose.  As in real logs, an item is now and then
    shown twice to a user on a day: a few percent of the rows (``repeat_share``)
    repeat an earlier row's user, day and item, with their own independent
    click/purchase outcome, right after it.  Some events come from users who
    were never assigned a variant (``unassigned_user_share``): their ids follow
    the assigned population (``users + 1, users + 2, ...``), they never appear
    in ``user_variant`` or ``user_metadata``, they show up on most days like any
    other user and they click at the control rate.
``user_variant``
    ``user_id,variant_id``; a change set of the assignments made that day.  The
    first day holds the initial users; late users are assigned on a later day
    and have no events before it.  A few users show up again later with the
    other variant: a conflicting re-assignment that consumers must ignore.
``user_metadata``
    ``user_id,age,gender,updated_at``; a change set too.  The first day is an
    extract of the initial users (``updated_at`` before the first day); late
    users get their row together with their assignment and a few users get a
    later row with a changed age bucket and/or gender.  A few assigned users
    (``no_metadata_share``) never get any row: they have assignments and events
    but no attributes, and they are never among the users whose attributes change.

Days without variant or metadata changes get no file for that table.  Output
is fully determined by the knobs and the seed, and each feature draws from its
own random stream (see ``_STREAM_*``), so that turning one on or off leaves the
others alone: with ``repeat_share=0``, ``unassigned_user_share=0`` and
``no_metadata_share=0`` the output is the same as before those features
existed.  Each day is generated with vectorised numpy code and written with
pyarrow, and every file is first written under a hidden temporary name in its
folder and then renamed into place, so a reader never sees a partial file.

Run ``python -m elt_assets.landing.generator --out DIR`` for the command-line entry
(``--help`` lists every knob with its default).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

__all__ = [
    "AGE_BUCKETS",
    "COLUMNS",
    "GENDERS",
    "TABLES",
    "GenerationSummary",
    "LandingConflictError",
    "generate_landing",
    "landing_path",
    "main",
]

TABLES: tuple[str, ...] = ("user_event", "user_variant", "user_metadata")

COLUMNS: dict[str, tuple[str, ...]] = {
    "user_event": ("user_id", "datestamp", "item_id", "clicked", "purchased", "paidamount"),
    "user_variant": ("user_id", "variant_id"),
    "user_metadata": ("user_id", "age", "gender", "updated_at"),
}

VARIANTS: tuple[str, str] = ("control", "test")
AGE_BUCKETS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55+")
_AGE_WEIGHTS = (0.20, 0.30, 0.25, 0.15, 0.10)
GENDERS: tuple[str, ...] = ("female", "male", "other")
_GENDER_WEIGHTS = (0.48, 0.48, 0.04)

PARQUET_PART = "part-0000.parquet"
_SECONDS_PER_DAY = 86_400
_METADATA_LOOKBACK_DAYS = 30

# Independent random streams, so that e.g. changing the number of metadata
# changes does not reshuffle every event row, and turning a production quirk on
# or off does not reshuffle what the other streams drew.
_STREAM_PLAN = 0
_STREAM_EVENTS = 1
_STREAM_REPEATS = 2  # per day: which rows are shown again, and their outcomes
_STREAM_UNASSIGNED = 3  # per day: the impressions of users never assigned a variant
_STREAM_NO_METADATA = 4  # the assigned users who never get a metadata row

_EVENT_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("datestamp", pa.date32()),
        ("item_id", pa.int64()),
        ("clicked", pa.int64()),
        ("purchased", pa.int64()),
        ("paidamount", pa.int64()),
    ]
)
_VARIANT_SCHEMA = pa.schema([("user_id", pa.int64()), ("variant_id", pa.string())])
_METADATA_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("age", pa.string()),
        ("gender", pa.string()),
        ("updated_at", pa.timestamp("s")),
    ]
)


@dataclass(frozen=True)
class GenerationSummary:
    """What one ``generate_landing`` call wrote."""

    root: Path
    first_day: date
    last_day: date
    files: int
    event_rows: int
    users: int
    fmt: str = "csv"
    event_files: int = 0
    variant_files: int = 0
    metadata_files: int = 0
    variant_rows: int = 0
    metadata_rows: int = 0
    late_users: int = 0
    reassignments: int = 0
    metadata_changes: int = 0
    null_datestamp_rows: int = 0
    repeated_impressions: int = 0
    unassigned_users: int = 0
    users_without_metadata: int = 0

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def describe(self) -> str:
        """A one-line human-readable account of the run."""
        return (
            f"wrote {self.files} {self.fmt} files to {self.root} for "
            f"{self.first_day.isoformat()}..{self.last_day.isoformat()} "
            f"(user_event={self.event_files}, user_variant={self.variant_files}, "
            f"user_metadata={self.metadata_files}): {self.event_rows} event rows, "
            f"{self.variant_rows} variant rows, {self.metadata_rows} metadata rows, "
            f"{self.users} users ({self.late_users} late, {self.reassignments} reassigned, "
            f"{self.metadata_changes} metadata changes, "
            f"{self.users_without_metadata} without metadata), "
            f"{self.unassigned_users} unassigned users with events, "
            f"{self.repeated_impressions} repeated impressions, "
            f"{self.null_datestamp_rows} null datestamps"
        )


class LandingConflictError(FileExistsError):
    """The target folder already holds files for a table/day this run would write."""

    def __init__(self, conflicts: Sequence[Path]):
        self.conflicts = list(conflicts)
        shown = ", ".join(str(path) for path in self.conflicts[:5])
        more = f" and {len(self.conflicts) - 5} more" if len(self.conflicts) > 5 else ""
        super().__init__(
            f"{len(self.conflicts)} landing file(s) already exist: {shown}{more}; "
            "pass overwrite=True (--overwrite) to replace them"
        )


def landing_path(root: Path | str, table: str, day: date, fmt: str = "csv") -> Path:
    """The file a table's day lands in, following the public layout."""
    base = Path(root) / table
    if fmt == "csv":
        return base / f"{day.isoformat()}.csv"
    if fmt == "parquet":
        return base / day.isoformat() / PARQUET_PART
    raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _Plan:
    """Everything about users decided up front; events are drawn per day later."""

    is_test: np.ndarray  # bool per user index (user_id = index + 1)
    assign_day: np.ndarray  # day offset of the user's (real) assignment
    age: np.ndarray  # index into AGE_BUCKETS
    gender: np.ndarray  # index into GENDERS
    first_seen_at: np.ndarray  # datetime64[s] of the user's first metadata row
    reassign_user: np.ndarray
    reassign_day: np.ndarray
    change_user: np.ndarray
    change_day: np.ndarray
    change_age: np.ndarray
    change_gender: np.ndarray
    change_at: np.ndarray
    null_per_day: np.ndarray
    has_metadata: np.ndarray  # bool per user: False for the users who never get a row
    unassigned: int  # users never assigned a variant, user_id = users + 1 .. users + unassigned


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _day_start(start: date, offset: int | np.ndarray) -> np.ndarray:
    return np.datetime64(start.isoformat(), "s") + np.asarray(offset, dtype=np.int64) * _SECONDS_PER_DAY


def _make_plan(
    *,
    users: int,
    days: int,
    start: date,
    seed: int,
    late_user_share: float,
    reassignments: int,
    metadata_changes: int,
    null_datestamp_rows: int,
    test_share: float,
    unassigned_users: int = 0,
    users_without_metadata: int = 0,
) -> _Plan:
    rng = _rng(seed, _STREAM_PLAN)

    is_test = np.zeros(users, dtype=bool)
    is_test[rng.permutation(users)[: int(round(users * test_share))]] = True

    # Late users: assigned (and first active) on day 2..N; at least one user starts on day 1.
    n_late = min(int(round(users * late_user_share)), users - 1) if days > 1 else 0
    assign_day = np.zeros(users, dtype=np.int64)
    late = rng.choice(users, size=n_late, replace=False)
    assign_day[late] = rng.integers(1, days, size=n_late) if n_late else 0

    age = rng.choice(len(AGE_BUCKETS), size=users, p=_AGE_WEIGHTS)
    gender = rng.choice(len(GENDERS), size=users, p=_GENDER_WEIGHTS)

    # Initial users were last updated some time in the month before the first day;
    # late users get their row at a random second of their assignment day.
    lookback = _METADATA_LOOKBACK_DAYS * _SECONDS_PER_DAY
    before_start = rng.integers(1, lookback + 1, size=users)
    within_day = rng.integers(0, _SECONDS_PER_DAY, size=users)
    first_seen_at = np.where(
        assign_day == 0,
        _day_start(start, 0) - before_start,
        _day_start(start, assign_day) + within_day,
    )

    # Conflicting re-assignments and metadata changes need a day after the user's first one.
    eligible = np.flatnonzero(assign_day < days - 1)
    for knob, wanted in (("reassignments", reassignments), ("metadata_changes", metadata_changes)):
        if wanted > eligible.size:
            raise ValueError(
                f"{knob}={wanted} needs that many users assigned before the last day, "
                f"but only {eligible.size} are (users={users}, days={days})"
            )

    reassign_user = np.sort(rng.choice(eligible, size=reassignments, replace=False))
    reassign_day = (
        rng.integers(assign_day[reassign_user] + 1, days)
        if reassignments
        else np.zeros(0, dtype=np.int64)
    )

    change_user = np.sort(rng.choice(eligible, size=metadata_changes, replace=False))
    if metadata_changes:
        change_day = rng.integers(assign_day[change_user] + 1, days)
        # 0: age bucket only, 1: gender only, 2: both.
        mode = rng.integers(0, 3, size=metadata_changes)
        old_age = age[change_user]
        step = np.where(rng.random(metadata_changes) < 0.8, 1, -1)  # people mostly get older
        shifted = old_age + step
        shifted = np.where((shifted < 0) | (shifted >= len(AGE_BUCKETS)), old_age - step, shifted)
        change_age = np.where(mode != 1, shifted, old_age)
        old_gender = gender[change_user]
        other_gender = (old_gender + rng.integers(1, len(GENDERS), size=metadata_changes)) % len(GENDERS)
        change_gender = np.where(mode != 0, other_gender, old_gender)
        change_at = _day_start(start, change_day) + rng.integers(0, _SECONDS_PER_DAY, size=metadata_changes)
    else:
        change_day = change_age = change_gender = np.zeros(0, dtype=np.int64)
        change_at = np.zeros(0, dtype="datetime64[s]")

    # Spread the NULL-datestamp rows over distinct days where possible.
    null_days = rng.choice(days, size=null_datestamp_rows, replace=null_datestamp_rows > days)
    null_per_day = np.bincount(null_days, minlength=days).astype(np.int64)

    # Users the user database never heard of: any assigned user, except those picked for
    # an attribute change (which would give them a row after all).  Drawn from a stream
    # of their own, so that the draws above do not depend on this knob.
    has_metadata = np.ones(users, dtype=bool)
    if users_without_metadata:
        candidates = np.setdiff1d(np.arange(users), change_user, assume_unique=True)
        if users_without_metadata > candidates.size:
            raise ValueError(
                f"{users_without_metadata} users without metadata need that many users not "
                f"picked for metadata changes, but only {candidates.size} are "
                f"(users={users}, metadata_changes={metadata_changes})"
            )
        picked = _rng(seed, _STREAM_NO_METADATA).choice(
            candidates, size=users_without_metadata, replace=False
        )
        has_metadata[picked] = False

    return _Plan(
        is_test=is_test,
        assign_day=assign_day,
        age=age,
        gender=gender,
        first_seen_at=first_seen_at,
        reassign_user=reassign_user,
        reassign_day=reassign_day,
        change_user=change_user,
        change_day=change_day,
        change_age=change_age,
        change_gender=change_gender,
        change_at=change_at,
        null_per_day=null_per_day,
        has_metadata=has_metadata,
        unassigned=int(unassigned_users),
    )


# --------------------------------------------------------------------------- tables


def _strings(values: Sequence[str], codes: np.ndarray) -> pa.Array:
    """Map integer codes to their strings without a Python loop per row."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(codes, dtype=np.int32)), pa.array(list(values), pa.string())
    ).cast(pa.string())


def _variant_table(plan: _Plan, day: int) -> pa.Table | None:
    assigned = np.flatnonzero(plan.assign_day == day)
    reassigned = plan.reassign_user[plan.reassign_day == day]
    users = np.concatenate([assigned, reassigned])
    if users.size == 0:
        return None
    test = np.concatenate([plan.is_test[assigned], ~plan.is_test[reassigned]])
    order = np.argsort(users, kind="stable")
    return pa.table(
        [pa.array(users[order] + 1), _strings(VARIANTS, test[order].astype(np.int32))],
        schema=_VARIANT_SCHEMA,
    )


def _metadata_table(plan: _Plan, day: int) -> pa.Table | None:
    assigned = np.flatnonzero((plan.assign_day == day) & plan.has_metadata)
    changed = plan.change_day == day
    users = np.concatenate([assigned, plan.change_user[changed]])
    if users.size == 0:
        return None
    age = np.concatenate([plan.age[assigned], plan.change_age[changed]])
    gender = np.concatenate([plan.gender[assigned], plan.change_gender[changed]])
    updated_at = np.concatenate([plan.first_seen_at[assigned], plan.change_at[changed]])
    order = np.argsort(users, kind="stable")
    return pa.table(
        [
            pa.array(users[order] + 1),
            _strings(AGE_BUCKETS, age[order]),
            _strings(GENDERS, gender[order]),
            pa.array(updated_at[order].astype("datetime64[s]")),
        ],
        schema=_METADATA_SCHEMA,
    )


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values; a plain sort beats ``np.unique`` here by a wide margin."""
    values = np.sort(values)
    if values.size < 2:
        return values
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


def _outcomes(
    rng: np.random.Generator, p_click: np.ndarray | float, n: int, purchase_rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clicked, purchased and amount paid of ``n`` impressions: a purchase needs a click."""
    clicked = rng.random(n) < p_click
    purchased = clicked & (rng.random(n) < purchase_rate)
    paid = np.zeros(n, dtype=np.int64)
    n_bought = int(purchased.sum())
    paid[purchased] = np.maximum(1, np.rint(rng.lognormal(3.3, 0.8, size=n_bought))).astype(np.int64)
    return clicked, purchased, paid


@dataclass(frozen=True)
class _EventDay:
    table: pa.Table
    repeated: int  # rows that repeat an earlier row's user, datestamp and item
    unassigned_seen: np.ndarray  # distinct user indices (>= users) of unassigned users with rows


def _event_table(
    plan: _Plan,
    day: int,
    start: date,
    *,
    seed: int,
    events_per_day: int,
    items: int,
    ctr_control: float,
    ctr_test: float,
    purchase_rate: float,
    nulls_wanted: int,
    repeat_share: float = 0.0,
) -> _EventDay:
    rng = _rng(seed, _STREAM_EVENTS, day)
    active = np.flatnonzero(plan.assign_day <= day)
    users = active[rng.integers(0, active.size, size=events_per_day)]
    item_idx = rng.integers(0, items, size=events_per_day)
    if day > 0:
        # Late users show up in the events from their assignment day on.
        newcomers = np.flatnonzero(plan.assign_day == day)
        users = np.concatenate([users, newcomers])
        item_idx = np.concatenate([item_idx, rng.integers(0, items, size=newcomers.size)])

    # One row per (user, item) and day: dedupe on a combined key, sorted by user then item.
    key = _sorted_unique(users.astype(np.int64) * items + item_idx)
    n_assigned = key.size

    p_click = np.where(plan.is_test[key // items], ctr_test, ctr_control)
    clicked, purchased, paid = _outcomes(rng, p_click, n_assigned, purchase_rate)

    # NULL datestamps fall on the assigned users' rows (never on a repeated row, below).
    take = min(nulls_wanted, n_assigned)
    null_rows = np.sort(rng.choice(n_assigned, size=take, replace=False)) if take else np.zeros(0, np.int64)

    # Users never assigned a variant: about as many impressions each as an assigned user,
    # from a stream of their own.  Their indices follow every assigned user's, so their
    # rows simply go after the others and the order by user then item holds.
    unassigned_seen = np.zeros(0, dtype=np.int64)
    if plan.unassigned and events_per_day:
        urng = _rng(seed, _STREAM_UNASSIGNED, day)
        per_user = urng.poisson(events_per_day / active.size, size=plan.unassigned)
        outsiders = np.repeat(np.arange(plan.is_test.size, plan.is_test.size + plan.unassigned), per_user)
        outsider_key = _sorted_unique(outsiders * items + urng.integers(0, items, size=outsiders.size))
        o_clicked, o_purchased, o_paid = _outcomes(urng, ctr_control, outsider_key.size, purchase_rate)
        unassigned_seen = _sorted_unique(outsider_key // items)
        key = np.concatenate([key, outsider_key])
        p_click = np.concatenate([p_click, np.full(outsider_key.size, ctr_control)])
        clicked = np.concatenate([clicked, o_clicked])
        purchased = np.concatenate([purchased, o_purchased])
        paid = np.concatenate([paid, o_paid])

    # Repeated impressions: rows picked (with replacement) among the day's rows, except
    # the NULL-datestamp ones, each shown once more right after the original with an
    # outcome of its own; ``repeats / (rows + repeats)`` is ``repeat_share``.
    n = key.size
    pickable = n - take
    repeats = int(round(n * repeat_share / (1.0 - repeat_share))) if pickable else 0
    if repeats:
        rrng = _rng(seed, _STREAM_REPEATS, day)
        picks = rrng.integers(0, pickable, size=repeats)
        if take:
            # Map 0..pickable-1 onto the row indices that are not NULL rows.
            picks = picks + np.searchsorted(null_rows - np.arange(take), picks, side="right")
        picks.sort()
        r_clicked, r_purchased, r_paid = _outcomes(rrng, p_click[picks], repeats, purchase_rate)

        # The j-th repeat (in row order) lands right after its original and after the
        # j earlier repeats: at picks[j] + j + 1; the original rows fill the other slots.
        at = picks + np.arange(1, repeats + 1)
        original = np.ones(n + repeats, dtype=bool)
        original[at] = False

        def spread(values: np.ndarray, again: np.ndarray) -> np.ndarray:
            out = np.empty(n + repeats, dtype=values.dtype)
            out[original] = values
            out[at] = again
            return out

        key = spread(key, key[picks])
        clicked = spread(clicked, r_clicked)
        purchased = spread(purchased, r_purchased)
        paid = spread(paid, r_paid)
        null_rows = null_rows + np.searchsorted(picks, null_rows, side="left")
        n += repeats

    null_mask = None
    if take:
        null_mask = np.zeros(n, dtype=bool)
        null_mask[null_rows] = True

    stamp = np.full(n, np.datetime64(start + timedelta(days=day), "D"))
    table = pa.table(
        [
            pa.array(key // items + 1),
            pa.array(stamp, type=pa.date32(), mask=null_mask),
            pa.array(key % items + 1),
            pa.array(clicked.astype(np.int64)),
            pa.array(purchased.astype(np.int64)),
            pa.array(paid),
        ],
        schema=_EVENT_SCHEMA,
    )
    return _EventDay(table=table, repeated=repeats, unassigned_seen=unassigned_seen)


# --------------------------------------------------------------------------- writing


def _atomic_write(final: Path, write: Callable[[Path], None]) -> None:
    """Write through a hidden temporary file in the same folder, then rename into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_csv(table: pa.Table, path: Path) -> None:
    # pyarrow always quotes header names, so the header line is written by hand;
    # quoting_style="none" keeps values plain and fails loudly on a value that would need quotes.
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((",".join(table.column_names) + "\n").encode())
        pa_csv.write_csv(
            table,
            sink,
            write_options=pa_csv.WriteOptions(
                include_header=False, quoting_style="none", batch_size=65_536
            ),
        )


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, str(path))


def _existing_files(root: Path, table: str, day: date) -> list[Path]:
    """Landing files already present for one table/day, in either format."""
    found = []
    csv_file = landing_path(root, table, day, "csv")
    if csv_file.exists():
        found.append(csv_file)
    day_dir = root / table / day.isoformat()
    if day_dir.is_dir():
        found.extend(sorted(p for p in day_dir.iterdir() if not p.name.startswith(".")))
    return found


def _drop_other_format(root: Path, table: str, day: date, fmt: str) -> None:
    """When replacing a table/day, remove its copy in the other format so it is not read twice."""
    if fmt == "parquet":
        landing_path(root, table, day, "csv").unlink(missing_ok=True)
        return
    day_dir = root / table / day.isoformat()
    if day_dir.is_dir():
        for part in day_dir.glob("*.parquet"):
            part.unlink()
        try:
            day_dir.rmdir()
        except OSError:
            pass  # something else lives there; leave it alone


# --------------------------------------------------------------------------- API


def _check_probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], not {value}")
    return value


def _share_count(users: int, share: float) -> int:
    """A share of the users as a count: rounded, but at least one when the share is positive."""
    return max(1, int(round(users * share))) if share > 0 else 0


def generate_landing(
    root: Path | str,
    *,
    users: int = 400,
    days: int = 14,
    events_per_day: int = 3000,
    start: date | str = date(2023, 6, 1),
    seed: int = 7,
    fmt: str = "csv",
    late_user_share: float = 0.1,
    reassignments: int = 3,
    metadata_changes: int = 5,
    null_datestamp_rows: int = 3,
    items: int = 500,
    ctr: Mapping[str, float] | None = None,
    purchase_rate: float = 0.2,
    test_share: float = 0.5,
    repeat_share: float = 0.03,
    unassigned_user_share: float = 0.02,
    no_metadata_share: float = 0.03,
    overwrite: bool = False,
    progress: Callable[[date, int], None] | None = None,
) -> GenerationSummary:
    """Write ``days`` days of synthetic landing files under ``root``.

    A ``user_event`` row is one impression: user ``user_id`` was shown item
    ``item_id`` on ``datestamp`` and clicked it (``clicked``) and bought it
    (``purchased``, for ``paidamount``) or not.  ``users`` users (ids ``1..users``)
    are assigned a variant, ``test_share`` of them ``test``; ``late_user_share``
    of them are assigned on a later day than the first (and have no events
    before), ``reassignments`` of them get a second, conflicting assignment and
    ``metadata_changes`` of them a second metadata row with changed attributes.

    Per day, ``events_per_day`` impressions are drawn uniformly over the users
    assigned so far and over ``items`` items and deduplicated per user and item
    (each late user also gets one impression on its assignment day).  ``ctr``
    maps each variant (``control``/``test``) to its click probability (default
    0.10 and 0.12); ``purchase_rate`` is the share of clicks that turn into
    purchases.  ``null_datestamp_rows`` rows in all, spread over the days, get
    an empty datestamp.

    The quirks of production logs, each on by default and off at 0:

    ``repeat_share``
        Share of a day's ``user_event`` rows that repeat an impression already
        in the file (same user, day and item, a row of its own right after the
        first, with its own outcome); in ``[0, 1)``.  These rows come on top of
        the drawn ones.
    ``unassigned_user_share``
        Users who are in the event log but were never assigned a variant, as a
        share of ``users`` (rounded, at least one when positive): ids
        ``users + 1`` on, no ``user_variant`` or ``user_metadata`` row, about as
        many impressions a day as an assigned user (on top of
        ``events_per_day``), clicking at the control rate.
    ``no_metadata_share``
        Assigned users who never get a ``user_metadata`` row, as a share of
        ``users`` (rounded, at least one when positive); they are never picked
        for ``metadata_changes``.

    So a day holds about ``events_per_day * (1 + unassigned_user_share) /
    (1 - repeat_share)`` rows, a little fewer after deduplication.  The summary
    counts what was written: ``repeated_impressions``, ``unassigned_users``
    (those with at least one event) and ``users_without_metadata``.
    ``progress``, if given, is called with the day and its number of event rows
    after each day's files are written.

    Refuses with ``LandingConflictError`` when any table/day it would write
    already has a file under ``root`` (in either format), unless ``overwrite``
    is true; nothing is written in that case.  Overwriting replaces only the
    table/days this run writes, files for other days are left untouched.
    """
    root = Path(root)
    if isinstance(start, datetime):
        start = start.date()
    elif isinstance(start, str):
        start = date.fromisoformat(start)
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    for name, value, low in (
        ("users", users, 1),
        ("days", days, 1),
        ("items", items, 1),
        ("events_per_day", events_per_day, 0),
        ("reassignments", reassignments, 0),
        ("metadata_changes", metadata_changes, 0),
        ("null_datestamp_rows", null_datestamp_rows, 0),
        ("seed", seed, 0),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")
    rates = {"control": 0.10, "test": 0.12, **(dict(ctr) if ctr else {})}
    unknown = set(rates) - set(VARIANTS)
    if unknown:
        raise ValueError(f"ctr keys must be 'control' and/or 'test', got {sorted(unknown)}")
    ctr_control = _check_probability("ctr['control']", rates["control"])
    ctr_test = _check_probability("ctr['test']", rates["test"])
    purchase_rate = _check_probability("purchase_rate", purchase_rate)
    test_share = _check_probability("test_share", test_share)
    late_user_share = _check_probability("late_user_share", late_user_share)
    unassigned_user_share = _check_probability("unassigned_user_share", unassigned_user_share)
    no_metadata_share = _check_probability("no_metadata_share", no_metadata_share)
    repeat_share = float(repeat_share)
    if not 0.0 <= repeat_share < 1.0:
        raise ValueError(f"repeat_share must lie in [0, 1), not {repeat_share}")
    if null_datestamp_rows and not events_per_day:
        raise ValueError("null_datestamp_rows needs events_per_day > 0")

    plan = _make_plan(
        users=int(users),
        days=int(days),
        start=start,
        seed=int(seed),
        late_user_share=late_user_share,
        reassignments=int(reassignments),
        metadata_changes=int(metadata_changes),
        null_datestamp_rows=int(null_datestamp_rows),
        test_share=test_share,
        unassigned_users=_share_count(int(users), unassigned_user_share),
        users_without_metadata=_share_count(int(users), no_metadata_share),
    )

    # Which table/days get a file is known before any data is drawn: check for clashes first.
    variant_days = set(np.unique(np.concatenate([plan.assign_day, plan.reassign_day])).tolist())
    metadata_days = set(
        np.unique(np.concatenate([plan.assign_day[plan.has_metadata], plan.change_day])).tolist()
    )
    targets = [
        (offset, table)
        for offset in range(days)
        for table in ("user_variant", "user_metadata", "user_event")
        if table == "user_event"
        or (table == "user_variant" and offset in variant_days)
        or (table == "user_metadata" and offset in metadata_days)
    ]
    if not overwrite:
        conflicts = [
            path
            for offset, table in targets
            for path in _existing_files(root, table, start + timedelta(days=offset))
        ]
        if conflicts:
            raise LandingConflictError(conflicts)

    write = _write_csv if fmt == "csv" else _write_parquet
    counts = {table: [0, 0] for table in TABLES}  # files, rows
    nulls_written = 0
    null_carry = 0
    repeated = 0
    unassigned_seen = np.zeros(plan.unassigned, dtype=bool)
    for offset, table_name in targets:
        day = start + timedelta(days=offset)
        if table_name == "user_variant":
            table = _variant_table(plan, offset)
        elif table_name == "user_metadata":
            table = _metadata_table(plan, offset)
        else:
            wanted = int(plan.null_per_day[offset]) + null_carry
            event_day = _event_table(
                plan,
                offset,
                start,
                seed=int(seed),
                events_per_day=int(events_per_day),
                items=int(items),
                ctr_control=ctr_control,
                ctr_test=ctr_test,
                purchase_rate=purchase_rate,
                nulls_wanted=wanted,
                repeat_share=repeat_share,
            )
            table = event_day.table
            repeated += event_day.repeated
            unassigned_seen[event_day.unassigned_seen - int(users)] = True
            nulls = table.column("datestamp").null_count
            nulls_written += nulls
            null_carry = wanted - nulls  # a day too small for its share passes it on
        assert table is not None
        if overwrite:
            _drop_other_format(root, table_name, day, fmt)
        _atomic_write(landing_path(root, table_name, day, fmt), lambda tmp, t=table: write(t, tmp))
        counts[table_name][0] += 1
        counts[table_name][1] += table.num_rows
        if table_name == "user_event" and progress is not None:
            progress(day, table.num_rows)  # the event file is the day's last

    return GenerationSummary(
        root=root,
        first_day=start,
        last_day=start + timedelta(days=days - 1),
        files=sum(files for files, _ in counts.values()),
        event_rows=counts["user_event"][1],
        users=int(users),
        fmt=fmt,
        event_files=counts["user_event"][0],
        variant_files=counts["user_variant"][0],
        metadata_files=counts["user_metadata"][0],
        variant_rows=counts["user_variant"][1],
        metadata_rows=counts["user_metadata"][1],
        late_users=int(np.count_nonzero(plan.assign_day)),
        reassignments=int(plan.reassign_user.size),
        metadata_changes=int(plan.change_user.size),
        null_datestamp_rows=nulls_written,
        repeated_impressions=repeated,
        unassigned_users=int(np.count_nonzero(unassigned_seen)),
        users_without_metadata=int(np.count_nonzero(~plan.has_metadata)),
    )


# --------------------------------------------------------------------------- CLI


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m elt_assets.landing.generator",
        description="Write synthetic A/B-test landing files (user_event, user_variant, user_metadata).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    # default=SUPPRESS: a required argument has no default worth showing.
    parser.add_argument(
        "--out", required=True, type=Path, default=argparse.SUPPRESS, help="landing-zone root folder"
    )
    parser.add_argument("--users", type=int, default=400, help="users assigned a variant")
    parser.add_argument("--days", type=int, default=14, help="days to generate")
    parser.add_argument(
        "--events-per-day", type=int, default=3000, help="impressions drawn per day for assigned users"
    )
    parser.add_argument("--start", type=_iso_date, default=date(2023, 6, 1), help="first day, YYYY-MM-DD")
    parser.add_argument("--seed", type=int, default=7, help="random seed; same knobs and seed, same files")
    parser.add_argument(
        "--format", dest="fmt", choices=("csv", "parquet"), default="csv", help="landing file format"
    )
    parser.add_argument(
        "--late-user-share", type=float, default=0.1, help="share of users assigned after the first day"
    )
    parser.add_argument(
        "--reassignments", type=int, default=3, help="users later re-assigned to the other variant"
    )
    parser.add_argument(
        "--metadata-changes", type=int, default=5, help="users who later get changed attributes"
    )
    parser.add_argument(
        "--null-datestamp-rows", type=int, default=3, help="event rows with an empty datestamp, in all"
    )
    parser.add_argument("--items", type=int, default=500, help="distinct items")
    parser.add_argument("--ctr-control", type=float, default=0.10, help="click probability in control")
    parser.add_argument("--ctr-test", type=float, default=0.12, help="click probability in test")
    parser.add_argument("--purchase-rate", type=float, default=0.2, help="share of clicks that are purchases")
    parser.add_argument("--test-share", type=float, default=0.5, help="share of users assigned to test")
    parser.add_argument(
        "--repeat-share",
        type=float,
        default=0.03,
        help="share of a day's event rows that repeat a user's item of that day (0: none)",
    )
    parser.add_argument(
        "--unassigned-user-share",
        type=float,
        default=0.02,
        help="users with events but never a variant, as a share of --users (0: none)",
    )
    parser.add_argument(
        "--no-metadata-share",
        type=float,
        default=0.03,
        help="assigned users without any metadata row, as a share of --users (0: none)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace landing files that already exist for the table/days being written",
    )
    return parser


def _print_progress(day: date, rows: int) -> None:
    print(f"{day.isoformat()}: {rows:,} events", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns 0 on success and 2 on refusal or bad knobs.

    A long run (more than 3 days or more than 100,000 events a day) reports each
    day on stderr as it is written; the summary line goes to stdout.
    """
    args = _parser().parse_args(argv)
    long_run = args.days > 3 or args.events_per_day > 100_000
    try:
        summary = generate_landing(
            args.out,
            users=args.users,
            days=args.days,
            events_per_day=args.events_per_day,
            start=args.start,
            seed=args.seed,
            fmt=args.fmt,
            late_user_share=args.late_user_share,
            reassignments=args.reassignments,
            metadata_changes=args.metadata_changes,
            null_datestamp_rows=args.null_datestamp_rows,
            items=args.items,
            ctr={"control": args.ctr_control, "test": args.ctr_test},
            purchase_rate=args.purchase_rate,
            test_share=args.test_share,
            repeat_share=args.repeat_share,
            unassigned_user_share=args.unassigned_user_share,
            no_metadata_share=args.no_metadata_share,
            overwrite=args.overwrite,
            progress=_print_progress if long_run else None,
        )
    except LandingConflictError as error:
        print(f"error: refusing to write into {args.out}: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
