"""A log-log line chart as a standalone SVG string (no plotting library needed).

Time against data size on log axes shows growth as slope: a line parallel to
the diagonal grows linearly with the data, a flatter one better than that.
Pure: data in, text out; `benchmarks.bench` writes it next to its JSON.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence
from xml.sax.saxutils import escape, quoteattr

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
WIDTH, HEIGHT = 820, 460
LEFT, RIGHT, TOP, BOTTOM = 70, 230, 44, 56  # margins; the legend sits on the right


class Series(NamedTuple):
    name: str
    points: Sequence[tuple[float, float]]  # (x, y); non-positive values cannot be drawn
    dashed: bool = False


def log_ticks(lo: float, hi: float) -> list[float]:
    """Round values spanning [lo, hi] on a log axis: 1-2-5 steps, decades only when wide."""
    if lo >= hi:
        lo, hi = lo / 2, hi * 2
    steps = (1, 2, 5) if hi / lo < 1000 else (1,)
    candidates = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)),
                                               math.ceil(math.log10(hi)) + 1) for m in steps]
    first = max(v for v in candidates if v <= lo * (1 + 1e-9))
    last = min(v for v in candidates if v >= hi * (1 - 1e-9))
    return [v for v in candidates if first <= v <= last]


def short_number(v: float) -> str:
    """400, 4k, 1.5M: tick labels that fit."""
    for div, suffix in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:g}{suffix}"
    return f"{v:g}"


def _scale(lo: float, hi: float, a: float, b: float):
    span = math.log10(hi) - math.log10(lo)
    return lambda v: a + (math.log10(v) - math.log10(lo)) / span * (b - a)


def _text(x: float, y: float, body: str, cls: str, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>'
            f"{escape(body)}</text>")


def svg_chart(series: Sequence[Series], title: str, x_label: str, y_label: str,
              x_unit: str = "rows", y_unit: str = "s") -> str:
    """One polyline with a marker per point for each series, sorted by x, on
    log-log axes with labelled ticks and a legend.  Points with x or y <= 0 (or
    NaN) are left out, and so is a series left with none."""
    drawn = [Series(s.name, sorted((float(x), float(y)) for x, y in s.points
                                   if x > 0 and y > 0), s.dashed) for s in series]
    drawn = [s for s in drawn if s.points]
    xs = [x for s in drawn for x, _ in s.points] or [1.0, 10.0]
    ys = [y for s in drawn for _, y in s.points] or [1.0, 10.0]
    x_ticks, y_ticks = log_ticks(min(xs), max(xs)), log_ticks(min(ys), max(ys))
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    px = _scale(x_ticks[0], x_ticks[-1], LEFT, right)
    py = _scale(y_ticks[0], y_ticks[-1], bottom, TOP)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>",
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           _text((LEFT + right) / 2, TOP - 18, title, "title", extra=' font-size="14"'),
           '<g class="x-ticks">']
    for v in x_ticks:
        x = px(v)
        out.append(f'<g class="tick"><line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" '
                   f'stroke="#e5e5e5"/>' + _text(x, bottom + 18, short_number(v), "tick-label")
                   + "</g>")
    out.append('</g><g class="y-ticks">')
    for v in y_ticks:
        y = py(v)
        out.append(f'<g class="tick"><line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" '
                   f'stroke="#e5e5e5"/>' + _text(LEFT - 8, y + 4, f"{v:g}", "tick-label", "end")
                   + "</g>")
    out += ["</g>",
            f'<g class="axes" stroke="black"><line x1="{LEFT}" y1="{bottom}" x2="{right}" '
            f'y2="{bottom}"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/></g>',
            _text((LEFT + right) / 2, HEIGHT - 14, x_label, "x-label"),
            _text(18, (TOP + bottom) / 2, y_label, "y-label",
                  extra=f' transform="rotate(-90 18 {(TOP + bottom) / 2:.1f})"')]

    legend = ['<g class="legend">']
    for i, s in enumerate(drawn):
        color = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        width = 1.5 if s.dashed else 2.5
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        out.append(f'<g class="series" data-name={quoteattr(s.name)}>'
                   f'<polyline points="{coords}" fill="none" stroke="{color}" '
                   f'stroke-width="{width}"{dash}/>')
        for x, y in s.points:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}" '
                       f'data-x="{x:g}" data-y="{y:g}"><title>'
                       f"{escape(s.name)}: {x:,.0f} {escape(x_unit)}, {y:.1f} {escape(y_unit)}"
                       "</title></circle>")
        out.append("</g>")
        ly = TOP + 8 + 20 * i
        legend.append(f'<g class="entry"><line x1="{right + 16}" y1="{ly}" x2="{right + 40}" '
                      f'y2="{ly}" stroke="{color}" stroke-width="{width}"{dash}/>'
                      + _text(right + 46, ly + 4, s.name, "legend-label", "start") + "</g>")
    out += legend + ["</g>", "</svg>"]
    return "\n".join(out) + "\n"


def stacked(charts: Sequence[str]) -> str:
    """Charts made by `svg_chart`, one under another, as one SVG."""
    body = "".join(c.replace("<svg ", f'<svg y="{HEIGHT * i}" ', 1)
                   for i, c in enumerate(charts))
    height = HEIGHT * len(charts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}">\n{body}</svg>\n')
