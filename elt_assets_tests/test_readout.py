"""The A/B-test readout, checked against an independent computation on planted effects,
and what each day's materialization shows of it."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from elt_assets.readout.distributions import chi_square_sf
from elt_assets.landing.generator import generate_landing
from elt_assets.readout.statistics import MetricRow, VariantTotals, readout, table_cells
from elt_assets_tests.support import rows, run_elt

LAST_DAY = "2023-06-05"


def _build(root: Path, **knobs) -> tuple[Path, str, dg.ExecuteInProcessResult]:
    landing = root / "landing"
    generate_landing(
        landing, users=6000, days=5, events_per_day=36000, seed=21, late_user_share=0.0,
        reassignments=0, metadata_changes=0, null_datestamp_rows=0, **knobs,
    )
    url = f"duckdb:///{root / 'warehouse.duckdb'}"
    return landing, url, run_elt(landing, url, "2023-06-01", LAST_DAY)


def _readout(url: str, day: str = LAST_DAY) -> dict[str, tuple]:
    found = rows(url, "analytics.ab_test_readout", f"where as_of_date = date '{day}'")
    return {row[1]: row[2:] for row in found}


def _independent_ctr(landing: Path) -> dict[str, float]:
    """Click-through rate per variant straight from the landing files, with pandas.

    As in the lecture's summary, an impression is a distinct item shown to a user on a day
    (an item shown twice counts once) and a click is a distinct item clicked; events of
    users never assigned a variant are not in the experiment."""
    events = pd.concat(pd.read_csv(path) for path in sorted((landing / "user_event").glob("*.csv")))
    variants = pd.concat(pd.read_csv(path) for path in sorted((landing / "user_variant").glob("*.csv")))
    events["clicked"] = (events["clicked"] != 0).astype(int)
    items = events.groupby(["user_id", "datestamp", "item_id"], as_index=False)["clicked"].max()
    joined = items.merge(variants.drop_duplicates("user_id"), on="user_id")
    grouped = joined.groupby("variant_id")
    return (grouped["clicked"].sum() / grouped["item_id"].count()).to_dict()


def _assigned_impressions(url: str) -> int:
    """Impressions of assigned users in the analytics table: what the readout counts."""
    return sum(row[5] for row in rows(url, "analytics.analytics_variant_user_daily") if row[0] is not None)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("planted"), ctr={"control": 0.10, "test": 0.12})


def test_a_planted_lift_is_found_inside_its_interval(planted):
    landing, url, _result = planted
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
    _landing, url, _result = planted
    impressions = [_readout(url, f"2023-06-0{day}")["impressions"] for day in range(1, 6)]
    totals = [row[0] + row[1] for row in impressions]
    assert totals == sorted(totals) and totals[0] < totals[-1]
    assert totals[-1] == _assigned_impressions(url)


def test_late_events_for_an_earlier_day_reach_the_later_readouts(tmp_path):
    """Day 5 is built after day 2 got late events while day 4's totals were not rebuilt."""
    landing, url, _result = _build(tmp_path)
    path = landing / "user_event" / "2023-06-02.csv"
    header, *lines = path.read_text().splitlines()
    late = []
    for line in lines[:500]:  # the same users see new items that day
        user_id, datestamp, item_id, *rest = line.split(",")
        late.append(",".join([user_id, datestamp, str(int(item_id) + 1_000_000), *rest]))
    path.write_text("\n".join([header, *lines, *late]) + "\n")
    run_elt(landing, url, "2023-06-02")
    run_elt(landing, url, LAST_DAY)
    control, test = _readout(url)["impressions"][:2]
    assert control + test == _assigned_impressions(url)


def test_an_a_a_experiment_does_not_flag(tmp_path):
    _landing, url, _result = _build(tmp_path, ctr={"control": 0.10, "test": 0.10})
    readout = _readout(url)
    _control, _test, _lift, low, high, p_value, flagged = readout["ctr"]
    assert low < 0 < high
    assert p_value > 0.05 and flagged is False
    assert readout["users"][-1] is False  # no sample ratio mismatch


def test_a_skewed_split_is_a_sample_ratio_mismatch(tmp_path):
    _landing, url, _result = _build(tmp_path, test_share=0.1)
    control_users, test_users, _lift, _low, _high, p_value, flagged = _readout(url)["users"]
    assert test_users < control_users / 5
    assert p_value < 0.001 and flagged is True


