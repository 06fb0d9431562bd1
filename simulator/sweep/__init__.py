"""Sweeps: one base scenario, some keys varied over values and seeds, every variant its own run.

``run_sweep(path, jobs=, backend="local"|"ray", ...)`` runs a sweep file (see
:mod:`simulator.sweep.spec` for its format) and returns a :class:`SweepResult` with a results table
(one row per variant) and an aggregate (mean ± std over seeds), also written as Parquet and CSV in
the sweep folder, next to a comparison report of all runs.
"""

from simulator.sweep.expand import Variant, expand
from simulator.sweep.results import METRICS, SweepResult, aggregate_table, render_aggregate
from simulator.sweep.runner import run_sweep
from simulator.sweep.spec import LoadedSweep, SweepSpec, load_sweep

__all__ = [
    "METRICS", "LoadedSweep", "SweepResult", "SweepSpec", "Variant", "aggregate_table", "expand", "load_sweep",
    "render_aggregate", "run_sweep",
]
