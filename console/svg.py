"""Charts drawn on the server as inline SVG: no script, no image file, readable by a screen
reader through ``<title>``/``<desc>`` (each chart also has its figures in a table beside it).

Three shapes cover the console: vertical bars (with optional horizontal marks per bar, for
the billing month's order and its 95 %/110 % lines), lines (rates and reply times per
period) and horizontal bars (by motif). Coordinates are rounded to 0.1 px.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 760, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 28, 64
PALETTE = ("#1f5fa8", "#b8430b", "#2b7a3d", "#7a2f8c", "#8a6d00", "#0f6b73")
"""Dark enough on white for 3:1 contrast (RGAA 3.3 for graphical objects)."""
GRID = "#c8c8c8"
TEXT = "#1a1a1a"
_ids = itertools.count(1)


@dataclass(frozen=True)
class Mark:
    """A horizontal mark over one bar (an order, a threshold)."""

    index: int
    value: float
    colour: str
    dashed: bool = False


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _nice_max(value: float) -> float:
    """The axis top: the next 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    magnitude = 1.0
    while magnitude * 10 < value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _frame(title: str, desc: str, body: list[str], legend: Sequence[tuple[str, str]],
           height: int = HEIGHT) -> Markup:
    n = next(_ids)
    items = []
    x = MARGIN_LEFT
    for label, colour in legend:
        items.append(f'<rect x="{x}" y="{height - 18}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{x + 16}" y="{height - 8}" font-size="12" fill="{TEXT}">'
                     f"{escape(label)}</text>")
        x += 24 + 7 * len(label)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="chart-t{n} chart-d{n}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="sans-serif">'
        f'<title id="chart-t{n}">{escape(title)}</title><desc id="chart-d{n}">{escape(desc)}'
        f'</desc><text x="{MARGIN_LEFT}" y="18" font-size="14" font-weight="bold" '
        f'fill="{TEXT}">{escape(title)}</text>' + "".join(body) + "".join(items) + "</svg>")


def _axis(top: float, unit: str) -> list[str]:
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    lines = []
    for i in range(5):
        y = MARGIN_TOP + plot_h - plot_h * i / 4
        lines.append(f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{_fmt(y)}" '
                     f'y2="{_fmt(y)}" stroke="{GRID}" stroke-width="1"/>'
                     f'<text x="{MARGIN_LEFT - 6}" y="{_fmt(y + 4)}" font-size="11" '
                     f'text-anchor="end" fill="{TEXT}">{_fmt(top * i / 4)}</text>')
    middle = MARGIN_TOP + plot_h / 2
    lines.append(f'<text x="12" y="{_fmt(middle)}" font-size="11" fill="{TEXT}" '
                 f'transform="rotate(-90 12 {_fmt(middle)})" text-anchor="middle">'
                 f"{escape(unit)}</text>")
    return lines


def _x_labels(labels: Sequence[str], centre: Callable[[int], float]) -> list[str]:
    every = max(1, -(-len(labels) // 16))  # at most ~16 labels: a month of days stays legible
    y = HEIGHT - MARGIN_BOTTOM + 14
    return [f'<text x="{_fmt(centre(i))}" y="{y}" font-size="11" text-anchor="middle" '
            f'fill="{TEXT}">{escape(label)}</text>'
            for i, label in enumerate(labels) if i % every == 0 or i == len(labels) - 1]


def _slots(count: int) -> tuple[float, Callable[[int], float]]:
    slot = (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / max(1, count)
    return slot, lambda i: MARGIN_LEFT + slot * (i + 0.5)


def bar_chart(title: str, desc: str, labels: Sequence[str], values: Sequence[float],
              unit: str, colours: Sequence[str] | None = None,
              marks: Sequence[Mark] = (), legend: Sequence[tuple[str, str]] = ()) -> Markup:
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = _nice_max(max([*values, *(m.value for m in marks), 0.0]))
    slot, centre = _slots(len(values))
    body = _axis(top, unit)
    for i, value in enumerate(values):
        h = plot_h * value / top
        colour = colours[i] if colours else PALETTE[0]
        body.append(f'<rect x="{_fmt(centre(i) - slot * 0.35)}" '
                    f'y="{_fmt(MARGIN_TOP + plot_h - h)}" width="{_fmt(slot * 0.7)}" '
                    f'height="{_fmt(h)}" fill="{colour}"><title>{escape(labels[i])} : '
                    f"{_fmt(value)} {escape(unit)}</title></rect>")
    for mark in marks:
        y = MARGIN_TOP + plot_h - plot_h * mark.value / top
        dash = ' stroke-dasharray="4 3"' if mark.dashed else ""
        body.append(f'<line x1="{_fmt(centre(mark.index) - slot * 0.48)}" '
                    f'x2="{_fmt(centre(mark.index) + slot * 0.48)}" y1="{_fmt(y)}" '
                    f'y2="{_fmt(y)}" stroke="{mark.colour}" stroke-width="2"{dash}/>')
    body += _x_labels(labels, centre)
    return _frame(title, desc, body, legend)


def line_chart(title: str, desc: str, labels: Sequence[str],
               series: Sequence[tuple[str, Sequence[float | None]]], unit: str,
               top: float | None = None) -> Markup:
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    values = [v for _, points in series for v in points if v is not None]
    top = top or _nice_max(max([*values, 0.0]))
    _, centre = _slots(len(labels))
    body = _axis(top, unit)
    legend = []
    for (name, points), colour in zip(series, itertools.cycle(PALETTE)):
        legend.append((name, colour))
        runs: list[list[str]] = [[]]
        for i, value in enumerate(points):
            if value is None:
                runs.append([])  # a gap: no line across a period without data
                continue
            x, y = centre(i), MARGIN_TOP + plot_h - plot_h * min(value, top) / top
            runs[-1].append(f"{_fmt(x)},{_fmt(y)}")
            body.append(f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="3" fill="{colour}">'
                        f"<title>{escape(name)}, {escape(labels[i])} : {_fmt(value)} "
                        f"{escape(unit)}</title></circle>")
        body += [f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                 f'stroke-width="2"/>' for run in runs if len(run) > 1]
    body += _x_labels(labels, centre)
    return _frame(title, desc, body, legend)


def hbar_chart(title: str, desc: str, labels: Sequence[str], values: Sequence[float],
               unit: str) -> Markup:
    row = 22
    height = MARGIN_TOP + row * max(1, len(values)) + 12
    label_w = 190
    plot_w = WIDTH - label_w - MARGIN_RIGHT - 50
    top = _nice_max(max([*values, 0.0]))
    body = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = MARGIN_TOP + row * i
        w = plot_w * value / top
        body.append(f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end" '
                    f'fill="{TEXT}">{escape(label)}</text>'
                    f'<rect x="{label_w}" y="{y + 3}" width="{_fmt(w)}" height="{row - 6}" '
                    f'fill="{PALETTE[0]}"><title>{escape(label)} : {_fmt(value)} '
                    f'{escape(unit)}</title></rect>'
                    f'<text x="{_fmt(label_w + w + 4)}" y="{y + 15}" font-size="11" '
                    f'fill="{TEXT}">{_fmt(value)}</text>')
    return _frame(title, desc, body, (), height=height)