def _readout_materializations(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """Each day's materialization of the readout: its metadata by partition key."""
    return {
        event.materialization.partition: event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key.path == ["analytics", "ab_test_readout"]
    }


# A number in scientific notation, e.g. 2.092e+04 or 2.519e-11.
EXPONENT = re.compile(r"\de[+-]?\d")


def _table_rows(markdown: str) -> tuple[list[str], dict[str, list[str]]]:
    """A markdown table's header cells, and each row's cells by its first cell."""
    header, _rule, *lines = markdown.splitlines()

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip().strip("|").split("|")]

    return cells(header), {cells(line)[0]: cells(line) for line in lines}


def test_the_readout_table_is_narrow_and_fixed_point(planted):
    _landing, _url, result = planted
    by_day = _readout_materializations(result)
    assert sorted(by_day) == [f"2023-06-0{day}" for day in range(1, 6)]
    for day, metadata in by_day.items():
        markdown = metadata["readout"].value
        header, table = _table_rows(markdown)
        assert header == ["metric", "control", "test", "lift [95% CI]", "p-value", "flag"]
        assert list(table) == ["users", "impressions", "ctr", "purchase conversion", "revenue per user"], day
        assert all(len(cells) == len(header) for cells in table.values())
        assert not EXPONENT.search(markdown), day
        # The interval shares the lift's column; rates are percents, counts whole.
        assert re.fullmatch(r"\+\d+\.\d% \[\+\d+\.\d%,\s\+\d+\.\d%\]", table["ctr"][3]), table["ctr"]
        assert re.fullmatch(r"\d+\.\d\d%", table["ctr"][1]) and re.fullmatch(r"[\d,]+", table["users"][1])
        assert "preview" not in metadata  # the readable table replaces the raw rows
    # A planted 20% lift on 5 days of traffic: far below what four decimals show.
    assert _table_rows(by_day[LAST_DAY]["readout"].value)[1]["ctr"][4:] == ["<0.0001", "significant"]


def test_each_day_carries_its_figures_as_numbers(planted):
    """The numbers the asset's plots chart: the same as that day's rows in the warehouse."""
    _landing, url, result = planted
    for day, metadata in _readout_materializations(result).items():
        table = _readout(url, day)
        for metric, (control, test, lift, _low, _high, p_value, _flagged) in table.items():
            for suffix, value in (("control", control), ("test", test), ("lift", lift), ("p_value", p_value)):
                key = f"{metric}_{suffix}"
                if value is None:
                    assert key not in metadata, (day, key)
                else:
                    assert isinstance(metadata[key], dg.FloatMetadataValue), (day, key)
                    assert metadata[key].value == pytest.approx(value, rel=1e-12), (day, key)
        for key in ("ctr_control", "ctr_test", "ctr_lift", "ctr_p_value", "purchase_conversion_test",
                    "revenue_per_user_control", "revenue_per_user_lift", "users_p_value"):
            assert key in metadata, (day, key)


def test_the_table_writes_extreme_values_without_exponents():
    rows = [
        MetricRow("users", 20920, 20811, -0.0052, None, None, 0.59, False),
        MetricRow("impressions", 2.092e7, 2.1e7, 0.0038, None, None, None, None),
        MetricRow("ctr", 0.10002, 0.12, 0.1997, 0.1814, 0.2183, 2.519e-11, True),
        MetricRow("revenue_per_user", 1.5e-5, 123456.789, None, None, None, None, None),
    ]
    cells = [tuple(cell.replace("\N{NO-BREAK SPACE}", " ") for cell in table_cells(row)) for row in rows]
    assert cells == [
        ("users", "20,920", "20,811", "-0.5%", "0.5900", "split ok"),
        ("impressions", "20,920,000", "21,000,000", "+0.4%", "–", "–"),
        ("ctr", "10.00%", "12.00%", "+20.0% [+18.1%, +21.8%]", "<0.0001", "significant"),
        ("revenue per user", "0.00", "123,456.79", "–", "–", "–"),
    ]


