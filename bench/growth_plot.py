"""The growth plot of bench/run.py --growth: wall seconds against event rows, one line per
contender (floor, dbt peer, backfill) over the event multiples, and the same contenders'
points at ten times the users drawn hollow. Plain SVG, written by hand: no plotting
library is needed for a few points."""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 180, 24, 52
SERIES = (("floor", "floor (SQL by hand)", "#6b7280"), ("dbt", "dbt-duckdb peer", "#d97706"),
          ("backfill", "elt-assets backfill", "#2563eb"))


def _ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top`, about `count` steps."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [round(step * index, 10) for index in range(math.ceil(top / step - 1e-9) + 1)]


def growth_svg(runs: list[dict]) -> str:
    """The plot of the growth runs (as in growth-*.json's "runs")."""
    events = [run for run in runs if run["kind"] == "events"]
    users = [run for run in runs if run["kind"] == "users"]
    x_ticks = _ticks(max(run["event_rows"] for run in runs) / 1e6)
    y_ticks = _ticks(max(run[name] or 0 for run in runs for name, _, _ in SERIES))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(rows: int) -> float:
        return LEFT + plot_w * (rows / 1e6) / x_ticks[-1]

    def y(seconds: float) -> float:
        return TOP + plot_h * (1 - seconds / y_ticks[-1])

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for value in y_ticks:
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
    for value in x_ticks:
        parts.append(f'<text x="{x(value * 1e6):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{value:g}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 12}" text-anchor="middle">event rows (millions)</text>')
    parts.append(f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">wall seconds</text>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#111827"/>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" stroke="#111827"/>')
    for index, (name, label, color) in enumerate(SERIES):
        points = [(x(run["event_rows"]), y(run[name])) for run in events if run[name] is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{color}"/>')
        for run in users:
            if run[name] is not None:
                parts.append(f'<circle cx="{x(run["event_rows"]):.1f}" cy="{y(run[name]):.1f}" r="5" '
                             f'fill="white" stroke="{color}" stroke-width="2"/>')
        legend_y = TOP + 10 + 20 * index
        parts.append(f'<line x1="{WIDTH - RIGHT + 12}" x2="{WIDTH - RIGHT + 32}" y1="{legend_y}" y2="{legend_y}" '
                     f'stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 38}" y="{legend_y + 4}">{escape(label)}</text>')
    if users:
        legend_y = TOP + 10 + 20 * len(SERIES)
        parts.append(f'<circle cx="{WIDTH - RIGHT + 22}" cy="{legend_y}" r="5" fill="white" stroke="#111827" stroke-width="2"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 38}" y="{legend_y + 4}">{users[0]["users"]:,} users</text>')
        parts.append(f'<text x="{WIDTH - RIGHT + 38}" y="{legend_y + 20}">(filled: {events[0]["users"]:,})</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
