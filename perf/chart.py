"""The benchmark's picture: throughput per workload and open-loop latency, as SVG.

Hand-written SVG, so that drawing needs no plotting library: a panel of
grouped bars (median requests/s of each server, per workload; a server
that did not run a workload has no bar there); when open-loop runs were
made, one small panel per open-loop row with each server's latency
percentiles on a logarithmic axis; and grouped bars of worker CPU per
request. Every bar is a ``<rect class="bar">`` with ``data-metric``
(``rps``, ``cpu_us``), ``data-workload`` and ``data-server`` attributes
and a ``<title>`` (a tooltip in a browser), which is also what the tests
count.

    svg = render_svg(rows, open_loop, title="...")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from perf.report import (
    SERVICE,
    SIDE_LABELS,
    ConstantRateRow,
    SideResult,
    WorkloadRow,
    roles_of,
)

__all__ = ["COLORS", "PERCENTILES", "nice_ceiling", "render_svg"]

COLORS = {SERVICE: "#3366cc", "fastapi": "#2ca02c", "reference": "#ee7733"}
FALLBACK_COLOR = "#888888"
PERCENTILES = (("p50", "p50_ms"), ("p90", "p90_ms"), ("p99", "p99_ms"),
               ("p99.9", "p999_ms"), ("max", "max_ms"))
WIDTH = 960
MARGIN_LEFT = 70
MARGIN_RIGHT = 20
FONT = "font-family='sans-serif'"
BAR_PLOT_HEIGHT = 260
LATENCY_PLOT_HEIGHT = 200
LATENCY_COLUMNS = 3
LATENCY_FLOOR_MS = 0.01  # a log axis cannot show 0
NICE_STEPS = (1, 2, 2.5, 3, 4, 5, 6, 8, 10)


def nice_ceiling(value: float) -> float:
    """The smallest round axis top >= ``value``: 1, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten.

    Each of those divides into five even ticks; 1 for ``value`` <= 0.
    """
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in NICE_STEPS:
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


class _Svg:
    """The elements of one drawing, in painting order."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, x: float, y: float, content: str, *, size: int = 11, anchor: str = "start",
             weight: str = "normal", rotate: float | None = None) -> None:
        transform = f" transform='rotate({rotate:g} {x:.1f} {y:.1f})'" if rotate else ""
        self.parts.append(f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}' "
                          f"text-anchor='{anchor}' font-weight='{weight}'{transform}>"
                          f"{escape(content)}</text>")

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str = "#cccccc") -> None:
        self.parts.append(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' "
                          f"stroke='{color}' stroke-width='1'/>")

    def bar(self, x: float, y: float, width: float, height: float, color: str, *,
            metric: str, workload: str, server: str, tooltip: str) -> None:
        self.parts.append(f"<rect class='bar' data-metric={quoteattr(metric)} "
                          f"data-workload={quoteattr(workload)} "
                          f"data-server={quoteattr(server)} x='{x:.1f}' y='{y:.1f}' "
                          f"width='{width:.1f}' height='{height:.1f}' fill='{color}'>"
                          f"<title>{escape(tooltip)}</title></rect>")

    def series(self, points: Sequence[tuple[float, float]], color: str, *, name: str,
               server: str, tooltips: Sequence[str]) -> None:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.parts.append(f"<g class='latency' data-row={quoteattr(name)} "
                          f"data-server={quoteattr(server)}>"
                          f"<polyline points='{coords}' fill='none' stroke='{color}' "
                          f"stroke-width='2'/>")
        for (x, y), tip in zip(points, tooltips, strict=True):
            self.parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3' fill='{color}'>"
                              f"<title>{escape(tip)}</title></circle>")
        self.parts.append("</g>")

    def document(self, height: float) -> str:
        return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' "
                f"height='{height:.0f}' viewBox='0 0 {WIDTH} {height:.0f}'>\n"
                f"<rect width='100%' height='100%' fill='white'/>\n"
                + "\n".join(self.parts) + "\n</svg>\n")


def _color(role: str) -> str:
    return COLORS.get(role, FALLBACK_COLOR)


def _legend(svg: _Svg, roles: Sequence[str], y: float) -> float:
    x = float(MARGIN_LEFT)
    for role in roles:
        svg.parts.append(f"<rect x='{x:.1f}' y='{y - 10:.1f}' width='12' height='12' "
                         f"fill='{_color(role)}'/>")
        svg.text(x + 16, y, SIDE_LABELS.get(role, role))
        x += 30 + 7 * len(SIDE_LABELS.get(role, role))
    return y + 16


@dataclass(frozen=True)
class _BarMetric:
    """What one panel of grouped bars shows: a number per server and workload."""

    key: str  # the bars' data-metric
    title: str
    value: Callable[[SideResult], float | None]  # None: no bar
    tooltip: Callable[[SideResult, float], str]


THROUGHPUT = _BarMetric(
    "rps", "Throughput per workload (median requests/s, closed loop, wrk)",
    lambda side: side.median.rps,
    lambda side, rps: f"{rps:,.0f} rps, p50 {side.median.p50_ms:.1f} ms, "
                      f"p99 {side.median.p99_ms:.1f} ms")
CPU_PER_REQUEST = _BarMetric(
    "cpu_us", "Worker CPU per request (µs, median of rounds; lower is better, steadier "
    "than requests/s on a busy machine)",
    lambda side: side.cpu_us,
    lambda side, us: f"{us:,.0f} µs of worker CPU per request")


