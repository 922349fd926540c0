"""The A/B-test readout: per-variant metrics, test-over-control lifts, and their uncertainty.

Every figure is cumulative: all the users and events the experiment has seen up to a day.
Lifts are relative (test / control - 1). Proportions (click-through rate, purchase
conversion) use statsmodels' two-sample z-test and the confidence interval of the ratio of
two independent proportions; revenue per user uses Welch's t-test, its interval divided by
the control mean. The variant split is checked for a sample ratio mismatch with a
chi-square test against 50/50.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# scipy and statsmodels are imported where they are used: they add a second to the start
# of every process that loads the code location, and only this asset needs them.

ALPHA = 0.05
# A sample ratio mismatch is flagged only on strong evidence: the split is checked every
# day, and a mismatch means the assignment itself is broken.
SRM_ALPHA = 0.001
METRICS = ("users", "impressions", "ctr", "purchase_conversion", "revenue_per_user")


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


def readout(per_user: pd.DataFrame) -> list[MetricRow]:
    """The readout from one row per assigned user (variant_id, impressions, clicks, purchases, revenue)."""
    control = per_user[per_user["variant_id"] == "control"]
    test = per_user[per_user["variant_id"] == "test"]
    if control.empty or test.empty:
        raise ValueError("the readout needs users in both control and test")
    rows = [_sample_ratio(len(control), len(test))]
    imps_c, imps_t = float(control["impressions"].sum()), float(test["impressions"].sum())
    rows.append(MetricRow("impressions", imps_c, imps_t, imps_t / imps_c - 1, None, None, None, None))
    rows.append(
        _proportion("ctr", float(control["clicks"].sum()), imps_c, float(test["clicks"].sum()), imps_t)
    )
    rows.append(
        _proportion(
            "purchase_conversion",
            float((control["purchases"] > 0).sum()),
            float(len(control)),
            float((test["purchases"] > 0).sum()),
            float(len(test)),
        )
    )
    rows.append(_mean_difference("revenue_per_user", control["revenue"].astype(float), test["revenue"].astype(float)))
    return rows


def _sample_ratio(control_users: int, test_users: int) -> MetricRow:
    from scipy import stats

    p_value = float(stats.chisquare([control_users, test_users]).pvalue)
    return MetricRow(
        "users", control_users, test_users, test_users / control_users - 1, None, None, p_value, p_value < SRM_ALPHA
    )


def _proportion(metric: str, hits_c: float, total_c: float, hits_t: float, total_t: float) -> MetricRow:
    from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

    rate_c, rate_t = hits_c / total_c, hits_t / total_t
    if hits_c == 0 or hits_t == 0:
        return MetricRow(metric, rate_c, rate_t, None, None, None, None, None)
    _statistic, p_value = proportions_ztest([hits_t, hits_c], [total_t, total_c])
    low, high = confint_proportions_2indep(hits_t, total_t, hits_c, total_c, compare="ratio", alpha=ALPHA)
    return MetricRow(
        metric, rate_c, rate_t, rate_t / rate_c - 1, float(low) - 1, float(high) - 1, float(p_value), bool(p_value < ALPHA)
    )


def _mean_difference(metric: str, control: pd.Series, test: pd.Series) -> MetricRow:
    from scipy import stats

    mean_c, mean_t = float(control.mean()), float(test.mean())
    if mean_c == 0 or len(control) < 2 or len(test) < 2:
        return MetricRow(metric, mean_c, mean_t, None, None, None, None, None)
    result = stats.ttest_ind(test, control, equal_var=False)
    interval = result.confidence_interval(confidence_level=1 - ALPHA)
    return MetricRow(
        metric,
        mean_c,
        mean_t,
        mean_t / mean_c - 1,
        float(interval.low) / mean_c,
        float(interval.high) / mean_c,
        float(result.pvalue),
        bool(result.pvalue < ALPHA),
    )


def ctr_chart_markdown(daily: pd.DataFrame, title: str) -> str:
    """A PNG line chart of daily click-through rate per variant, as a markdown image."""
    import matplotlib
    import matplotlib.dates
    import pandas as pd

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 3.2), dpi=100)
    for variant, rows in daily.groupby("variant_id"):
        axes.plot(pd.to_datetime(rows["day"]), rows["clicks"] / rows["impressions"], marker="o", label=variant)
    axes.set_title(title)
    axes.set_ylabel("click-through rate")
    axes.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axes.xaxis.set_major_locator(matplotlib.dates.AutoDateLocator(minticks=3, maxticks=10))
    axes.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%Y-%m-%d"))
    axes.grid(alpha=0.3)
    axes.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{title}](data:image/png;base64,{encoded})"
