"""The A/B-test readout, checked against an independent computation on planted effects."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from elt_assets.generator import generate_landing
from elt_assets_tests.support import rows, run_elt

LAST_DAY = "2023-06-05"


def _build(root: Path, **knobs) -> tuple[Path, str]:
    landing = root / "landing"
    generate_landing(
        landing, users=6000, days=5, events_per_day=36000, seed=21, late_user_share=0.0,
        reassignments=0, metadata_changes=0, null_datestamp_rows=0, **knobs,
    )
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    run_elt(landing, url, "2023-06-01", LAST_DAY)
    return landing, url


def _readout(url: str, day: str = LAST_DAY) -> dict[str, tuple]:
    found = rows(url, "analytics.ab_test_readout", f"where as_of_date = date '{day}'")
    return {row[1]: row[2:] for row in found}


def _independent_ctr(landing: Path) -> dict[str, float]:
    """Click-through rate per variant straight from the landing files, with pandas."""
    events = pd.concat(pd.read_csv(path) for path in sorted((landing / "user_event").glob("*.csv")))
    variants = pd.concat(pd.read_csv(path) for path in sorted((landing / "user_variant").glob("*.csv")))
    joined = events.merge(variants.drop_duplicates("user_id"), on="user_id")
    grouped = joined.groupby("variant_id")
    return (grouped["clicked"].sum() / grouped["item_id"].count()).to_dict()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("planted"), ctr={"control": 0.10, "test": 0.12})


def test_a_planted_lift_is_found_inside_its_interval(planted):
    landing, url = planted
    control, test, lift, low, high, p_value, flagged = _readout(url)["ctr"]
    truth = 0.12 / 0.10 - 1
    assert low < truth < high
    assert low > 0
    assert p_value < 0.001 and flagged is True
    independent = _independent_ctr(landing)
    assert control == pytest.approx(independent["control"], rel=1e-12)
    assert test == pytest.approx(independent["test"], rel=1e-12)
    assert lift == pytest.approx(independent["test"] / independent["control"] - 1, rel=1e-9)


def test_the_readout_is_cumulative_day_by_day(planted):
    _landing, url = planted
    impressions = [_readout(url, f"2023-06-0{day}")["impressions"] for day in range(1, 6)]
    totals = [row[0] + row[1] for row in impressions]
    assert totals == sorted(totals) and totals[0] < totals[-1]
    daily = rows(url, "analytics.analytics_variant_user_daily")
    assert totals[-1] == sum(row[5] for row in daily)


def test_an_a_a_experiment_does_not_flag(tmp_path):
    _landing, url = _build(tmp_path, ctr={"control": 0.10, "test": 0.10})
    readout = _readout(url)
    _control, _test, _lift, low, high, p_value, flagged = readout["ctr"]
    assert low < 0 < high
    assert p_value > 0.05 and flagged is False
    assert readout["users"][-1] is False  # no sample ratio mismatch


def test_a_skewed_split_is_a_sample_ratio_mismatch(tmp_path):
    _landing, url = _build(tmp_path, test_share=0.1)
    control_users, test_users, _lift, _low, _high, p_value, flagged = _readout(url)["users"]
    assert test_users < control_users / 5
    assert p_value < 0.001 and flagged is True