def _bar_panel(svg: _Svg, rows: Sequence[WorkloadRow], top: float, metric: _BarMetric) -> float:
    """Grouped bars of ``metric``; returns the y below the panel."""
    roles = roles_of(rows)
    svg.text(MARGIN_LEFT, top + 16, metric.title, size=13, weight="bold")
    plot_top, plot_width = top + 30, WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    bottom = plot_top + BAR_PLOT_HEIGHT
    values = {(row.name, role): metric.value(side) for row in rows
              for role, side in row.sides.items()}
    peak = nice_ceiling(max((v for v in values.values() if v is not None), default=0))
    for k in range(6):
        value = peak * k / 5
        y = bottom - BAR_PLOT_HEIGHT * k / 5
        svg.line(MARGIN_LEFT, y, MARGIN_LEFT + plot_width, y)
        svg.text(MARGIN_LEFT - 6, y + 4, f"{value:,.0f}", anchor="end", size=10)
    group = plot_width / max(len(rows), 1)
    bar_width = group * 0.8 / max(len(roles), 1)
    for i, row in enumerate(rows):
        x0 = MARGIN_LEFT + i * group + group * 0.1
        for j, role in enumerate(roles):
            found = values.get((row.name, role))
            if found is None:
                continue
            value = found
            height = BAR_PLOT_HEIGHT * value / peak
            x = x0 + j * bar_width
            label = SIDE_LABELS.get(role, role)
            svg.bar(x, bottom - height, bar_width * 0.92, height, _color(role),
                    metric=metric.key, workload=row.name, server=role,
                    tooltip=f"{label}, {row.name}: {metric.tooltip(row.sides[role], value)}")
            svg.text(x + bar_width * 0.46, bottom - height - 3, f"{value:.0f}", size=9,
                     anchor="middle")
        label_x = MARGIN_LEFT + (i + 0.7) * group
        svg.text(label_x, bottom + 14, row.name, anchor="end", rotate=-25)
    svg.line(MARGIN_LEFT, bottom, MARGIN_LEFT + plot_width, bottom, "#333333")
    return _legend(svg, roles, bottom + 96)


def _log_axis(rows: Sequence[ConstantRateRow]) -> tuple[float, float]:
    """Powers of ten around every latency shown."""
    values = [max(getattr(result, field), LATENCY_FLOOR_MS)
              for row in rows for result in row.sides.values() for _, field in PERCENTILES]
    low = math.floor(math.log10(min(values, default=1.0)))
    high = math.ceil(math.log10(max(values, default=10.0)))
    return low, max(high, low + 1)


def _latency_panels(svg: _Svg, rows: Sequence[ConstantRateRow], top: float) -> float:
    """One small panel per open-loop row; returns the y below them."""
    svg.text(MARGIN_LEFT, top + 16, "Open-loop latency of cached GETs (ms, log scale; "
             "measured from each request's scheduled time)", size=13, weight="bold")
    low, high = _log_axis(rows)
    columns = min(len(rows), LATENCY_COLUMNS)
    panel_width = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / columns
    y = top + 30
    for start in range(0, len(rows), columns):
        for c, row in enumerate(rows[start:start + columns]):
            _latency_panel(svg, row, MARGIN_LEFT + c * panel_width, y, panel_width - 30,
                           low, high)
        y += LATENCY_PLOT_HEIGHT + 50
    return _legend(svg, roles_of(rows), y)


def _latency_panel(svg: _Svg, row: ConstantRateRow, left: float, top: float, width: float,
                   low: float, high: float) -> None:
    plot_top = top + 18
    bottom = plot_top + LATENCY_PLOT_HEIGHT
    svg.text(left, top + 10, row.name, size=10, weight="bold")

    def y_of(ms: float) -> float:
        fraction = (math.log10(max(ms, LATENCY_FLOOR_MS)) - low) / (high - low)
        return bottom - LATENCY_PLOT_HEIGHT * fraction

    for power in range(int(low), int(high) + 1):
        y = y_of(10.0 ** power)
        svg.line(left, y, left + width, y)
        svg.text(left - 4, y + 4, f"{10.0 ** power:g}", anchor="end", size=9)
    step = width / (len(PERCENTILES) - 1)
    for k, (label, _) in enumerate(PERCENTILES):
        svg.text(left + k * step, bottom + 14, label, anchor="middle", size=10)
    for role in roles_of([row]):
        result = row.sides[role]
        values = [getattr(result, field) for _, field in PERCENTILES]
        points = [(left + k * step, y_of(v)) for k, v in enumerate(values)]
        tips = [f"{SIDE_LABELS.get(role, role)} {label}: {v:.2f} ms at "
                f"{result.achieved_rps:.0f} rps" for (label, _), v in zip(PERCENTILES, values,
                                                                      strict=True)]
        svg.series(points, _color(role), name=row.name, server=role, tooltips=tips)


def render_svg(rows: Sequence[WorkloadRow], open_loop: Sequence[ConstantRateRow],
               title: str = "", captions: Sequence[str] = ()) -> str:
    """The whole picture as an SVG document (``captions``: lines of small print at the end)."""
    svg = _Svg()
    y = 0.0
    if title:
        svg.text(MARGIN_LEFT, 20, title, size=14, weight="bold")
        y = 24.0
    y = _bar_panel(svg, rows, y, THROUGHPUT) + 10
    if open_loop:
        y = _latency_panels(svg, open_loop, y) + 10
    if any(side.rounds_cpu_us for row in rows for side in row.sides.values()):
        y = _bar_panel(svg, rows, y, CPU_PER_REQUEST) + 10
    for caption in captions:
        svg.text(MARGIN_LEFT, y + 4, caption, size=10)
        y += 15
    return svg.document(y + 6)
