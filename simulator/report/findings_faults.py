"""Findings about the scenario's faults (link_down, server_pause, devices_offline): when each was,
whom it touched and what it cost, from summary.json's `faults` log and the traces.

A fault scheduled after the run ended is said not to have happened; a window that outlasts the run
is cut at its end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from simulator.report.finding import Finding
from simulator.report.finding import plural as _plural
from simulator.report.loading import RunData


def _duration(start_s: float, end_s: float) -> str:
    d = end_s - start_s
    return f"{d / 60:.1f} min" if d >= 120 else f"{d:.0f} s"


def _window(start_s: float, end_s: float) -> str:
    """'from 1,800 s to 2,100 s (5.0 min)': the run's clock in seconds, the length readable."""
    return f"from {start_s:,.0f} s to {end_s:,.0f} s ({_duration(start_s, end_s)})"


def _members_of_link(run: RunData, link: str) -> pd.DataFrame:
    """Devices whose transfers cross `link` ('server' is crossed by every transfer)."""
    if link == "server":
        return run.devices
    from simulator.report.groups import group_rows

    groups = [r["index"] for r in group_rows(run) if r.get("link") == link]
    return run.devices[run.devices["group"].isin(groups)]


def _link_down(run: RunData, f: dict[str, Any], start: float, end: float) -> Finding:
    link = str(f.get("link", "?"))
    members = _members_of_link(run, link)
    ev = run.events
    moving = ev["phase"].isin(["download", "upload"]).to_numpy()
    overlap = moving & (ev["start_s"].to_numpy(float) < end) & (ev["end_s"].to_numpy(float) > start)
    hit = np.intersect1d(ev["device"].to_numpy()[overlap], members["device"].to_numpy())
    names = list(dict.fromkeys(members["group_name"].astype(str)))
    where = "the server links" if link == "server" else f"link {link}"
    if members.empty:
        return Finding(f"Fault: {where} down {_window(start, end)}; no group of this run is known to use it "
                       "(its scenario.yaml names no such link).", "warn")
    text = (f"Fault: {where} down {_window(start, end)}; {hit.size:,} of the "
            f"{_plural(len(members), 'device')} behind it"
            + (f" ({', '.join(names)})" if names and link != "server" else "")
            + " had transfers in that window")
    cut = int(f.get("transfers_cut") or 0)
    text += f"; {cut:,} transfers were cut and their jobs lost." if cut else ", stalled until it came back."
    return Finding(text, "warn")


def _server_pause(run: RunData, start: float, end: float) -> Finding:
    arr = run.updates["arrival_s"].to_numpy(float)
    waited = int(((arr >= start) & (arr < end)).sum())
    t = run.versions["time_s"].to_numpy(float)
    merged = int(((t > start) & (t < end)).sum())
    return Finding(f"Fault: the server paused {_window(start, end)}; {_plural(waited, 'update')} arrived "
                   f"during it and waited, {_plural(merged, 'version')} merged in it.", "warn")


def _devices_offline(run: RunData, f: dict[str, Any], start: float, end: float) -> Finding:
    names = [str(n) for n in f.get("devices") or []]
    ids = run.devices.loc[run.devices["device_name"].isin(names), "device"].to_numpy()
    up = run.updates
    in_hand = (up["device"].isin(ids) & (up["dispatch_s"] <= start)
               & ~(up["arrival_s"] <= start) & (up["outcome"] == "lost"))
    shown = ", ".join(names[:4]) + (" …" if len(names) > 4 else "")
    return Finding(f"Fault: {_plural(len(names), 'device')} ({shown}) forced offline {_window(start, end)}; "
                   f"{_plural(int(in_hand.sum()), 'job')} in hand lost.", "warn")


def fault_findings(run: RunData) -> list[Finding]:
    """One sentence per fault in summary.json's log, in file order."""
    out = []
    span = run.makespan_s
    for f in run.summary.get("faults") or []:
        if not isinstance(f, dict):
            continue
        try:
            start, end = float(f["start_s"]), float(f["end_s"])
        except (KeyError, TypeError, ValueError):
            continue
        kind = str(f.get("kind"))
        if start >= span:
            out.append(Finding(f"Fault {kind} planned at {start:,.0f} s did not happen: the run ended at "
                               f"{span:,.0f} s."))
            continue
        end = min(end, span)
        if kind == "link_down":
            out.append(_link_down(run, f, start, end))
        elif kind == "server_pause":
            out.append(_server_pause(run, start, end))
        elif kind == "devices_offline":
            out.append(_devices_offline(run, f, start, end))
        else:
            out.append(Finding(f"Fault {kind} {_window(start, end)}.", "warn"))
    return out
