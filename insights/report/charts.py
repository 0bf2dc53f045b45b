"""Charts as inline SVG: the HTML report carries them in its own text, so it needs no script and no request.

Each chart is a ``<figure data-chart="NAME">`` holding one ``<svg>``; bars and points
carry a ``<title>`` (the browser's tooltip) with their exact value. Every text that
comes from data is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH = 760
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 14, 38
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea")
MUTED = "#94a3b8"


def _number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``: the y axis's top."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)


def _frame(name: str, caption: str, body: list[str], height: int = HEIGHT) -> str:
    label = escape(caption, quote=True)
    return (
        f'<figure class="chart" data-chart="{escape(name, quote=True)}">'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{label}">' + "".join(body) + f"</svg><figcaption>{escape(caption)}</figcaption></figure>"
    )


def _axis(top: float, height: int) -> tuple[list[str], float]:
    """Horizontal grid lines at 0, half and the top value; returns them and the plot's pixel height."""
    plot = height - _TOP - _BOTTOM
    out = []
    for share in (0.0, 0.5, 1.0):
        y = _TOP + plot * (1 - share)
        out.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#475569">'
                   f"{_number(top * share)}</text>")
    return out, plot


def _x_labels(labels: Sequence[str], slot: float) -> list[str]:
    """At most about 12 labels under the x axis, so they never overlap."""
    step = max(1, -(-len(labels) // 12))
    return [
        f'<text x="{_LEFT + slot * (i + 0.5):.1f}" y="{HEIGHT - _BOTTOM + 16}" text-anchor="middle" font-size="11" '
        f'fill="#475569">{escape(label)}</text>'
        for i, label in enumerate(labels) if i % step == 0
    ]


def bars(name: str, caption: str, labels: Sequence[str], values: Sequence[float], unit: str = "",
         highlight: Sequence[bool] | None = None) -> str:
    """One bar per label (``highlight``: bars drawn in the warning colour)."""
    top = nice_top(max([*values, 0]))
    grid, plot = _axis(top, HEIGHT)
    slot = (WIDTH - _LEFT - _RIGHT) / max(len(values), 1)
    body = list(grid)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot * value / top
        color = COLORS[1] if highlight is not None and highlight[i] else COLORS[0]
        body.append(
            f'<rect class="bar" x="{_LEFT + slot * i + slot * 0.15:.1f}" y="{_TOP + plot - h:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(label)}: {value:,.6g}{escape(unit)}</title></rect>"
        )
    body += _x_labels(labels, slot)
    return _frame(name, caption, body)


def lines(name: str, caption: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
          unit: str = "") -> str:
    """One polyline per series (a missing value breaks its line), with a legend."""
    values = [v for _, points in series for v in points if v is not None]
    top = nice_top(max([*values, 0]))
    grid, plot = _axis(top, HEIGHT)
    slot = (WIDTH - _LEFT - _RIGHT) / max(len(labels), 1)
    body = list(grid)
    for index, (title, points) in enumerate(series):
        color = COLORS[index % len(COLORS)]
        run: list[str] = []
        segments: list[list[str]] = [run]
        for i, value in enumerate(points):
            if value is None:
                run = []
                segments.append(run)
                continue
            x, y = _LEFT + slot * (i + 0.5), _TOP + plot * (1 - value / top)
            run.append(f"{x:.1f},{y:.1f}")
            body.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                        f"<title>{escape(title)} {escape(labels[i])}: {value:,.6g}{escape(unit)}</title></circle>")
        for segment in segments:
            if len(segment) > 1:
                body.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{color}" stroke-width="2"/>')
        x = _LEFT + 150 * index
        body.append(f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{color}"/>'
                    f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="11" fill="#334155">{escape(title)}</text>')
    body += _x_labels(labels, slot)
    return _frame(name, caption, body)


def horizontal_bars(name: str, caption: str, items: Sequence[tuple[str, float]]) -> str:
    """One labelled horizontal bar per item, largest first as given."""
    row = 24
    height = _TOP + row * max(len(items), 1) + 10
    top = max([v for _, v in items] + [0]) or 1
    left = 200
    body = []
    for i, (label, value) in enumerate(items):
        y = _TOP + row * i
        w = (WIDTH - left - 80) * value / top
        body.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="12" fill="#334155">'
                    f"{escape(label[:32])}</text>")
        body.append(f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{COLORS[0]}">'
                    f"<title>{escape(label)}: {value:,.6g}</title></rect>")
        body.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="12" fill="#334155">{_number(value)}</text>')
    return _frame(name, caption, body, height)
