"""Geometry of the small SVG charts staff pages draw on the server (no JavaScript, no CDN).

Functions here only compute coordinates; templates turn them into `<rect>`, `<polyline>` and
`<text>` elements, so every label is escaped like any other template value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 640
HEIGHT = 200
LEFT = 40  # room for the y-axis labels
BOTTOM = 24  # room for the x-axis labels
TOP = 12


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    css: str


@dataclass(frozen=True)
class Slot:
    """One x position: a day's stacked bar or line point, with its labels."""

    x: float
    centre: float
    label: str
    title: str
    segments: tuple[Segment, ...] = ()
    point_y: float | None = None


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    baseline: float
    slot_width: float
    bar_width: float
    slots: tuple[Slot, ...]
    ticks: tuple[Tick, ...]

    @property
    def points(self) -> str:
        """The polyline of a line chart; slots without a value are skipped."""
        return " ".join(
            f"{s.centre:.1f},{s.point_y:.1f}" for s in self.slots if s.point_y is not None
        )


def _frame(count: int, top_value: float, unit: str) -> tuple[float, float, float, tuple[Tick, ...]]:
    baseline = HEIGHT - BOTTOM
    slot_width = (WIDTH - LEFT) / max(count, 1)
    ticks = tuple(
        Tick(y=baseline - (baseline - TOP) * share, label=f"{top_value * share:g}{unit}")
        for share in (0, 0.5, 1)
    )
    return baseline, slot_width, slot_width * 0.7, ticks


def _scale(value: float, top_value: float, baseline: float) -> float:
    return (baseline - TOP) * value / top_value if top_value else 0.0


def stacked_bars(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], titles: Sequence[str]
) -> Chart:
    """Bars of `series` ((css class, values) bottom first) stacked per label."""
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top_value = float(max([*totals, 1]))
    baseline, slot_width, bar_width, ticks = _frame(len(labels), top_value, "")
    slots = []
    for i, label in enumerate(labels):
        x = LEFT + i * slot_width
        y = baseline
        segments = []
        for css, values in series:
            height = _scale(values[i], top_value, baseline)
            y -= height
            if height:
                segments.append(Segment(y=round(y, 1), height=round(height, 1), css=css))
        slots.append(
            Slot(
                x=round(x + (slot_width - bar_width) / 2, 1),
                centre=round(x + slot_width / 2, 1),
                label=label,
                title=titles[i],
                segments=tuple(segments),
            )
        )
    return Chart(WIDTH, HEIGHT, LEFT, baseline, slot_width, bar_width, tuple(slots), ticks)


def percent_line(
    labels: Sequence[str], values: Sequence[float | None], titles: Sequence[str]
) -> Chart:
    """A 0 to 100 % line with a point per label that has a value."""
    baseline, slot_width, bar_width, ticks = _frame(len(labels), 100.0, "%")
    slots = []
    for i, label in enumerate(labels):
        x = LEFT + i * slot_width
        value = values[i]
        point_y = None if value is None else round(baseline - _scale(value, 100.0, baseline), 1)
        slots.append(
            Slot(
                x=round(x, 1),
                centre=round(x + slot_width / 2, 1),
                label=label,
                title=titles[i],
                point_y=point_y,
            )
        )
    return Chart(WIDTH, HEIGHT, LEFT, baseline, slot_width, bar_width, tuple(slots), ticks)
