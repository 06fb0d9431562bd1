"""Self-contained HTML reports of fleetsim runs: one run, and several runs compared.

`write_run_report(run_dir)` reads the run folder described in ARCHITECTURE.md ("Trace schema") and
writes one HTML file with plotly.js inlined once, so it opens without a network connection.
`write_comparison_report(run_dirs, out_path)` puts several runs side by side.

Both are imported on first use: the numeric helpers (binning.py) serve `fleetsim export` too, which
should not pay for importing plotly.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_comparison_report", "write_run_report"]


def __getattr__(name: str) -> Any:
    if name == "write_run_report":
        from simulator.report.run_report import write_run_report

        return write_run_report
    if name == "write_comparison_report":
        from simulator.report.compare import write_comparison_report

        return write_comparison_report
    raise AttributeError(f"module 'simulator.report' has no attribute {name!r}")
