"""Self-contained HTML reports of fleetsim runs: one run, and several runs compared.

`write_run_report(run_dir)` reads the run folder described in ARCHITECTURE.md ("Trace schema") and
writes one HTML file with plotly.js inlined once, so it opens without a network connection.
`write_comparison_report(run_dirs, out_path)` puts several runs side by side.
"""

from simulator.report.compare import write_comparison_report
from simulator.report.run_report import write_run_report

__all__ = ["write_comparison_report", "write_run_report"]
