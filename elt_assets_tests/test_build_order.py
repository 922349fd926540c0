"""Days built in any order give the tables of one range build, or a refusal: never a green
run with wrong tables. A day of dim_user_variant, dim_user_metadata, dim_user and the
readout is computed from every earlier day, so building it before them fails and says
which days to build first; Dagster is told the same dependency, so that a change to an
earlier day reaches the later days."""

from __future__ import annotations

import dagster as dg
import pytest

from elt_assets.definitions import defs
from elt_assets_tests.support import failure_message, run_elt, warehouse_digest

FIRST, LAST = "2023-06-01", "2023-06-04"
DAYS = ["2023-06-01", "2023-06-02", "2023-06-03", "2023-06-04"]


@pytest.fixture
def clean_build(landing, tmp_path):
    """The digest of every table after one range build of the four days (the same landing
    folder: raw tables name their files)."""
    url = f"duckdb:///{tmp_path / 'clean.duckdb'}"
    run_elt(landing, url, FIRST, LAST)
    return _digest(url)


def _digest(url: str) -> dict[str, str]:
    from elt_assets_tests.support import table_digest

    return {**warehouse_digest(url), "analytics.ab_test_readout": table_digest(url, "analytics.ab_test_readout")}


def build_days(landing, url: str, order: list[str]) -> dict[str, str]:
    """Run every asset for each day in `order`, one run per day, in one instance; returns
    the failure message of each run that failed, by day."""
    refused = {}
    with dg.DagsterInstance.ephemeral() as instance:
        for day in order:
            result = run_elt(landing, url, day, instance=instance, raise_on_error=False)
            if not result.success:
                refused[day] = failure_message(result)
    return refused


@pytest.mark.parametrize(
    "order",
    [
        pytest.param(["2023-06-03", "2023-06-01", "2023-06-04", "2023-06-02"], id="shuffled"),
        pytest.param(list(reversed(DAYS)), id="reversed"),
    ],
)
def test_days_out_of_order_are_refused_until_their_past_is_built(landing, duckdb_url, clean_build, order):
    refused = build_days(landing, duckdb_url, order)
    # Every day whose earlier days were not built yet is refused, and says what to do.
    built = set()
    for day in order:
        earlier = {other for other in DAYS if other < day}
        if earlier <= built:
            assert day not in refused, refused.get(day)
            built.add(day)
        else:
            assert day in refused, f"{day} was built before {sorted(earlier - built)}"
            message = refused[day]
            assert "is computed from every earlier day" in message and "has not been built for" in message
            assert f"--partition-range {FIRST}..." in message
    # Building the refused days in order then gives exactly the tables of one range build.
    assert build_days(landing, duckdb_url, sorted(refused)) == {}
    assert _digest(duckdb_url) == clean_build


def test_a_range_run_from_a_later_start_is_not_refused(landing, duckdb_url, monkeypatch):
    """The rule counts from the first partition (ELT_START_DATE), not from the sample."""
    monkeypatch.setenv("ELT_START_DATE", "2023-06-03")
    assert run_elt(landing, duckdb_url, "2023-06-03", "2023-06-04").success


def test_warn_mode_builds_and_warns(landing, duckdb_url, monkeypatch):
    monkeypatch.setenv("ELT_BUILD_ORDER", "warn")
    selection = "key:raw_data/* or key:staging/* or key:core/dim_user_variant"
    with dg.DagsterInstance.ephemeral() as instance:
        result = run_elt(landing, duckdb_url, "2023-06-03", selection=selection, instance=instance)
        assert result.success
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("core.dim_user_variant has not been built for 2023-06-01..2023-06-02" in text for text in messages)


def test_dagster_is_told_a_day_reads_every_earlier_day():
    graph = defs.resolve_asset_graph()
    partitions = graph.get(dg.AssetKey(["core", "dim_user"])).partitions_def
    day = partitions.empty_subset().with_partition_keys(["2023-06-05"])
    for downstream, upstream in (
        ("core/dim_user", "core/dim_user_variant"),
        ("core/dim_user", "core/dim_user_metadata"),
        ("analytics/ab_test_readout", "analytics/analytics_variant_user_daily"),
    ):
        child, parent = dg.AssetKey.from_user_string(downstream), dg.AssetKey.from_user_string(upstream)
        mapping = graph.get_partition_mapping(child, parent)
        mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(day, partitions, partitions)
        assert mapped.partitions_subset.get_partition_keys() == [
            "2023-06-01", "2023-06-02", "2023-06-03", "2023-06-04", "2023-06-05"
        ], (downstream, upstream)
        # ... so that a change to an earlier day reaches every later day.
        later = mapping.get_downstream_partitions_for_partitions(
            partitions.empty_subset().with_partition_keys(["2023-06-03"]), partitions, partitions
        )
        assert "2023-06-03" in later.get_partition_keys() and "2023-06-14" in later.get_partition_keys()
    # A same-day dependency stays same-day.
    fact = graph.get_partition_mapping(
        dg.AssetKey(["analytics", "analytics_variant_user_daily"]), dg.AssetKey(["core", "fact_user_event"])
    )
    assert fact.get_upstream_mapped_partitions_result_for_partitions(
        day, partitions, partitions
    ).partitions_subset.get_partition_keys() == ["2023-06-05"]
