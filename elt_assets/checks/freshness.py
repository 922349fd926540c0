"""Freshness of the raw tables: is the newest day recent enough?

Two views, one setting (`ELT_FRESHNESS_LAG_HOURS`, default 36):

- A `FreshnessPolicy` on each raw asset (Dagster's current freshness API): the freshness
  daemon marks the asset WARN when its last materialization is older than the lag and
  FAIL at twice the lag. It needs no run, and the asset pages show its state.
- A `newest_partition_fresh` check on each raw asset, because a policy measures the time
  since the last materialization of *any* partition, and a backfill of old days makes a
  stale table look fresh. The check asks for the newest materialized day instead: it
  warns when the end of that day lies more than the lag in the past. It runs after the
  raw asset in every run that builds it, and from the UI on demand.
"""

from datetime import date, datetime, timedelta, timezone

import dagster as dg

from elt_assets.models.registry import registry
from elt_assets.settings import FRESHNESS_LAG_ENV, freshness_lag

CHECK_NAME = "newest_partition_fresh"


def raw_freshness_policy() -> dg.FreshnessPolicy:
    """Warn after the lag without a materialization, fail after twice the lag."""
    lag = freshness_lag()
    return dg.FreshnessPolicy.time_window(fail_window=2 * lag, warn_window=lag)


def partition_age(newest_day: date, now: datetime) -> timedelta:
    """How long ago the newest daily partition ended (its day is complete at midnight UTC)."""
    end = datetime.combine(newest_day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)
    return now - end


def newest_partition_result(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, now: datetime
) -> dg.AssetCheckResult:
    """Warn when the asset's newest materialized day ended longer ago than the lag."""
    lag = freshness_lag()
    partitions = instance.get_materialized_partitions(asset_key)
    metadata = {"lag_hours": dg.MetadataValue.float(lag.total_seconds() / 3600)}
    if not partitions:
        return dg.AssetCheckResult(
            asset_key=asset_key,
            check_name=CHECK_NAME,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description="no day has been materialized yet",
            metadata=metadata,
        )
    newest = date.fromisoformat(max(partitions))
    age = partition_age(newest, now)
    metadata.update(
        newest_partition=dg.MetadataValue.text(newest.isoformat()),
        age_hours=dg.MetadataValue.float(round(age.total_seconds() / 3600, 1)),
    )
    passed = age <= lag
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=CHECK_NAME,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"newest day {newest} ended {age.total_seconds() / 3600:.1f} h ago "
            f"({'within' if passed else 'beyond'} the {lag.total_seconds() / 3600:g} h lag)"
        ),
        metadata=metadata,
    )


def build_freshness_checks() -> list[dg.AssetChecksDefinition]:
    """The newest-partition check of every raw table, all evaluated in one step."""
    specs = [
        dg.AssetCheckSpec(
            name=CHECK_NAME,
            asset=dg.AssetKey([model.schema, model.name]),
            description=(
                f"The newest materialized day ended at most {FRESHNESS_LAG_ENV} hours ago "
                "(default 36) (warn). Warns: late files delay the tables, they do not make them wrong."
            ),
            metadata={"kind": "freshness", "severity": "warn"},
        )
        for model in registry().in_layer("raw_data")
    ]

    # One step for the three tables: each check of its own would cost a step per run.
    @dg.multi_asset_check(specs=specs, can_subset=True, name="raw_data_freshness")
    def _freshness(context: dg.AssetCheckExecutionContext):
        now = datetime.now(timezone.utc)
        for check_key in sorted(context.selected_asset_check_keys, key=str):
            yield newest_partition_result(context.instance, check_key.asset_key, now)

    return [_freshness]
