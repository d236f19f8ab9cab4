"""The console's charts, drawn on the server as inline SVG (no script): the
geometry is worked out here, the templates write the elements.

A series of thousands of days is downsampled to at most :data:`MAX_POINTS`
points (the value at the end of each run of days), so a 10,000-event wallet
draws a readable line of a few hundred points."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from api.console.formatting import cents_of, day, euro

Day = TypeVar("Day", date, str)
MAX_POINTS = 300
MAX_BARS = 120
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 96, 16, 12, 28
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True)
class Line:
    name: str
    css: str
    points: str
    """SVG polyline points, as a step line: a balance holds until the next day it changes."""
    last: int


@dataclass(frozen=True, kw_only=True)
class Frame:
    """What every chart's axes show: the first and last day, the top value."""

    first: str
    last: str
    top: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top_y: int = TOP
    bottom_y: int = TOP + PLOT_H


@dataclass(frozen=True, kw_only=True)
class LineChart(Frame):
    lines: list[Line]
    days: int
    drawn: int


def end_of_day_values(changes: Iterable[tuple[Day, Sequence[int]]], width: int) -> list[tuple[Day, list[int]]]:
    """Each business date's values after every change dated on or before it
    (what a replay as of that date holds): changes summed in date order. A day
    is a date or its ISO text (which sorts alike)."""
    by_day: dict[Day, list[int]] = {}
    for on, amounts in changes:
        total = by_day.get(on)
        if total is None:
            total = by_day[on] = [0] * width
        for index, amount in enumerate(amounts):
            total[index] += amount
    running, values = [0] * width, []
    for on in sorted(by_day):
        running = [a + b for a, b in zip(running, by_day[on], strict=True)]
        values.append((on, running))
    return values


def downsample(values: list[tuple[date, list[int]]], most: int = MAX_POINTS) -> list[tuple[date, list[int]]]:
    """At most ``most`` of ``values``: the last of each run, the first and last kept."""
    if len(values) <= most:
        return values
    step = len(values) / (most - 1)
    kept = [values[min(len(values) - 1, int((i + 1) * step) - 1)] for i in range(most - 1)]
    return [values[0], *kept[:-1], values[-1]] if kept[-1] != values[-1] else [values[0], *kept]


def line_chart(values: list[tuple[date, list[int]]], names: Sequence[tuple[str, str]]) -> LineChart | None:
    """Step lines of each series of ``values`` (``names``: its label and CSS class);
    None when every value is zero (nothing to draw)."""
    if not any(any(amounts) for _on, amounts in values):
        return None
    days = len(values)
    shown = downsample(values)
    start, end = shown[0][0].toordinal(), shown[-1][0].toordinal()
    highest = max(max(amounts) for _on, amounts in shown) or 1

    def x(on: date) -> float:
        return LEFT + (PLOT_W / 2 if end == start else (on.toordinal() - start) / (end - start) * PLOT_W)

    def y(cents: int) -> float:
        return TOP + PLOT_H - max(cents, 0) / highest * PLOT_H

    lines = []
    for index, (name, css) in enumerate(names):
        points: list[str] = []
        previous = None
        for on, amounts in shown:
            if previous is not None:
                points.append(f"{x(on):.1f},{y(previous):.1f}")
            points.append(f"{x(on):.1f},{y(amounts[index]):.1f}")
            previous = amounts[index]
        lines.append(Line(name, css, " ".join(points), shown[-1][1][index]))
    return LineChart(
        lines=lines, first=day(shown[0][0]), last=day(shown[-1][0]), top=euro(highest), days=days, drawn=len(shown)
    )


@dataclass(frozen=True)
class Segment:
    name: str
    css: str
    amount: str
    x: float
    width: float


@dataclass(frozen=True)
class Bar:
    label: str
    segments: list[Segment]


BAR_WIDTH = 600


def ceiling_bars(ceilings: list[dict]) -> list[Bar]:
    """One bar per ceiling (``ceilings`` as the wallet shows them: euro strings):
    used, reserved, lost and remaining side by side, in proportion to the ceiling."""
    bars = []
    for ceiling in ceilings:
        total = cents_of(ceiling["ceiling"]) or 1
        x, segments = 0.0, []
        for part in ("used", "reserved", "lost", "remaining"):
            amount = max(cents_of(ceiling[part]), 0)
            width = amount / total * BAR_WIDTH
            segments.append(Segment(part, f"part-{part}", ceiling[part], round(x, 1), round(width, 1)))
            x += width
        bars.append(Bar(f"{ceiling['year']} {ceiling['key']}", segments))
    return bars


@dataclass(frozen=True)
class DayBars:
    day: str
    x: float
    width: float
    bars: list[tuple[str, float, float]]
    """Each bar: its CSS class, y and height."""
    title: str


@dataclass(frozen=True, kw_only=True)
class BarChart(Frame):
    groups: list[DayBars]
    buckets: int


def daily_bars(values: list[tuple[date, list[int]]], names: Sequence[tuple[str, str]]) -> BarChart | None:
    """Side-by-side bars per day (money in, money out); more than :data:`MAX_BARS`
    days are summed into runs of days, one group of bars each."""
    if not values:
        return None
    per = -(-len(values) // MAX_BARS)
    groups = []
    for start in range(0, len(values), per):
        run = values[start : start + per]
        sums = [sum(amounts[i] for _on, amounts in run) for i in range(len(names))]
        label = day(run[0][0]) if len(run) == 1 else f"{day(run[0][0])} - {day(run[-1][0])}"
        groups.append((label, sums))
    highest = max(max(sums) for _label, sums in groups) or 1
    slot = PLOT_W / len(groups)
    width = max(slot * 0.8 / len(names), 0.5)
    days = []
    for index, (label, sums) in enumerate(groups):
        bars = []
        for i, (_name, css) in enumerate(names):
            height = max(sums[i], 0) / highest * PLOT_H
            bars.append((css, round(TOP + PLOT_H - height, 1), round(height, 1)))
        title = label + ": " + ", ".join(f"{name} {euro(sums[i])}" for i, (name, _css) in enumerate(names))
        days.append(DayBars(label, round(LEFT + index * slot + slot * 0.1, 1), round(width, 1), bars, title))
    return BarChart(
        groups=days, top=euro(highest), first=day(values[0][0]), last=day(values[-1][0]), buckets=len(groups)
    )
