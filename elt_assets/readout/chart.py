"""A small SVG line chart of daily rates, for asset metadata shown in the Dagster UI.

One line per series over days, a percent y axis, a legend. Written as SVG text: the
readout draws one chart per run, and a plotting library's import would cost more than
everything else the readout does on an incremental day.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from datetime import date
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 700, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 120, 36, 64
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
MAX_DAY_LABELS = 8


def rate_chart_svg(title: str, series: Mapping[str, Sequence[tuple[date, float]]], y_label: str) -> str:
    """The SVG document of one line per series; y values are rates shown as percents."""
    points = [point for values in series.values() for point in values]
    if not points:
        raise ValueError("a chart needs at least one point")
    days = sorted({day for day, _rate in points})
    low, high = _y_range([rate for _day, rate in points])
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max((days[-1] - days[0]).days, 1)

    def x(day: date) -> float:
        offset = (day - days[0]).days if len(days) > 1 else span / 2
        return LEFT + plot_width * offset / span

    def y(rate: float) -> float:
        return TOP + plot_height * (1 - (rate - low) / (high - low))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<text transform="translate(14 {TOP + plot_height / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>",
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_width}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick * 100:.{_decimals(low, high)}f}%</text>'
        )
    step = max(1, math.ceil(len(days) / MAX_DAY_LABELS))
    for day in days[::step]:
        parts.append(
            f'<text transform="translate({x(day):.1f} {TOP + plot_height + 14}) rotate(-30)" '
            f'text-anchor="end">{day.isoformat()}</text>'
        )
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}" fill="none" stroke="#888"/>'
    )
    for index, (name, values) in enumerate(sorted(series.items())):
        color = COLORS[index % len(COLORS)]
        ordered = sorted(values)
        path = " ".join(f"{x(day):.1f},{y(rate):.1f}" for day, rate in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        parts.extend(
            f'<circle cx="{x(day):.1f}" cy="{y(rate):.1f}" r="3" fill="{color}"/>' for day, rate in ordered
        )
        legend_y = TOP + 10 + 18 * index
        parts.append(
            f'<line x1="{WIDTH - RIGHT + 14}" x2="{WIDTH - RIGHT + 34}" y1="{legend_y}" y2="{legend_y}" '
            f'stroke="{color}" stroke-width="2"/>'
            f'<text x="{WIDTH - RIGHT + 40}" y="{legend_y + 4}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_markdown_image(svg: str, alt: str) -> str:
    """The SVG as a markdown image with a data URL, which the Dagster UI renders."""
    encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f"![{alt}](data:image/svg+xml;base64,{encoded})"


def _y_range(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    margin = (high - low) * 0.1 or max(abs(high) * 0.1, 0.001)
    return max(low - margin, 0.0) if low >= 0 else low - margin, high + margin


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values between low and high, about `count` of them."""
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(size * magnitude for size in (1, 2, 2.5, 5, 10) if size * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + step * index for index in range(int((high - first) / step) + 1)]


def _decimals(low: float, high: float) -> int:
    """Decimals of the percent labels, enough to tell the ticks apart."""
    raw_percent = (high - low) * 100 / 5
    return max(0, min(3, -math.floor(math.log10(raw_percent)) + 1)) if raw_percent > 0 else 1
