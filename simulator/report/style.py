"""Colours, a tiny plotly template and number formatting shared by every chart and table.

plotly's default template is ~6 kB of JSON repeated in every figure; a dozen figures would spend
70 kB on colour scales nobody uses. :data:`TEMPLATE` carries only what these charts need.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

PHASE_COLORS: dict[str, str] = {
    "download": "#4C78A8",
    "compute": "#54A24B",
    "upload": "#B279A2",
    "idle": "#E4E4E4",
    "offline": "#5A5A5A",
    "oom": "#E45756",
}
# The four shares every utilization chart stacks, in this order (communication = download + upload).
SHARE_COLORS: dict[str, str] = {
    "compute": PHASE_COLORS["compute"],
    "communication": PHASE_COLORS["download"],
    "idle": "#C9C9C9",
    "offline": PHASE_COLORS["offline"],
}
OUTCOME_COLORS: dict[str, str] = {
    "accepted": "#54A24B",
    "dropped": "#F58518",
    "lost": "#5A5A5A",
    "oom": "#E45756",
    "unfinished": "#BAB0AC",
}
SERIES_COLORS = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B",
                 "#9D755D", "#FF9DA6", "#BAB0AC"]

TEMPLATE = go.layout.Template(
    layout=dict(
        font=dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=12,
                  color="#222"),
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=SERIES_COLORS,
        margin=dict(l=60, r=20, t=40, b=50),
        hovermode="closest",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, traceorder="normal"),
        xaxis=dict(gridcolor="#EEE", zerolinecolor="#DDD", linecolor="#999", automargin=True),
        yaxis=dict(gridcolor="#EEE", zerolinecolor="#DDD", linecolor="#999", automargin=True),
    )
)


def style(fig: go.Figure, height_px: int, title: str | None = None) -> go.Figure:
    """Apply the shared template, a fixed height and an optional title; width follows the page."""
    fig.update_layout(template=TEMPLATE, height=int(height_px), autosize=True)
    if fig.layout.annotations and any(a.yref == "paper" for a in fig.layout.annotations):
        # subplot titles sit just above the plots: move the legend to the top of the page area
        fig.update_layout(legend=dict(yref="container", y=1.0, yanchor="top"),
                          margin=dict(t=78))
    if title:
        fig.update_layout(title=dict(text=title, x=0, xanchor="left", font=dict(size=14)))
    return fig


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return isinstance(value, float) and not math.isfinite(value)
    except TypeError:
        return False


def fmt_num(value: Any, digits: int = 0) -> str:
    """1234567 -> '1,234,567'; None/NaN -> 'n/a'."""
    if _missing(value):
        return "n/a"
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def fmt_pct(share: Any, digits: int = 0) -> str:
    """0.414 -> '41 %' (with a no-break space, so a line never starts with '%')."""
    if _missing(share):
        return "n/a"
    try:
        return f"{100.0 * float(share):.{digits}f}\u00a0%"
    except (TypeError, ValueError):
        return "n/a"


def fmt_s(seconds: Any) -> str:
    """Seconds with a readable larger unit in brackets: 5400 -> '5,400 s (1.5 h)'."""
    if _missing(seconds):
        return "n/a"
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "n/a"
    text = f"{s:,.0f} s" if abs(s) >= 10 else f"{s:.2f} s"
    if abs(s) >= 2 * 86400:
        text += f" ({s / 86400:.1f} d)"
    elif abs(s) >= 2 * 3600:
        text += f" ({s / 3600:.1f} h)"
    elif abs(s) >= 120:
        text += f" ({s / 60:.1f} min)"
    return text


def fmt_bytes(n: Any) -> str:
    """Decimal units, as in the rest of fleetsim (_gb = 10^9 bytes): 4.6e9 -> '4.6 GB'."""
    if _missing(n):
        return "n/a"
    try:
        v = float(n)
    except (TypeError, ValueError):
        return "n/a"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.1f} {unit}"
    return f"{v:.0f} B"


def fmt_energy(joules: Any) -> str:
    """Energy in the unit that fits: '61 J' below 1 Wh, then Wh, kWh, MWh (3 significant digits at
    most): 61 -> '61 J', 61_200 -> '17 Wh', 2.1e6 -> '586 Wh', 7.6e6 -> '2.11 kWh'."""
    if _missing(joules):
        return "n/a"
    try:
        v = float(joules)
    except (TypeError, ValueError):
        return "n/a"
    if abs(v) < 3600.0:
        return f"{v:.3g} J" if abs(v) < 10 else f"{v:,.0f} J"
    for unit, scale in (("MWh", 3.6e9), ("kWh", 3.6e6), ("Wh", 3.6e3)):
        if abs(v) >= scale:
            x = v / scale
            return f"{x:,.0f} {unit}" if abs(x) >= 100 else f"{x:.3g} {unit}"
    return f"{v:.0f} J"  # unreachable: |v| >= 3600 is at least 1 Wh
