"""The A/B-test readout: per-variant metrics, test-over-control lifts, and their uncertainty.

Every figure is cumulative: all the users and events the experiment has seen up to a day.
Lifts are relative (test / control - 1). Proportions (click-through rate, purchase
conversion) use the two-sample z-test with the pooled proportion and the log interval of
the ratio of two independent proportions with half a count added to each cell (what
statsmodels calls `proportions_ztest` and `confint_proportions_2indep(compare="ratio")`);
revenue per user uses Welch's t-test, its interval divided by the control mean. The
variant split is checked for a sample ratio mismatch with a chi-square test against
50/50. Everything is computed from a few sums per variant (`VariantTotals`), so the
readout never holds one row per user in Python; the tests check the figures against
statsmodels and scipy.stats. `table_cells` writes a row the way the asset's table shows it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from elt_assets.readout.chart import rate_chart_svg, svg_markdown_image
from elt_assets.readout.distributions import (
    chi_square_sf,
    normal_quantile,
    normal_two_sided_p,
    t_quantile,
    t_two_sided_p,
)

ALPHA = 0.05
# A sample ratio mismatch is flagged only on strong evidence: the split is checked every
# day, and a mismatch means the assignment itself is broken.
SRM_ALPHA = 0.001
METRICS = ("users", "impressions", "ctr", "purchase_conversion", "revenue_per_user")
# How the readout table writes each metric's values: counts whole, rates as percents.
VALUE_FORMATS = {
    "users": "{:,.0f}",
    "impressions": "{:,.0f}",
    "ctr": "{:.2%}",
    "purchase_conversion": "{:.2%}",
    "revenue_per_user": "{:,.2f}",
}
# p-values are written with four decimals, and "<0.0001" below that: more digits are
# noise, not evidence.
P_VALUE_DECIMALS = 4
TABLE_COLUMNS = ("metric", "control", "test", "lift [95% CI]", "p-value", "flag")


@dataclass(frozen=True)
class VariantTotals:
    """One variant's users and their cumulative activity, summed over the users."""

    users: int
    impressions: float
    clicks: float
    purchasers: int  # users with at least one purchase
    revenue: float
    revenue_squares: float  # sum over users of (the user's revenue) squared

    @property
    def revenue_variance(self) -> float:
        """Sample variance (n - 1) of revenue per user."""
        if self.users < 2:
            return math.nan
        return max(self.revenue_squares - self.revenue**2 / self.users, 0.0) / (self.users - 1)


@dataclass(frozen=True)
class MetricRow:
    """One metric of the readout: both variants' values, the lift, its interval, p-value."""

    metric: str
    control_value: float
    test_value: float
    lift: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    p_value: float | None
    flagged: bool | None


def readout(by_variant: Mapping[str, VariantTotals]) -> list[MetricRow]:
    """The readout from the control and test groups' totals."""
    control, test = by_variant.get("control"), by_variant.get("test")
    if not control or not test or not control.users or not test.users:
        raise ValueError("the readout needs users in both control and test")
    return [
        _sample_ratio(control.users, test.users),
        MetricRow(
            "impressions", control.impressions, test.impressions,
            test.impressions / control.impressions - 1 if control.impressions else None,
            None, None, None, None,
        ),
        _proportion("ctr", control.clicks, control.impressions, test.clicks, test.impressions),
        _proportion("purchase_conversion", control.purchasers, control.users, test.purchasers, test.users),
        _mean_difference("revenue_per_user", control, test),
    ]


def _sample_ratio(control_users: int, test_users: int) -> MetricRow:
    expected = (control_users + test_users) / 2
    statistic = ((control_users - expected) ** 2 + (test_users - expected) ** 2) / expected
    p_value = chi_square_sf(statistic, 1)
    return MetricRow(
        "users", control_users, test_users, test_users / control_users - 1, None, None, p_value, p_value < SRM_ALPHA
    )


