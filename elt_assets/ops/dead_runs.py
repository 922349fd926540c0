"""Runs whose process died: found from the run worker's pid, then marked failed.

A run's process that is killed (`kill -9`, the OOM killer, a reboot) never records its end.
The run stays STARTED in the instance for good: the UI shows it in progress, cleanup keeps
it as unfinished, and the run queue counts it against the `elt/warehouse` limit, so every
later run of the warehouse waits behind it. Dagster's run monitoring cannot tell for runs
of the default run launcher (see docs/operations.md); this module can, on the machine the
run ran on.

Dagster records the pid of the process that executes a run (each event carries it; the
RUN_START event is written by that process, and a launched run's worker also reports
"Started process for run (pid: N)"), but not the machine. A pid is therefore judged only
when the run provably ran here:

- the instance launches runs as local processes (the default run launcher; container
  launchers run them in other pid namespaces or on other hosts), and
- the run's compute logs are in this machine's local compute-log folder: the
  LocalComputeLogManager writes them on the machine that executes the run.

The process is alive if a process with that pid exists, is not a zombie, and started no
later than the event that names the pid (a pid reused by a later process does not count).
A run that cannot be judged this way (no pid recorded, logs elsewhere) is reported as
silent once it has written no event for `silent_after` seconds; six hours by default, the
instance's `max_runtime_seconds`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from elt_assets.ops.instance_storage import local_compute_log_root

UNFINISHED_STATUSES = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
DEFAULT_SILENT_AFTER_SECONDS = 6 * 3600.0
# The message of the engine event a launched run's worker writes first (dagster/_grpc/impl.py).
STARTED_PROCESS = "Started process for run (pid: "
# /proc's boot time has one-second resolution, and clocks get adjusted.
START_TIME_SLACK_SECONDS = 2.0

ALIVE = "alive"  # its process runs on this machine
GONE = "gone"  # it ran on this machine and its process is gone
SILENT = "silent"  # not checkable here, and no event for silent_after
UNCHECKED = "unchecked"  # not checkable here, recently active

Log = Callable[[str], None]
_log: Log = logging.getLogger(__name__).info


@dataclass(frozen=True)
class UnfinishedRun:
    """An unfinished run and what its process looks like from this machine."""

    run: dg.DagsterRun
    pid: int | None
    last_event_at: float
    verdict: str
    reason: str

    @property
    def abandoned(self) -> bool:
        """Whether the run can never finish on its own."""
        return self.verdict in (GONE, SILENT)

    def describe(self) -> str:
        return f"run {self.run.run_id} ({self.run.job_name}, {self.run.status.value}): {self.reason}"


def find_unfinished_runs(
    instance: dg.DagsterInstance, silent_after: float = DEFAULT_SILENT_AFTER_SECONDS
) -> list[UnfinishedRun]:
    """Every starting, started or cancelling run, judged by the clock (oldest first).

    Not paged: unfinished runs are few, since the run queue admits a handful at a time.
    """
    now = time.time()
    launcher = instance.run_launcher
    local_launcher = isinstance(launcher, dg.DefaultRunLauncher)
    log_root = local_compute_log_root(instance)
    found = []
    for record in reversed(instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED_STATUSES))):
        run = record.dagster_run
        pid, pid_event_at = _worker_pid(instance, run.run_id)
        last_event_at = _last_event_at(instance, run.run_id) or record.create_timestamp.timestamp()
        ran_here = local_launcher and log_root is not None and (log_root / run.run_id).is_dir()
        if pid is not None and ran_here:
            started = process_started_at(pid)
            if started is not None and started <= pid_event_at + START_TIME_SLACK_SECONDS:
                reason = f"its process {pid} on this machine is alive"
                found.append(UnfinishedRun(run, pid, last_event_at, ALIVE, reason))
            else:
                reason = f"its process {pid} on this machine is gone; last event {_age(now - last_event_at)} ago"
                found.append(UnfinishedRun(run, pid, last_event_at, GONE, reason))
            continue
        why = _not_checkable(pid, None if local_launcher else type(launcher).__name__, log_root)
        silence = now - last_event_at
        verdict = SILENT if silence > silent_after else UNCHECKED
        reason = f"{why}; last event {_age(silence)} ago (limit {_age(silent_after)})"
        found.append(UnfinishedRun(run, pid, last_event_at, verdict, reason))
    return found


def fail_abandoned_runs(
    instance: dg.DagsterInstance,
    runs: list[UnfinishedRun],
    dry_run: bool = False,
    log: Log = _log,
) -> list[str]:
    """Mark each abandoned run failed (a cancelling one: canceled); returns their ids.

    The failure's message says why, in the run's own event log; the failed-run sensor
    then reports it like any failed run.
    """
    marked = []
    for unfinished in runs:
        if not unfinished.abandoned:
            continue
        current = instance.get_run_by_id(unfinished.run.run_id)
        if current is None or current.status != unfinished.run.status:
            continue  # it moved on (or was deleted) since it was judged
        verb = "canceled" if current.status == dg.DagsterRunStatus.CANCELING else "failed"
        message = (
            f"Marked {verb} by the log cleanup on {socket.gethostname()}: {unfinished.reason}. "
            "The run can never finish on its own."
        )
        if dry_run:
            log(f"would mark {verb}: {unfinished.describe()}")
        else:
            if verb == "canceled":
                instance.report_run_canceled(current, message)
            else:
                instance.report_run_failed(current, message)
            log(f"marked {verb}: {unfinished.describe()}")
        marked.append(current.run_id)
    return marked


def process_started_at(pid: int) -> float | None:
    """When the live process `pid` started (Unix time), or None if there is none.

    A zombie (killed, not yet reaped by its parent) counts as gone. Without /proc (not
    Linux) the start time is unknown and any existing process counts as started long ago.
    """
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # it exists, owned by someone else
        return 0.0
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the command name: state is the 3rd field of stat, starttime the 22nd,
    # in clock ticks since boot.
    if fields[0] in ("Z", "X"):
        return None
    return _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("/proc/stat has no btime line")


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int | None, float]:
    """The pid of the process executing the run, and the time of the newest event naming it."""
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.RUN_START, dg.DagsterEventType.ENGINE_EVENT}
    ).records
    pid, named_at = None, 0.0
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.RUN_START and event.pid is not None:
            pid, named_at = event.pid, entry.timestamp
        elif event.is_engine_event and (event.message or "").startswith(STARTED_PROCESS):
            # Reported through the instance, this event carries the pid in its metadata only.
            named = event.engine_event_data.metadata.get("pid") if event.engine_event_data else None
            if named is not None and str(named.value).isdigit():
                pid, named_at = int(named.value), entry.timestamp
    return pid, named_at


def _last_event_at(instance: dg.DagsterInstance, run_id: str) -> float | None:
    records = instance.get_records_for_run(run_id, limit=1, ascending=False).records
    return records[0].event_log_entry.timestamp if records else None


def _not_checkable(pid: int | None, other_launcher: str | None, log_root: Path | None) -> str:
    """Why the run's pid says nothing on this machine."""
    if pid is None:
        return "no process recorded yet"
    if other_launcher:
        return f"process {pid} was launched by {other_launcher}, not as a process of this machine"
    if log_root is None:
        return f"process {pid} cannot be placed: the compute logs are not local files"
    return f"process {pid} is not known to have run on this machine (its compute logs are not here)"


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def unfinished_runs_line(runs: list[UnfinishedRun], shown: int = 3) -> str:
    """One line for the health check: the abandoned runs, else a summary of the rest."""
    abandoned = [unfinished for unfinished in runs if unfinished.abandoned]
    if abandoned:
        listed = "; ".join(unfinished.describe() for unfinished in abandoned[:shown])
        more = f"; and {len(abandoned) - shown} more" if len(abandoned) > shown else ""
        return f"{len(abandoned)} run(s) can never finish: {listed}{more}; `elt-assets cleanup` marks them failed"
    if not runs:
        return "none"
    alive = sum(unfinished.verdict == ALIVE for unfinished in runs)
    return f"{len(runs)} unfinished: {alive} with a live process here, {len(runs) - alive} not checkable here and active"
