"""Page assembly: one self-contained HTML file with plotly.js inlined exactly once.

Every figure is emitted with ``include_plotlyjs=False`` and draws with the single copy in <head>,
so the page opens offline and a dozen charts do not carry a dozen copies of a 4.8 MB library.
Every string that came from a user (scenario name, profile and device names, reasons) passes
through :func:`esc`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import plotly.graph_objects as go
import plotly.offline

from simulator.report.finding import Finding

PLOTLY_CONFIG = {"responsive": True, "displaylogo": False, "scrollZoom": False}

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
 background:#F6F7F9}
main{max-width:1400px;margin:0 auto;padding:16px 20px 60px}
h1{font-size:22px;margin:8px 0 4px} h2{font-size:17px;margin:0 0 6px}
.sub{color:#666;margin:0 0 14px}
section{background:#fff;border:1px solid #E3E5E8;border-radius:8px;padding:14px 16px;margin:14px 0}
.note{color:#555;font-size:13px;margin:2px 0 8px}
.facts{border-collapse:collapse;font-size:13px}
.facts th{text-align:left;font-weight:600;padding:2px 14px 2px 0;color:#444;vertical-align:top}
.facts td{padding:2px 0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:8px;margin-top:12px}
.card{border:1px solid #E3E5E8;border-radius:6px;padding:8px 10px;background:#FBFBFC}
.card .v{font-size:17px;font-weight:600} .card .k{font-size:12px;color:#666}
ul.findings{margin:0;padding-left:0;list-style:none}
ul.findings li{margin:5px 0;padding-left:20px;position:relative}
ul.findings li:before{content:"";position:absolute;left:4px;top:7px;width:9px;height:9px;
 border-radius:50%;background:#4C78A8}
ul.findings li.warn:before{background:#E45756} ul.findings li.good:before{background:#54A24B}
.chart-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(360px,100%),1fr));gap:10px 18px}
.chart-grid>div{min-width:0}
ul.chart-key{display:flex;flex-wrap:wrap;gap:4px 18px;list-style:none;margin:4px 0 10px;padding:0;
 font-size:13px}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.chart-empty{padding:30px;text-align:center;color:#666;background:#FAFAFA;border:1px dashed #CCC;
 border-radius:6px}
.table-wrap{overflow-x:auto}
table.data{border-collapse:collapse;font-size:13px;min-width:100%}
table.data th,table.data td{border-bottom:1px solid #E3E5E8;padding:5px 10px;text-align:right;
 white-space:nowrap}
table.data th:first-child,table.data td:first-child{text-align:left}
table.data th{background:#F3F4F6}
table.data.wrap th,table.data.wrap td{white-space:normal;vertical-align:top}
table.data.wrap td:first-child{font-weight:600;min-width:14em} table.data.wrap td.nw{white-space:nowrap}
table.data.wrap .why{overflow-wrap:anywhere;font-weight:400}  /* long dotted keys break rather than widen the page */
.sharebar{display:flex;width:120px;height:9px;border-radius:2px;overflow:hidden;margin:3px 0 2px auto;
 background:#EEE}
.sharebar span{display:block;height:100%}
.limit{font-weight:600} .limit.warn{color:#C0392B} .why{color:#666;font-size:12px}
.banner{border:1px solid #E8A33D;background:#FFF6E5;color:#6B4500;border-radius:8px;padding:10px 14px;
 margin:10px 0;font-weight:600}
footer{color:#888;font-size:12px;margin-top:20px}
@media (max-width:700px){main{padding:8px}section{padding:10px}}
"""


def esc(value: object) -> str:
    """HTML-escape anything shown on the page."""
    return html.escape(str(value), quote=True)


@lru_cache(maxsize=1)
def plotly_js() -> str:
    return plotly.offline.get_plotlyjs()


def figure_div(fig: go.Figure, div_id: str, post_script: str | None = None,
               config: dict[str, Any] | None = None) -> str:
    """The figure's <div> and its drawing call, without plotly.js; `post_script` runs after the
    figure is drawn (inside the same <script>, `{plot_id}` = this div's id); `config` adds to (or
    overrides) PLOTLY_CONFIG for this figure."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={**PLOTLY_CONFIG, **(config or {})}, post_script=post_script)


def empty_chart(div_id: str, message: str) -> str:
    """Stands in for a chart that has nothing to draw, saying why."""
    return f'<div id="{esc(div_id)}" class="chart-empty">{esc(message)}</div>'


def banner(text: str, banner_id: str = "run-status") -> str:
    """A strip at the top of the page for what the reader must know first (e.g. an incomplete run)."""
    return f'<div class="banner" id="{esc(banner_id)}" role="status">{esc(text)}</div>'


def section(title: str, body_html: str, note: str = "", section_id: str = "") -> str:
    ident = f' id="{esc(section_id)}"' if section_id else ""
    note_html = f'<p class="note">{esc(note)}</p>' if note else ""
    return f"<section{ident}><h2>{esc(title)}</h2>{note_html}{body_html}</section>"


def facts_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


def cards(items: Iterable[tuple[str, str]]) -> str:
    body = "".join(f'<div class="card"><div class="v">{esc(v)}</div><div class="k">{esc(k)}</div>'
                   f"</div>" for k, v in items)
    return f'<div class="cards">{body}</div>'


def findings_list(findings: Iterable[Finding]) -> str:
    items = "".join(f'<li class="{esc(f.kind)}">{esc(f.text)}</li>' for f in findings)
    return f'<ul class="findings" id="findings">{items}</ul>'


def data_table(header: list[str], rows: list[list[str]], table_id: str, wrap: bool = False) -> str:
    """A table of escaped text cells; `wrap` lets cells wrap (class "data wrap"), for tables with
    sentences in them that would otherwise push columns off the page."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    classes = "data wrap" if wrap else "data"
    return (f'<div class="table-wrap"><table class="{classes}" id="{esc(table_id)}"><thead><tr>{head}'
            f"</tr></thead><tbody>{body}</tbody></table></div>")


def page(title: str, subtitle: str, body_html: str) -> str:
    """The whole document. plotly.js is inlined here and nowhere else."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{plotly_js()}</script></head>'
        f"<body><main><h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p>{body_html}"
        "<footer>Written by fleetsim. Self-contained: opens without a network connection."
        "</footer></main></body></html>\n"
    )
