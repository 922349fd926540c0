"""Health checks beyond the webserver's /server_info: storage, daemons, runs, code,
warehouse, data.

Airflow's /health reports the metadata database and the scheduler's heartbeat. Here
each check yields one line, `ok` or `FAIL` with a detail, for a person or a monitoring
tool: the instance's storage answers; the sensor, scheduler, run-queue and run-monitoring
daemons that the instance uses sent a heartbeat recently; no unfinished run has lost its
process (elt_assets.ops.dead_runs); the code location loads; the warehouse answers
`select 1`; and the newest analytics partition is within its freshness lag.
"""

import functools
import importlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

import dagster as dg
# Private: no public API finds a module's Definitions the way code servers do (the CLI
# equivalent is `dagster definitions validate`, a subprocess).
from dagster._core.workspace.autodiscovery import loadable_targets_from_loaded_module

from elt_assets.checks.freshness import partition_age
from elt_assets.ops.dead_runs import DEFAULT_SILENT_AFTER_SECONDS, find_unfinished_runs, unfinished_runs_line
from elt_assets.resources import WarehouseResource
from elt_assets import settings
from elt_assets.engines.base import Engine, first_line

# MONITORING fails runs stuck past `run_monitoring:` limits: runs that never start, and
# (with the default run launcher) runs past max_runtime_seconds, whatever their process.
MONITORED_DAEMONS = ("SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR", "MONITORING")
FRESHNESS_TABLE = "analytics.analytics_variant_user_daily"
DEFAULT_MODULE = "elt_assets.definitions"


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, whether it passed, and what it saw."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def run_health_checks(
    instance: dg.DagsterInstance,
    open_warehouse: Callable[[], Engine],
    now: datetime | None = None,
    lag_hours: float | None = None,
    heartbeat_max_age: float | None = None,
    module_name: str | None = None,
    silent_after: float | None = None,
) -> list[CheckResult]:
    """Every check, in order; a check that raises becomes a FAIL line with the error's first line.

    open_warehouse is called inside the checks, so that a secret that cannot be read is a
    failed check, not a crash. `now` is the time the data's freshness is judged at (the
    sample data is from 2023); daemon heartbeats and runs are always judged by the clock.
    """
    now = now or datetime.now(timezone.utc)
    lag_hours = settings.freshness_lag().total_seconds() / 3600 if lag_hours is None else lag_hours
    heartbeat_max_age = settings.heartbeat_max_age_seconds() if heartbeat_max_age is None else heartbeat_max_age
    results = [_guarded("instance storage", lambda: check_storage(instance))]
    try:
        results += check_daemons(instance, time.time(), heartbeat_max_age)
    except Exception as error:
        results.append(CheckResult("daemons", False, first_line(error)))
    silent_after = DEFAULT_SILENT_AFTER_SECONDS if silent_after is None else silent_after
    results.append(_guarded("unfinished runs", lambda: check_unfinished_runs(instance, silent_after)))
    results.append(_guarded("code location", lambda: check_code_location(module_name or DEFAULT_MODULE)))
    # Opened once for both checks (a secret is read once); a failure is not cached.
    warehouse = functools.cache(open_warehouse)
    results.append(_guarded("warehouse", lambda: check_warehouse(warehouse())))
    results.append(_guarded("freshness", lambda: check_freshness(warehouse(), now, lag_hours)))
    return results


def check_storage(instance: dg.DagsterInstance) -> CheckResult:
    started = time.monotonic()
    runs = instance.get_runs_count()
    instance.get_runs(limit=1)
    elapsed = (time.monotonic() - started) * 1000
    kind = type(instance.run_storage).__name__
    return CheckResult("instance storage", True, f"{kind} answered in {elapsed:.0f} ms, {runs} run(s)")


def check_daemons(instance: dg.DagsterInstance, now: float, max_age: float) -> list[CheckResult]:
    """One result per monitored daemon that the instance needs."""
    required = set(instance.get_required_daemon_types())
    heartbeats = instance.get_daemon_heartbeats()
    results = []
    for daemon in MONITORED_DAEMONS:
        name = f"daemon {daemon}"
        if daemon not in required:
            results.append(CheckResult(name, True, "not used by this instance"))
            continue
        heartbeat = heartbeats.get(daemon)
        if heartbeat is None:
            results.append(CheckResult(name, False, "no heartbeat ever: is dagster-daemon running?"))
            continue
        age = now - heartbeat.timestamp
        if age > max_age:
            results.append(CheckResult(name, False, f"last heartbeat {age:.0f} s ago (limit {max_age:.0f} s)"))
        elif heartbeat.errors:
            results.append(CheckResult(name, False, f"heartbeat with error: {first_line(heartbeat.errors[0].message)}"))
        else:
            results.append(CheckResult(name, True, f"heartbeat {max(age, 0):.0f} s ago"))
    return results


