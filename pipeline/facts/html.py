"""Self-contained HTML: one page with inline style and inline SVG, nothing to fetch.

The building blocks of the model card, the run report and the notebooks:
`page`, `table`, `bar_chart`. Free of ML Metadata, so the model card writer
uses them where it runs (in the Kubeflow pod too).
"""
from __future__ import annotations

import html
from typing import Any, Iterable, Optional

from pipeline.facts.evaluation import finite

STYLE = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176b2c;font-weight:bold}.bad{color:#a31515;font-weight:bold}
.warn{background:#fff4d6;border:1px solid #e8c36a;padding:6px 10px;margin:8px 0}
.scroll{overflow-x:auto;border:1px solid #eee}pre{background:#f7f7f7;padding:8px;overflow-x:auto}
.charts{display:flex;flex-wrap:wrap;gap:14px}.chart{border:1px solid #eee;padding:6px}
"""


def page(title: str, body: Iterable[str]) -> str:
    """One self-contained HTML page: inline style, inline SVG, no scripts or links."""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "".join(body) + "</body></html>\n")


def table(header: list[str], rows: list[list[Any]], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    e = html.escape
    head = "".join(f"<th>{e(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f"<td class=\"num\">{e(str(v))}</td>" if i in numeric else f"<td>{e(str(v))}</td>"
        for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def bar_chart(labels: list[str], values: list[Optional[float]], *, title: str,
              marks: Optional[list[Optional[float]]] = None, width: int = 360,
              bar_h: int = 14, maximum: Optional[float] = None, integer: bool = False) -> str:
    """Horizontal bars as inline SVG; `marks` draws a threshold per bar in red.
    `integer`: the values are counts, written whole (never 3.57e+03)."""
    e = html.escape
    finite_values = [v for v in values if finite(v)]
    top = maximum or max(finite_values + [m for m in (marks or []) if m is not None] + [1e-9])
    label_w, plot_w = 130, width - 180
    height = 24 + bar_h * len(labels) + 16
    out = [f'<svg width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="10"><text x="2" y="12" font-weight="bold">'
           f'{e(title)}</text>']
    for i, (label, v) in enumerate(zip(labels, values)):
        y = 20 + i * bar_h
        out.append(f'<text x="{label_w - 4}" y="{y + bar_h - 4}" text-anchor="end">'
                   f'{e(str(label)[:22])}</text>')
        if finite(v):
            w = max(0.5, plot_w * v / top)
            out.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 4}" '
                       f'fill="#6b8fc9"><title>{e(str(label))}: {_value(v, integer, 4)}</title>'
                       f'</rect><text x="{label_w + w + 3:.1f}" y="{y + bar_h - 4}">'
                       f'{_value(v, integer, 3)}</text>')
        else:
            out.append(f'<text x="{label_w + 3}" y="{y + bar_h - 4}" fill="#999">no value</text>')
        mark = (marks or [None] * len(labels))[i]
        if mark is not None:
            x = label_w + plot_w * mark / top
            out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + bar_h}" stroke="#c00" '
                       f'stroke-width="2"><title>threshold {mark:g}</title></line>')
    out.append("</svg>")
    return "".join(out)


def _value(v: float, integer: bool, digits: int) -> str:
    return f"{int(round(v)):,}" if integer else f"{v:.{digits}g}"