def _proportion(metric: str, hits_c: float, total_c: float, hits_t: float, total_t: float) -> MetricRow:
    rate_c = hits_c / total_c if total_c else math.nan
    rate_t = hits_t / total_t if total_t else math.nan
    if hits_c == 0 or hits_t == 0:
        return MetricRow(metric, rate_c, rate_t, None, None, None, None, None)
    pooled = (hits_c + hits_t) / (total_c + total_t)
    variance = pooled * (1 - pooled) * (1 / total_c + 1 / total_t)
    # Every unit a hit (everyone bought, after long enough): no spread, no test.
    p_value = normal_two_sided_p((rate_t - rate_c) / math.sqrt(variance)) if variance > 0 else None
    # Log interval of the ratio, each count and total increased by one half.
    hits_t_, total_t_, hits_c_, total_c_ = hits_t + 0.5, total_t + 0.5, hits_c + 0.5, total_c + 0.5
    log_ratio = math.log((hits_t_ / total_t_) / (hits_c_ / total_c_))
    half_width = normal_quantile(1 - ALPHA / 2) * math.sqrt(1 / hits_t_ - 1 / total_t_ + 1 / hits_c_ - 1 / total_c_)
    return MetricRow(
        metric,
        rate_c,
        rate_t,
        rate_t / rate_c - 1,
        math.exp(log_ratio - half_width) - 1,
        math.exp(log_ratio + half_width) - 1,
        p_value,
        None if p_value is None else p_value < ALPHA,
    )


def _mean_difference(metric: str, control: VariantTotals, test: VariantTotals) -> MetricRow:
    mean_c, mean_t = control.revenue / control.users, test.revenue / test.users
    if mean_c == 0 or control.users < 2 or test.users < 2:
        return MetricRow(metric, mean_c, mean_t, None, None, None, None, None)
    share_c, share_t = control.revenue_variance / control.users, test.revenue_variance / test.users
    standard_error = math.sqrt(share_c + share_t)
    if standard_error == 0:
        return MetricRow(metric, mean_c, mean_t, mean_t / mean_c - 1, None, None, None, None)
    # Welch-Satterthwaite degrees of freedom.
    freedom = (share_c + share_t) ** 2 / (share_c**2 / (control.users - 1) + share_t**2 / (test.users - 1))
    difference = mean_t - mean_c
    p_value = t_two_sided_p(difference / standard_error, freedom)
    half_width = t_quantile(1 - ALPHA / 2, freedom) * standard_error
    return MetricRow(
        metric,
        mean_c,
        mean_t,
        mean_t / mean_c - 1,
        (difference - half_width) / mean_c,
        (difference + half_width) / mean_c,
        p_value,
        p_value < ALPHA,
    )


def table_cells(row: MetricRow) -> tuple[str, ...]:
    """A readout row as the table shows it (TABLE_COLUMNS): fixed-point text, no exponents.

    The table must fit the Dagster UI's metadata panel on a 1440 px screen, so a cell may
    wrap where it reads well: a metric's name between its words ("revenue per user"),
    the lift's cell between the lift and its interval, never inside the interval (a
    no-break space after its comma)."""
    value_format = VALUE_FORMATS.get(row.metric, "{:,.4f}")

    def value(number: float | None) -> str:
        return value_format.format(number) if _finite(number) else "–"

    lift = _signed_percent(row.lift)
    if _finite(row.lift_ci_low) and _finite(row.lift_ci_high):
        lift += f" [{_signed_percent(row.lift_ci_low)},\N{NO-BREAK SPACE}{_signed_percent(row.lift_ci_high)}]"
    if row.flagged is None:
        flag = "–"
    elif row.metric == "users":
        flag = "ratio mismatch" if row.flagged else "split ok"
    else:
        flag = "significant" if row.flagged else "not significant"
    metric = row.metric.replace("_", " ")
    return metric, value(row.control_value), value(row.test_value), lift, p_value_text(row.p_value), flag


def p_value_text(p_value: float | None) -> str:
    """Four decimals, "<0.0001" below that; "–" when there is no test."""
    if not _finite(p_value):
        return "–"
    smallest = 10.0**-P_VALUE_DECIMALS
    return f"<{smallest:.{P_VALUE_DECIMALS}f}" if p_value < smallest else f"{p_value:.{P_VALUE_DECIMALS}f}"


def _signed_percent(fraction: float | None) -> str:
    if not _finite(fraction):
        return "–"
    text = f"{fraction:+.1%}"
    return "+0.0%" if text == "-0.0%" else text  # a lift that rounds to nothing has no sign


def _finite(number: float | None) -> bool:
    return number is not None and math.isfinite(number)


def ctr_chart_markdown(daily: Sequence[tuple[date, str, float, float]], title: str) -> str:
    """A line chart of daily click-through rate per variant, as a markdown image.

    `daily` holds (day, variant, clicks, impressions) rows.
    """
    series: dict[str, list[tuple[date, float]]] = {}
    for day, variant, clicks, impressions in daily:
        if impressions:
            series.setdefault(variant, []).append((day, float(clicks) / float(impressions)))
    return svg_markdown_image(rate_chart_svg(title, series, "click-through rate"), title)