def check_unfinished_runs(instance: dg.DagsterInstance, silent_after: float) -> CheckResult:
    """Fails while a starting, started or cancelling run can never finish on its own."""
    runs = find_unfinished_runs(instance, silent_after)
    return CheckResult("unfinished runs", not any(run.abandoned for run in runs), unfinished_runs_line(runs))


def check_code_location(module_name: str) -> CheckResult:
    module = importlib.import_module(module_name)
    # Find the Definitions the way `dagster dev` and the daemon do: that lookup refuses a
    # module holding two Definitions objects, which a plain import would not notice.
    targets = loadable_targets_from_loaded_module(module)
    defs = targets[0].target_definition if len(targets) == 1 else None
    if not isinstance(defs, dg.Definitions):
        return CheckResult("code location", False, f"{module_name} holds no single Definitions object")
    dg.Definitions.validate_loadable(defs)
    jobs = len(list(defs.resolve_all_job_defs()))
    assets = len(defs.resolve_all_asset_keys())
    return CheckResult("code location", True, f"{module_name} loads: {assets} asset(s), {jobs} job(s)")


def check_warehouse(warehouse: Engine) -> CheckResult:
    _require_duckdb_file(warehouse)
    with warehouse.transaction(read_only=True) as session:
        session.execute("select 1").scalar_one()
    return CheckResult("warehouse", True, f"{warehouse.display_url} answered select 1")


def check_freshness(warehouse: Engine, now: datetime, lag_hours: float) -> CheckResult:
    _require_duckdb_file(warehouse)
    with warehouse.transaction(read_only=True) as session:
        newest = session.execute(f"select max(datestamp) from {FRESHNESS_TABLE}").scalar()
    if newest is None:
        return CheckResult("freshness", False, f"{FRESHNESS_TABLE} has no rows")
    newest_day = newest.date() if isinstance(newest, datetime) else date.fromisoformat(str(newest)[:10])
    lag = partition_age(newest_day, now).total_seconds() / 3600
    detail = f"newest {FRESHNESS_TABLE} day {newest_day}, {lag:.1f} h behind (limit {lag_hours:g} h)"
    return CheckResult("freshness", lag <= lag_hours, detail)


def _require_duckdb_file(warehouse: Engine) -> None:
    # Connecting would create an empty DuckDB file and hide that the warehouse is gone.
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse.display_url} does not exist")


def _guarded(name: str, check) -> CheckResult:
    try:
        return check()
    except Exception as error:
        return CheckResult(name, False, first_line(error))


def health_document(results: list[CheckResult], now: datetime | None = None) -> dict:
    """The JSON document for a monitoring tool."""
    return {
        "ok": all(result.ok for result in results),
        "checked_at": (now or datetime.now(timezone.utc)).isoformat(),
        "checks": [asdict(result) for result in results],
    }


class HealthCheckConfig(dg.Config):
    """Limits for the health check job (empty: the environment's or the defaults)."""

    freshness_lag_hours: float | None = None
    heartbeat_max_age_seconds: float | None = None
    # A run whose process cannot be checked from here fails the check after this silence.
    silent_run_hours: float = DEFAULT_SILENT_AFTER_SECONDS / 3600


@dg.op(description="Check storage, daemons, unfinished runs, code location, warehouse and freshness; fail if any fails.")
def check_health(context: dg.OpExecutionContext, config: HealthCheckConfig, warehouse: WarehouseResource) -> bool:
    results = run_health_checks(
        context.instance,
        warehouse.engine,
        lag_hours=config.freshness_lag_hours,
        heartbeat_max_age=config.heartbeat_max_age_seconds,
        silent_after=config.silent_run_hours * 3600,
    )
    for result in results:
        (context.log.info if result.ok else context.log.error)(result.line())
    metadata = {result.name: dg.MetadataValue.text(result.line()) for result in results}
    failed = [result.name for result in results if not result.ok]
    if failed:
        raise dg.Failure(description=f"health check failed: {', '.join(failed)}", metadata=metadata)
    context.add_output_metadata(metadata)
    return True


@dg.job(description="Health check: storage, daemons, unfinished runs, code location, warehouse, freshness.",
        tags={"elt/maintenance": "health"})
def health_check_job():
    check_health()
