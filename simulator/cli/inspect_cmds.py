"""`fleetsim validate | schema | profiles | explain`: look at inputs without running anything.

Start-up matters here (people run these from editors and scripts): everything heavy is imported
inside the command that needs it, so `schema`, `profiles` and `explain --no-plan` never import torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.text import Text

from simulator.cli.common import bad_input, check_format, console, friendly, warn
from simulator.cli.tables import Grid, print_grid, write_records
from simulator.errors import InputError

FORMAT_HELP = "table (for people) | json | csv (for scripts and spreadsheets)"


def _load(file: Path):  # noqa: ANN202 - a Scenario
    from simulator.config.scenario import load_scenario_file

    return load_scenario_file(file)


def register(app: typer.Typer) -> None:
    """Add validate, schema, profiles and explain to the app."""

    @app.command()
    @friendly
    def validate(
        files: list[Path] = typer.Argument(..., help="scenario YAML files"),
        import_plugins: bool = typer.Option(
            False, "--import-plugins",
            help="also import the scenario's module:Class plug-ins (policies, models) and check them; "
                 "importing a module runs its code, so by default they are not imported"),
    ) -> None:
        """Check scenario files (schema, profiles, algorithm, links, files they name) without running them.

        Plug-ins (module:Class) are not imported unless --import-plugins is given; the output says so."""
        from simulator.cli.explain import group_fits
        from simulator.cli.summary import no_fit_warning
        from simulator.cli.validate import not_imported_note, plugins_in, without_plugins
        from simulator.config.workload import model_label
        from simulator.engine import Simulation
        from simulator.engine.failure import preparing_failure
        from simulator.server.registry import add_plugin_paths

        for file in files:
            scenario = _load(file)
            plugins = plugins_in(scenario)
            checked = scenario
            if import_plugins:
                add_plugin_paths(file.resolve().parent, Path.cwd())
            elif plugins:
                checked = without_plugins(scenario)
            try:
                sim = Simulation(checked, Path("."), scenario_file=str(file), base_dir=file.resolve().parent,
                                 timing_only=True)
                # a model that fits no device is valid (fleetsim plan uses it as a result), worth a warning;
                # not with plug-in stand-ins, whose memory is not the plug-in's
                fits = group_fits(sim, checked) if checked is scenario else []
            except InputError as err:
                raise err.with_file(file) from None
            except Exception as exc:  # noqa: BLE001 - an imported plug-in failing while being sized or built
                raise preparing_failure(exc, scenario) from None
            console.print(f"[green]ok[/] {file}: {scenario.num_devices} devices, algorithm {scenario.algorithm.name}",
                          soft_wrap=True)
            warning = no_fit_warning(model_label(scenario.workload.model), fits)
            if warning:
                warn(f"{file}: {warning}")
            if plugins and not import_plugins:
                console.print(Text(f"  {not_imported_note(plugins, str(file))}"), soft_wrap=True)

    @app.command()
    def schema(
        kind: str = typer.Option("scenario", "--kind", help="scenario | sweep | plan: which file's schema"),
        plan: bool = typer.Option(False, "--plan", help="the plan file's schema (same as --kind plan)"),
    ) -> None:
        """Print the JSON Schema of scenario files (or of sweep / plan files): point your editor's YAML
        plug-in at it for completion, e.g. `fleetsim schema > fleetsim.schema.json`. The algorithm is
        typed per policy (a union discriminated by `policy`) and per preset, with the preset's defaults."""
        kind = "plan" if plan else kind
        if kind == "plan":
            from simulator.plan import plan_schema

            document = plan_schema()
        elif kind == "sweep":
            from simulator.sweep.spec import SweepSpec

            document = SweepSpec.model_json_schema()
        elif kind == "scenario":
            from simulator.cli.schema import scenario_schema

            document = scenario_schema()
        else:
            bad_input(InputError("unknown schema", field="--kind", value=kind, accepted="scenario, sweep or plan"))
            raise typer.Exit(2)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")

    @app.command()
    @friendly
    def profiles(
        files: list[Path] = typer.Argument(None, help="extra profile YAMLs to show beside the built-in ones"),
        fmt: str = typer.Option("table", "--format", "-f", help=FORMAT_HELP),
    ) -> None:
        """Show the device profiles: compute, memory, power modes, network."""
        from simulator.cli.profiles_view import profile_record, profiles_grid
        from simulator.config.profiles import list_builtin_profiles, load_profile

        check_format(fmt)
        items = list_builtin_profiles() + [load_profile(str(f)) for f in files or []]
        if fmt == "table":
            print_grid(profiles_grid(items), console)
        else:
            write_records([profile_record(p) for p in items], fmt)

    @app.command()
    @friendly
    def explain(
        scenario_file: Path = typer.Argument(..., help="scenario YAML"),
        no_plan: bool = typer.Option(False, "--no-plan", help="skip the per-group plan (it traces the model)"),
        fmt: str = typer.Option("table", "--format", "-f", help="table (YAML + plan table) | json"),
    ) -> None:
        """Print the scenario fully resolved: every default the presets and policies fill in (K, deadline,
        staleness function and its parameters, pruning, distillation, local work), and the plan per
        scenario group: width, depth, peak vs usable memory, step time."""
        import yaml

        from simulator.cli.explain import PLAN_HEADERS, group_plans, plan_rows, unset_notes
        from simulator.engine.resolved import resolved_document

        check_format(fmt, ("table", "json"))
        scenario = _load(scenario_file)
        document = resolved_document(scenario)
        notes = unset_notes(scenario, document["algorithm"]["aggregation"])
        plans = None if no_plan else group_plans(scenario, scenario_file)
        if fmt == "json":
            sys.stdout.write(json.dumps({"scenario": document, "unset": notes, "plan": plans}, indent=2) + "\n")
            return
        console.print(Text(f"# {scenario_file}: resolved ({scenario.num_devices} devices, seed {scenario.seed})",
                           style="bold"), soft_wrap=True)
        sys.stdout.flush()
        console.print(Text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000).rstrip()),
                      soft_wrap=True)
        for key, note in notes.items():
            console.print(Text(f"# algorithm.aggregation.{key}: null → {note}"), soft_wrap=True)
        if plans is not None:
            grid = Grid("Plan per group (the largest memory peak among its devices)", PLAN_HEADERS,
                        plan_rows(plans), right=frozenset({1, 3, 4, 5, 6, 7, 8}))
            print_grid(grid, console)
            if any(len(p["variants"]) > 1 for p in plans):  # the rows above show each group's largest
                console.print(Text("Groups whose devices differ (their shards' local steps against the deadline): "
                                   "submodel ×devices"), soft_wrap=True)
            for p in plans:
                if len(p["variants"]) > 1:
                    shown = "; ".join(f"{k} ×{n}" for k, n in p["variants"].items())
                    console.print(Text(f"  {p['group']}: {shown}"), soft_wrap=True)