def _totals(users: pd.DataFrame) -> VariantTotals:
    return VariantTotals(
        users=len(users),
        impressions=float(users["impressions"].sum()),
        clicks=float(users["clicks"].sum()),
        purchasers=int((users["purchases"] > 0).sum()),
        revenue=float(users["revenue"].sum()),
        revenue_squares=float((users["revenue"].astype(float) ** 2).sum()),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_statistics_match_statsmodels_and_scipy(seed):
    """Our closed forms from per-variant sums against the libraries on per-user rows."""
    from scipy import stats
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    generator = np.random.default_rng(seed)

    def users(n: int, ctr: float, spend: float) -> pd.DataFrame:
        impressions = generator.integers(1, 40, n)
        purchases = generator.binomial(2, 0.05, n)
        return pd.DataFrame({
            "impressions": impressions,
            "clicks": generator.binomial(impressions, ctr),
            "purchases": purchases,
            "revenue": purchases * generator.integers(1, int(spend), n),
        })

    control, test = users(3000 + seed * 7, 0.10, 90), users(2950, 0.11, 110)
    result = {row.metric: row for row in readout({"control": _totals(control), "test": _totals(test)})}

    users_row = result["users"]
    assert users_row.p_value == pytest.approx(stats.chisquare([len(control), len(test)]).pvalue, rel=1e-9)

    for metric, hits, totals in (
        ("ctr", "clicks", ("impressions", "impressions")),
        ("purchase_conversion", None, None),
    ):
        if hits:
            counts = [float(test[hits].sum()), float(control[hits].sum())]
            nobs = [float(test["impressions"].sum()), float(control["impressions"].sum())]
        else:
            counts = [float((test["purchases"] > 0).sum()), float((control["purchases"] > 0).sum())]
            nobs = [float(len(test)), float(len(control))]
        _z, p_value = proportions_ztest(counts, nobs)
        low, high = confint_proportions_2indep(counts[0], nobs[0], counts[1], nobs[1], compare="ratio")
        row = result[metric]
        assert row.p_value == pytest.approx(p_value, rel=1e-9)
        assert row.lift_ci_low == pytest.approx(low - 1, rel=1e-9)
        assert row.lift_ci_high == pytest.approx(high - 1, rel=1e-9)

    welch = stats.ttest_ind(test["revenue"], control["revenue"], equal_var=False)
    interval = welch.confidence_interval(confidence_level=0.95)
    mean_c = control["revenue"].mean()
    row = result["revenue_per_user"]
    assert row.p_value == pytest.approx(welch.pvalue, rel=1e-7)
    assert row.lift_ci_low == pytest.approx(interval.low / mean_c, rel=1e-7)
    assert row.lift_ci_high == pytest.approx(interval.high / mean_c, rel=1e-7)


@pytest.mark.parametrize("freedom", [1, 2, 5])
def test_the_chi_square_tail_matches_scipy(freedom):
    from scipy import stats

    for statistic in (0.0, 0.5, 3.84, 12.0, 40.0):
        assert chi_square_sf(statistic, freedom) == pytest.approx(stats.chi2.sf(statistic, freedom), rel=1e-9, abs=1e-300)


def test_the_chart_is_an_svg_with_one_line_per_variant():
    from datetime import date, timedelta
    from xml.etree import ElementTree

    from elt_assets.readout.chart import rate_chart_svg

    days = [date(2023, 6, 1) + timedelta(days=offset) for offset in range(12)]
    svg = rate_chart_svg(
        "CTR <by variant>",
        {"control": [(day, 0.10) for day in days], "test & co": [(day, 0.12) for day in days[:1]]},
        "click-through rate",
    )
    root = ElementTree.fromstring(svg)  # well-formed, names escaped
    namespace = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{namespace}polyline")) == 2
    assert len(root.findall(f"{namespace}circle")) == 13
    texts = [element.text for element in root.iter(f"{namespace}text")]
    assert "CTR <by variant>" in texts and "test & co" in texts
    assert "10.00%" in texts and "12.00%" in texts


def test_a_metric_without_spread_has_no_p_value():
    """After enough days every user has bought: conversion is 100% in both groups."""
    everyone = VariantTotals(users=500, impressions=9000, clicks=900, purchasers=500, revenue=50_000, revenue_squares=6e6)
    rows_by_metric = {row.metric: row for row in readout({"control": everyone, "test": everyone})}
    conversion = rows_by_metric["purchase_conversion"]
    assert conversion.control_value == conversion.test_value == 1.0
    assert conversion.lift == 0 and conversion.p_value is None and conversion.flagged is None
    assert rows_by_metric["ctr"].p_value == pytest.approx(1.0)
