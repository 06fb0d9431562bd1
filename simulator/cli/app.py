"""The ``fleetsim`` command: the typer app, `--version`, and where each command lives.

Options live in the scenario file; flags only choose the file, where output goes, the seed and how
the work is executed. Every user mistake ends as one clear paragraph and exit status 2.

Commands: run.py (run, resume), inspect_cmds.py (validate, schema, profiles, explain), results_cmds.py
(report, compare), export.py, sweep.py (sweep, calibrate), plan.py. Importing this module imports
typer and rich only; each command imports what it needs when it runs.
"""

from __future__ import annotations

import typer

from simulator.cli import export, inspect_cmds, plan, results_cmds, run, sweep
from simulator.cli.common import console
from simulator.cli.usage import FleetsimGroup

app = typer.Typer(
    name="fleetsim",
    cls=FleetsimGroup,  # flag mistakes typer finds end as fleetsim's bad-input paragraph (usage.py)
    help=(
        "Simulate federated training on fleets of heterogeneous edge devices (Jetson class).\n\n"
        "A scenario YAML describes the fleet, network, workload, algorithm and stop condition; "
        "`fleetsim run` simulates it in SimPy time, trains real PyTorch submodels at the simulated "
        "moments, and writes a run folder (Parquet traces, summary.json, report.html).\n\n"
        "Start with:  fleetsim run scenarios/quickstart.yaml   (fleetsim explain FILE shows every default)\n\n"
        "Exit status: 0 done, 1 the run failed once started (a plug-in raised, the disk filled; traces, "
        "summary.json and a partial report are kept), 2 bad input (nothing was run), 130 Ctrl-C (traces kept)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def package_version() -> str:
    """The installed distribution's version (pyproject.toml), not a copy kept in the code."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fleetsim")
    except PackageNotFoundError:
        return "unknown (not installed; run `pip install -e .`)"


def _show_version(value: bool) -> None:
    if value:
        console.print(f"fleetsim {package_version()}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="print fleetsim's version and exit"),
) -> None:
    """Simulate federated training on fleets of heterogeneous edge devices (Jetson class)."""


for _module in (run, inspect_cmds, results_cmds, export, sweep, plan):
    _module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
