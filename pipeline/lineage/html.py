"""Self-contained HTML for the readers: the lineage section of a trace, and the
page, table and chart building blocks (`pipeline.facts.html`) of the lineage
page, the run report and the notebooks.
"""
from __future__ import annotations

import html

from pipeline.facts.html import STYLE as STYLE
from pipeline.facts.html import bar_chart as bar_chart
from pipeline.facts.html import page as page
from pipeline.facts.html import table as table
from pipeline.lineage.render import trace_svg, trace_text
from pipeline.lineage.trace import Trace


def trace_section(trace: Trace) -> list[str]:
    """The graph and the facts of a trace, for the lineage page and the run report."""
    e = html.escape
    out = [f'<div class="scroll">{trace_svg(trace)}</div>',
           "<p>Boxes are executions, rounded boxes artifacts (green: where the trace starts; "
           "red: missing on disk). Hover for URIs and properties.</p>"]
    if trace.problems:
        out.append('<div class="warn"><b>Incomplete record</b><ul>'
                   + "".join(f"<li>{e(p)}</li>" for p in trace.problems) + "</ul></div>")
    out.append(f"<pre>{e(trace_text(trace))}</pre>")
    return out


def trace_html(trace: Trace) -> str:
    return page(f"Lineage: {trace.description}",
                [f"<h1>Lineage of the {html.escape(trace.description)}</h1>"]
                + trace_section(trace))
