"""Small line charts of checkpoint metrics, laid out here and drawn as inline SVG by the template.

The geometry is computed server-side so the page needs no charting library: a chart is a list of
points in a fixed ``WIDTH`` x ``HEIGHT`` viewBox, a polyline through the measured ones (a missing
value breaks the line), and a few labelled ticks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 320, 150
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 12, 24


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the checkpoint
    value: float


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass
class LineChart:
    title: str
    key: str
    unit: str = ""
    points: list[Point] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)  # SVG polyline "x,y x,y" strings
    ticks: list[Tick] = field(default_factory=list)
    first_label: str = ""
    last_label: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    bottom: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.points


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.3g}"
    return f"{value:.1e}"


def _range(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if math.isclose(lo, hi):
        pad = abs(lo) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad


def line_chart(title: str, key: str, series: list[tuple[str, float | None]], unit: str = "") -> LineChart:
    """A chart of ``series`` (checkpoint label, value or None), in version order left to right."""
    chart = LineChart(title=title, key=key, unit=unit)
    measured = [v for _, v in series if v is not None and math.isfinite(v)]
    if not measured:
        return chart
    lo, hi = _range(measured)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / (len(series) - 1) if len(series) > 1 else 0.0

    def y_of(value: float) -> float:
        return round(TOP + inner_h * (1 - (value - lo) / (hi - lo)), 2)

    run: list[str] = []
    for i, (label, value) in enumerate(series):
        if value is None or not math.isfinite(value):
            if run:
                chart.segments.append(" ".join(run))
            run = []
            continue
        x = round(LEFT + (step * i if len(series) > 1 else inner_w / 2), 2)
        y = y_of(value)
        chart.points.append(Point(x, y, label, value))
        run.append(f"{x},{y}")
    if run:
        chart.segments.append(" ".join(run))
    chart.ticks = [Tick(y_of(v), _fmt(v)) for v in (min(measured), max(measured))]
    if math.isclose(min(measured), max(measured)):
        chart.ticks = chart.ticks[:1]
    chart.first_label, chart.last_label = series[0][0], series[-1][0]
    return chart
