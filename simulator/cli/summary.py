"""The table `fleetsim run` prints at the end: what summary.json says, in units a reader takes in.

It names what a reader must not miss: an incomplete run (and up to when its figures run), a model
that fits no device, the faults the scenario injected, devices that ran out of memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table


def human_bytes(n: float) -> str:
    """Decimal units, as link rates are quoted: 44,752 GB reads as '44.75 TB'."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n:,.0f} B"


def energy_text(energy_j: float) -> str:
    """Energy in the unit that fits it (J below 1 Wh, Wh below 1 kWh, else kWh), never '0.0000 kWh'."""
    if abs(energy_j) >= 3.6e6:
        return f"{energy_j / 3.6e6:,.2f} kWh ({energy_j:,.0f} J)"
    if abs(energy_j) >= 3600:
        return f"{energy_j / 3600:,.2f} Wh ({energy_j:,.0f} J)"
    return f"{energy_j:,.0f} J"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def fault_text(fault: dict[str, Any]) -> str:
    """One fault of summary.json's `faults` log: what, where and when, in simulated seconds."""
    what = str(fault.get("kind", "fault")).replace("_", " ")
    where = fault.get("link") or ", ".join(fault.get("devices", [])[:4]) + (" …" if len(fault.get("devices", [])) > 4 else "")
    span = f"{float(fault.get('start_s', 0)):,.0f}–{float(fault.get('end_s', 0)):,.0f} s"
    return f"{what} {where} {span}".replace("  ", " ")


def no_fit_warning(model: str, groups: list[dict[str, Any]]) -> str | None:
    """One line when the model fits no device of the fleet, else None.

    Why: such a run is valid and exits 0 (`fleetsim plan` counts on it: a fleet that cannot train is a
    result there), but a user reading "0 model versions" should be told why in one line. `groups` are
    records with name, fits_memory, usable_memory_bytes and peak_memory_bytes — summary.json's groups
    after a run, explain.group_fits before one. Within a group every device has the same budget, so a
    group's fits_memory holds for each of its devices."""
    rows = [g for g in groups if "fits_memory" in g]
    if not rows or any(g["fits_memory"] for g in rows):
        return None
    biggest = max(rows, key=lambda g: g.get("usable_memory_bytes") or 0)
    return (f"model {model} fits no device in the fleet: the largest usable memory, "
            f"{human_bytes(biggest.get('usable_memory_bytes') or 0)} ({biggest['name']}), is less than the "
            f"{human_bytes(biggest.get('peak_memory_bytes') or 0)} its training needs there (the smallest submodel "
            "the algorithm allows); "
            "every device runs out of memory and no model version is made")


def summary_table(summary: dict[str, Any], run_dir: Path) -> Table:
    table = Table(title=f"{summary['scenario_name']} · {summary['algorithm']} · seed {summary['seed']}", show_header=False)
    table.add_column("what", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")  # a long path folds onto the next line, never cut with "…"
    if not summary.get("complete", True):
        table.add_row("[bold red]INCOMPLETE[/]", f"the run did not reach its stop condition; figures cover simulated "
                      f"time up to {float(summary.get('figures_up_to_s', summary['makespan_s'])):,.1f} s")
    warning = no_fit_warning(str(summary.get("model", "?")), summary.get("groups") or [])
    if warning:
        table.add_row("[bold yellow]WARNING[/]", warning)
    table.add_row("stopped by", str(summary["stop_reason"]))
    table.add_row("simulated time", f"{summary['makespan_s']:,.1f} s")
    table.add_row("model versions", str(summary["versions"]))
    if not summary["timing_only"]:
        table.add_row("final accuracy", _pct(summary.get("final_accuracy")))
        if summary.get("target_accuracy") is not None:
            ttt = summary.get("time_to_target_s")
            table.add_row(f"time to {_pct(summary['target_accuracy'])}", "not reached" if ttt is None else f"{ttt:,.1f} s")
    table.add_row("fleet utilization", f"{_pct(summary['fleet_utilization'])} compute, {_pct(summary['comm_share'])} comm, "
                  f"{_pct(summary['idle_share'])} idle, {_pct(summary['offline_share'])} offline")
    groups = summary.get("groups") or []
    for g in groups:  # the scenario's own groups (fleet[i].name, else the profile), in file order
        limit = f" · {g['limit']}" if g.get("limit") else ""
        table.add_row(f"  {g['name']} ({g.get('devices', '?')})", f"{_pct(g.get('compute_share'))} compute{limit}")
    if not groups:  # a summary written before groups existed
        for name, share in sorted(summary["utilization_by_profile"].items()):
            table.add_row(f"  {name}", _pct(share))
    st = summary["staleness"]
    if st["mean"] is not None:
        table.add_row("staleness", f"mean {st['mean']:.2f}, p95 {st['p95']:.0f}, max {st['max']:.0f}")
    table.add_row("updates", f"{summary['accepted']:,} accepted, {summary['dropped']:,} dropped, "
                  f"{summary['lost']:,} lost, {summary['ooms']:,} OOM")
    if summary["oom_devices"]:
        shown = ", ".join(summary["oom_devices"][:6]) + (" …" if len(summary["oom_devices"]) > 6 else "")
        table.add_row("out of memory", shown)
    faults = summary.get("faults") or []
    if faults:
        table.add_row("faults", "\n".join(fault_text(f) for f in faults[:6]) + (f"\n… {len(faults) - 6} more" if len(faults) > 6 else ""))
    table.add_row("traffic", f"{human_bytes(summary['bytes_down'])} down, {human_bytes(summary['bytes_up'])} up")
    if "step_times" in summary:
        from simulator.engine.step_times import summary_line

        table.add_row("step times", summary_line(summary["step_times"]))
    table.add_row("energy", energy_text(summary["energy_j"]))
    table.add_row("run folder", str(run_dir))
    return table
